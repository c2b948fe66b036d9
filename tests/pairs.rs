//! Documents, plays, sentences, and the pairs of next-sentence and sentence-order prediction
//! (`docs/objectives.md` §2 and §2b).

use microlm::data::documents::{split_documents, split_sentences, split_speeches, SPEECHES_PER_DOCUMENT};
use microlm::data::pairs::{make_pairs, pair_batch, trim_spans, NspLabel, PairTask, Span};
use microlm::data::plays::{play_documents, play_starts, speaker, with_name_lines, word_pieces, CAST_WINDOW};
use microlm::data::{load_text, Document, Pair};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;

fn shakespeare() -> String {
    load_text(Path::new("data/tinyshakespeare.txt")).unwrap()
}

/// A token that says where it came from: document d, sentence s, position p.
fn token(d: usize, s: usize, p: usize) -> usize {
    d * 1_000_000 + s * 100 + p
}
fn origin(t: usize) -> (usize, usize) {
    (t / 1_000_000, (t % 1_000_000) / 100)
}

/// `docs` documents of `sentences` sentences whose lengths cycle through `lengths`.
fn synthetic(docs: usize, sentences: usize, lengths: &[usize]) -> Vec<Document> {
    (0..docs)
        .map(|d| Document {
            sentences: (0..sentences)
                .map(|s| (0..lengths[s % lengths.len()]).map(|p| token(d, s, p)).collect())
                .collect(),
        })
        .collect()
}

/// The counts stated in `documents.rs`, which a separate script (a regular expression over the
/// file) also gives: 7,222 speeches, 903 documents, 35,394 sentences of 31.51 characters.
#[test]
fn tiny_shakespeare_counts() {
    let text = shakespeare();
    assert_eq!(split_speeches(&text).len(), 7222);
    let docs = split_documents(&text, SPEECHES_PER_DOCUMENT);
    assert_eq!(docs.len(), 903);
    let sentences: Vec<&str> = docs.iter().flat_map(|d| split_sentences(d)).collect();
    assert_eq!(sentences.len(), 35394);
    let mean = sentences.iter().map(|s| s.chars().count()).sum::<usize>() as f64 / sentences.len() as f64;
    assert!((mean - 31.51).abs() < 0.01, "mean sentence length {mean}");
    // Nothing is lost: the documents' sentences put back together are the text.
    assert_eq!(sentences.concat(), text);
}

#[test]
fn sentences_end_at_punctuation_and_line_ends() {
    assert_eq!(
        split_sentences("KING:\nWhat, ho! you men. Stay...\nno.Then go"),
        ["KING:\n", "What, ho! ", "you men. ", "Stay...\n", "no.Then go"]
    );
    assert_eq!(
        split_speeches("\nA:\nhi.\n\n\nB:\nyo.\n"),
        ["A:\nhi.\n\n\n", "B:\nyo.\n"]
    );
    assert!(split_sentences("").is_empty());
}

/// The play boundaries the doc of `plays.rs` states, which a separate script (Python, the same
/// rule over the file's name lines) also gives.
#[test]
fn plays_start_where_the_cast_changes() {
    let text = shakespeare();
    let speeches = split_speeches(&text);
    assert_eq!(
        play_starts(&speeches, CAST_WINDOW),
        [0, 1107, 2196, 2750, 2790, 4403, 4712, 5149, 6046, 6939, 6967, 7101]
    );
    // Speech 1107 is Richard III's first ("Now is the winter of our discontent").
    assert!(speeches[1107].starts_with("GLOUCESTER:\nNow is the winter"));
    // Two casts that never meet: two plays; one cast throughout: one.
    let a = "ROMEO:\nHa.\n\nJULIET:\nHo.\n\n";
    let b = "PROSPERO:\nHe.\n\nARIEL:\nHi.\n\n";
    let two: Vec<&str> = [a, a, b, b].concat().leak().split_inclusive("\n\n").collect();
    assert_eq!(play_starts(&two, 4), [0, 4]);
    assert_eq!(play_starts(&two[..4], 4), [0]);
    assert!(play_starts(&[], 4).is_empty());
}

