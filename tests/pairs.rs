//! Documents, sentences and next-sentence-prediction pairs (`docs/objectives.md` §2).

use microlm::data::documents::{split_documents, split_sentences, split_speeches, SPEECHES_PER_DOCUMENT};
use microlm::data::pairs::{make_pairs, pair_batch, trim_pair, NspLabel};
use microlm::data::{load_text, tokenize_documents, Document};
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

/// On documents whose chunks have at least 2 sentences (one-token sentences, so every target
/// length of at least 2 takes two or more), a coin decides: P(NotNext) = 0.5 +- 0.025 over
/// 10^4 pairs. Only a document's last chunk can hold one sentence: at most 150 of the pairs.
#[test]
fn half_the_pairs_are_not_next() {
    let docs = synthetic(150, 1000, &[1]);
    let pairs = make_pairs(&docs, 20, &mut StdRng::seed_from_u64(0)).unwrap();
    assert!(pairs.len() >= 10_000, "{} pairs", pairs.len());
    let not_next = pairs[..10_000].iter().filter(|p| p.label == NspLabel::NotNext).count();
    let p = not_next as f64 / 10_000.0;
    assert!((p - 0.5).abs() <= 0.025, "P(NotNext) = {p}");
}

/// Read from the tokens themselves: an untrimmed IsNext pair's B starts with the sentence
/// after A's last one, in A's document; every token of a NotNext B comes from another
/// document; |A|, |B| >= 1 and the pair fits in n_max.
#[test]
fn pairs_come_from_where_they_should() {
    let docs = synthetic(60, 100, &[3, 7, 1, 12, 5]);
    let mut checked_next = 0;
    for n_max in [12, 24, 60] {
        let pairs = make_pairs(&docs, n_max, &mut StdRng::seed_from_u64(n_max as u64)).unwrap();
        for pair in &pairs {
            assert!(!pair.a.is_empty() && !pair.b.is_empty(), "n_max {n_max}: {pair:?}");
            assert!(pair.a.len() + pair.b.len() + 3 <= n_max);
            let a_doc = origin(pair.a[0]).0;
            assert!(pair.a.iter().all(|&t| origin(t).0 == a_doc));
            match pair.label {
                NspLabel::NotNext => assert!(pair.b.iter().all(|&t| origin(t).0 != a_doc), "{pair:?}"),
                NspLabel::IsNext if !pair.trimmed => {
                    let (_, a_last) = origin(*pair.a.last().unwrap());
                    assert_eq!(pair.b[0], token(a_doc, a_last + 1, 0), "{pair:?}");
                    checked_next += 1;
                }
                NspLabel::IsNext => {}
            }
        }
    }
    assert!(checked_next > 100, "only {checked_next} untrimmed IsNext pairs");
}

/// Trimming takes from the longer side until the pair fits, keeping a contiguous piece.
#[test]
fn trimming_shortens_the_longer_segment() {
    let (a, b, trimmed) = trim_pair(
        (0..10).collect(),
        (100..103).collect(),
        8,
        &mut StdRng::seed_from_u64(1),
    );
    assert!(trimmed);
    assert_eq!(b, [100, 101, 102]);
    assert_eq!(a.len(), 5);
    assert!(
        a.windows(2).all(|w| w[1] == w[0] + 1),
        "{a:?} is not a contiguous piece"
    );
    let (a, b, trimmed) = trim_pair(vec![1], vec![2], 2, &mut StdRng::seed_from_u64(1));
    assert_eq!((a, b, trimmed), (vec![1], vec![2], false));
}

#[test]
fn pairs_are_deterministic_under_a_seed() {
    let docs = synthetic(10, 40, &[2, 9, 4]);
    let run = |seed| make_pairs(&docs, 24, &mut StdRng::seed_from_u64(seed)).unwrap();
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
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
        let docs = tokenize_documents(&head, SPEECHES_PER_DOCUMENT, &tokenizer);
        assert_eq!(docs.len(), 25);
        let pairs = make_pairs(&docs, 64, &mut StdRng::seed_from_u64(2)).unwrap();
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

#[test]
fn bad_input_gets_a_clear_error() {
    let one = synthetic(1, 10, &[3]);
    let e = make_pairs(&one, 32, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("at least 2 documents") && e.contains("has 1"), "{e}");
    let two = synthetic(2, 10, &[3]);
    let e = make_pairs(&two, 4, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("n_max = 4"), "{e}");
}