/// Hand-worked: a speech's name line joins the sentence it introduces (a verse line ending with
/// a colon does not); a sentence over the limit is cut
/// after white space, never inside a word, and the pieces put back together are the sentence.
#[test]
fn name_lines_join_and_long_sentences_break_between_words() {
    assert_eq!(
        with_name_lines(vec!["KING:\n", "Go. ", "Stay:\n", "Ay.\n"]),
        ["KING:\nGo. ", "Stay:\n", "Ay.\n"]
    );
    assert_eq!(with_name_lines(vec!["KING:\n"]), ["KING:\n"]);
    let text = shakespeare();
    let t = Tokenizer::Char(CharTokenizer::from_text(&text));
    let sentence = "Whereof I know she is not ignorant: accept of him, or else you do me wrong.";
    let pieces: Vec<String> = word_pieces(sentence, 20, &t).iter().map(|p| t.decode(p)).collect();
    assert_eq!(
        pieces,
        [
            "Whereof I know she ",
            "is not ignorant: ",
            "accept of him, or ",
            "else you do me ",
            "wrong."
        ]
    );
    // Only a word longer than a piece is cut inside.
    let long: Vec<String> = word_pieces("abcdefgh ij", 3, &t).iter().map(|p| t.decode(p)).collect();
    assert_eq!(long, ["abc", "def", "gh ", "ij"]);
    // Over the whole corpus at 61 characters: nothing lost, no piece longer, every cut after
    // white space.
    let (docs, plays) = play_documents(&text, 61, &t);
    assert_eq!(docs.len(), plays.len());
    let all: Vec<String> = docs
        .iter()
        .flat_map(|d| d.sentences.iter().map(|s| t.decode(s)))
        .collect();
    assert_eq!(all.concat(), text);
    assert!(docs
        .iter()
        .flat_map(|d| &d.sentences)
        .all(|s| !s.is_empty() && s.len() <= 61));
    let cut_in_a_word = all
        .iter()
        .filter(|s| !s.ends_with(char::is_whitespace) && !s.ends_with(['.', '!', '?']))
        .count();
    assert!(cut_in_a_word <= 1, "{cut_in_a_word} pieces end inside a word"); // the text's last
    assert_eq!(plays.last(), Some(&11), "12 plays");
    // No sentence is a bare name line, so no segment ends on one; every speech's name line
    // starts a sentence.
    let name_lines: std::collections::BTreeSet<String> = split_speeches(&text)
        .iter()
        .filter(|s| speaker(s).is_some())
        .map(|s| s.split_inclusive('\n').next().unwrap().to_string())
        .collect();
    assert!(name_lines.len() > 300, "{} names", name_lines.len());
    assert!(all.iter().all(|s| !name_lines.contains(s)));
    let starting = all
        .iter()
        .filter(|s| name_lines.iter().any(|n| s.starts_with(n.as_str())))
        .count();
    assert!(starting >= 7000, "{starting} sentences start with a name line");
}

/// Documents of one play each (`plays[d] = d`), sentences of the given lengths.
fn own_plays(docs: &[Document]) -> Vec<usize> {
    (0..docs.len()).collect()
}

/// Every sentence of a segment is whole: it starts at position 0 of a sentence and the tokens
/// run through each sentence to its end. Returns the (document, sentence) of each sentence.
fn whole_sentences(segment: &[usize], docs: &[Document]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < segment.len() {
        let (d, s) = origin(segment[i]);
        let sentence = &docs[d].sentences[s];
        assert_eq!(
            &segment[i..i + sentence.len()],
            &sentence[..],
            "not a whole sentence at {i}"
        );
        out.push((d, s));
        i += sentence.len();
    }
    out
}

/// On documents whose chunks have at least 2 sentences (one-token sentences, so every target
/// length of at least 2 takes two or more), a coin decides: P(NotNext) = 0.5 +- 0.025 over
/// 10^4 pairs, for NSP and for SOP. Only a document's last chunk can hold one sentence: at most
/// 150 of the pairs.
#[test]
fn half_the_pairs_are_not_next() {
    let docs = synthetic(150, 1000, &[1]);
    for task in [PairTask::Nsp, PairTask::Sop] {
        let pairs = make_pairs(&docs, &own_plays(&docs), 20, task, &mut StdRng::seed_from_u64(0)).unwrap();
        assert!(pairs.len() >= 10_000, "{} pairs", pairs.len());
        let not_next = pairs[..10_000].iter().filter(|p| p.label == NspLabel::NotNext).count();
        let p = not_next as f64 / 10_000.0;
        assert!((p - 0.5).abs() <= 0.025, "{task:?}: P(NotNext) = {p}");
    }
}

/// Read from the tokens themselves: A and B are whole sentences, and within n_max. NSP: an
/// IsNext B starts with the sentence after A's last, trimmed or not (the junction is never
/// cut); a NotNext B comes from a document of another play. SOP: A and B are consecutive
/// sentences of one document, B after A for IsNext and before it for NotNext.
#[test]
fn pairs_come_from_where_they_should() {
    let docs = synthetic(60, 100, &[3, 7, 1, 12, 5]);
    let plays: Vec<usize> = (0..60).map(|d| d / 6).collect(); // 10 plays of 6 documents
    let (mut trimmed, mut checked) = (0, [0; 4]);
    for n_max in [27, 40, 60] {
        for task in [PairTask::Nsp, PairTask::Sop] {
            let pairs = make_pairs(&docs, &plays, n_max, task, &mut StdRng::seed_from_u64(n_max as u64)).unwrap();
            for pair in &pairs {
                assert!(pair.a.len() + pair.b.len() + 3 <= n_max, "{pair:?}");
                let (a, b) = (whole_sentences(&pair.a, &docs), whole_sentences(&pair.b, &docs));
                assert!(!a.is_empty() && !b.is_empty());
                let (a_doc, b_doc) = (a[0].0, b[0].0);
                assert!(a.iter().all(|&(d, _)| d == a_doc) && b.iter().all(|&(d, _)| d == b_doc));
                assert!(
                    a.windows(2).chain(b.windows(2)).all(|w| w[1].1 == w[0].1 + 1),
                    "not consecutive"
                );
                let (a_first, a_last, b_first, b_last) = (a[0].1, a[a.len() - 1].1, b[0].1, b[b.len() - 1].1);
                match (task, pair.label) {
                    (PairTask::Nsp, NspLabel::NotNext) => {
                        assert_ne!(plays[a_doc], plays[b_doc], "{pair:?}");
                        checked[0] += 1;
                    }
                    (_, NspLabel::IsNext) => {
                        assert_eq!((b_doc, b_first), (a_doc, a_last + 1), "{pair:?}");
                        checked[1] += 1;
                    }
                    (PairTask::Sop, NspLabel::NotNext) => {
                        assert_eq!((a_doc, a_first), (b_doc, b_last + 1), "{pair:?}");
                        checked[2] += 1;
                    }
                }
                assert_eq!(pair.a_span.sentences, a_first..a_last + 1);
                assert_eq!(pair.b_span.sentences, b_first..b_last + 1);
                trimmed += usize::from(pair.trimmed);
            }
        }
    }
    assert!(
        checked[..3].iter().all(|&c| c > 100) && trimmed > 100,
        "{checked:?}, {trimmed} trimmed"
    );
}

/// Hand-worked trimming of whole sentences: A = sentences of 3, 4, 2 tokens, B = 5, 1, 6; to
/// fit 12: B (12) is longer, loses its back (6); A (9) is longer than B (6), loses its front
/// (3); then 6 + 6 = 12 fits.
#[test]
fn trimming_takes_whole_sentences_from_the_outer_ends() {
    let docs = vec![Document {
        sentences: [3, 4, 2, 5, 1, 6].iter().map(|&n| vec![7; n]).collect(),
    }];
    let span = |sentences| Span { document: 0, sentences };
    let (a, b, trimmed) = trim_spans(&docs, span(0..3), span(3..6), 12);
    assert_eq!((a.sentences, b.sentences, trimmed), (1..3, 3..5, true));
    let (a, b, trimmed) = trim_spans(&docs, span(0..1), span(1..2), 7);
    assert_eq!((a.sentences, b.sentences, trimmed), (0..1, 1..2, false));
}

#[test]
fn pairs_are_deterministic_under_a_seed() {
    let docs = synthetic(10, 40, &[2, 9, 4]);
    for task in [PairTask::Nsp, PairTask::Sop] {
        let run = |seed| make_pairs(&docs, &own_plays(&docs), 24, task, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}

/// Both tokenizers: every pair of the first 200 speeches is `[CLS] A [SEP] B [SEP]` within
/// n_max, with segment 0 through the first [SEP] and 1 after it, padded with [PAD].
#[test]
fn pairs_from_the_corpus_with_both_tokenizers() {
    let text = shakespeare();
    let head: String = split_speeches(&text)[..200].concat();
    for tokenizer in [
        Tokenizer::Char(CharTokenizer::from_text(&text)),
        Tokenizer::Bpe(BpeTokenizer::train(&head, 300)),
    ] {
        let specials = tokenizer.specials();
        let (docs, _) = play_documents(&head, (64 - 3) / 2, &tokenizer);
        assert_eq!(docs.len(), 25);
        let plays: Vec<usize> = (0..25).map(|d| d / 5).collect();
        let pairs = make_pairs(&docs, &plays, 64, PairTask::Nsp, &mut StdRng::seed_from_u64(2)).unwrap();
        let refs: Vec<_> = pairs.iter().collect();
        let batch = pair_batch(&refs, 64, &specials);
        for (r, pair) in pairs.iter().enumerate() {
            let (na, nb) = (pair.a.len(), pair.b.len());
            let row = batch.x.row(r);
            let seg = &batch.x.segments.as_ref().unwrap()[r * 64..(r + 1) * 64];
            assert_eq!(batch.x.length(r), na + nb + 3);
            assert_eq!(
                (row[0], row[na + 1], row[na + nb + 2]),
                (specials.cls, specials.sep, specials.sep)
            );
            assert!(row[na + nb + 3..].iter().all(|&t| t == specials.pad));
            assert!(seg[..na + 2].iter().all(|&s| s == 0) && seg[na + 2..na + nb + 3].iter().all(|&s| s == 1));
            // No special id inside the segments.
            assert!(pair
                .a
                .iter()
                .chain(&pair.b)
                .all(|&t| ![specials.cls, specials.sep, specials.pad, specials.mask].contains(&t)));
        }
        assert_eq!(batch.labels, pairs.iter().map(|p| p.label).collect::<Vec<_>>());
    }
}

/// On the corpus, characters: no segment ends inside a word (the old token-by-token trimming
/// cut 1 IsNext B in 3 mid-word).
#[test]
fn corpus_segments_end_between_words() {
    let text = shakespeare();
    let head: String = split_speeches(&text)[..400].concat();
    let t = Tokenizer::Char(CharTokenizer::from_text(&text));
    let (docs, _) = play_documents(&head, (128 - 3) / 2, &t);
    let plays: Vec<usize> = (0..docs.len()).map(|d| d / 10).collect();
    for task in [PairTask::Nsp, PairTask::Sop] {
        let pairs: Vec<Pair> = make_pairs(&docs, &plays, 128, task, &mut StdRng::seed_from_u64(3)).unwrap();
        for p in &pairs {
            for segment in [t.decode(&p.a), t.decode(&p.b)] {
                assert!(
                    segment.ends_with(char::is_whitespace) || segment.ends_with(['.', '!', '?']),
                    "{segment:?}"
                );
            }
        }
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let one = synthetic(1, 10, &[3]);
    let e = make_pairs(&one, &[0], 32, PairTask::Nsp, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("another play") && e.contains("has 1 play"), "{e}");
    assert!(make_pairs(&one, &[0], 32, PairTask::Sop, &mut StdRng::seed_from_u64(0)).is_ok());
    let two = synthetic(2, 10, &[3]);
    let e = make_pairs(&two, &[0, 1], 4, PairTask::Nsp, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("n_max = 4"), "{e}");
    let e = make_pairs(&two, &[0, 1], 8, PairTask::Nsp, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(
        e.contains("sentence 0 of document 0 has 3 tokens") && e.contains("= 2"),
        "{e}"
    );
    let e = make_pairs(&two, &[0], 32, PairTask::Nsp, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("1 play ids for 2 documents"), "{e}");
    let single = synthetic(2, 1, &[3]);
    let e = make_pairs(&single, &[0, 1], 32, PairTask::Sop, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("no document has a chunk of two sentences"), "{e}");
}

/// `docs/objectives.md` §2b's worked example: a document of the three sentences s1, s2, s3 (and
/// room for all of them) gives A = s1, B = s2 s3 or A = s1 s2, B = s3, in order (IsNext) or
/// swapped (NotNext); over 200 seeds all four occur, and a short target length (probability
/// 0.1) gives only other consecutive runs of whole sentences.
#[test]
fn sop_worked_example_pairs() {
    let text = "ROMEO:\nIs the day so young? Ay.\nWhat news?\n";
    let t = Tokenizer::Char(CharTokenizer::from_text(text));
    let (docs, plays) = play_documents(text, 40, &t);
    let s: Vec<String> = docs[0].sentences.iter().map(|x| t.decode(x)).collect();
    assert_eq!(s, ["ROMEO:\nIs the day so young? ", "Ay.\n", "What news?\n"]);
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        // A short target can leave only one-sentence chunks: no pair at all.
        let pairs = match make_pairs(&docs, &plays, 83, PairTask::Sop, &mut StdRng::seed_from_u64(seed)) {
            Ok(pairs) => pairs,
            Err(e) if e.contains("no document has a chunk of two sentences") => continue,
            Err(e) => panic!("{e}"),
        };
        for p in pairs {
            let (a, b) = (t.decode(&p.a), t.decode(&p.b));
            let in_order = match p.label {
                NspLabel::IsNext => (a.clone(), b.clone()),
                NspLabel::NotNext => (b.clone(), a.clone()),
            };
            // Consecutive runs of whole sentences, s[i..j] then s[j..k].
            let valid = (0..3)
                .any(|i| (i + 1..3).any(|j| (j + 1..=3).any(|k| in_order == (s[i..j].concat(), s[j..k].concat()))));
            assert!(valid, "{a:?} | {b:?}");
            seen.insert((a, p.label.class()));
        }
    }
    // The full-length target (probability 0.9) gives these four.
    for (a, class) in [(&s[0], 0), (&s[2], 1)] {
        assert!(seen.contains(&(a.clone(), class)), "{seen:?}");
    }
    assert!(seen.contains(&(s[0].clone() + &s[1], 0)) && seen.contains(&(s[1].clone() + &s[2], 1)));
}
