//! Plays, found from who speaks, and the documents of whole sentences that sentence-pair
//! objectives read.
//!
//! Tiny Shakespeare runs several plays together with no title between them. What changes at a
//! play boundary is the cast, so a boundary is read off the speaker names (a speech's first
//! line, `ROMEO:`):
//!
//! - A **principal** is a speaker name written in capitals (`ROMEO`, `KING RICHARD II`); roles
//!   such as `First Citizen` or `Servant` recur in every play and are left out.
//! - A **play starts** before speech i when the principals of the [`CAST_WINDOW`] speeches
//!   before i and of the [`CAST_WINDOW`] after it are both non-empty and share no name; of a run
//!   of such positions, the first. Speech 0 starts the first play.
//!
//! On Tiny Shakespeare this finds 12 "plays" (`tests/pairs.rs` checks the positions): 7 of the
//! 8 boundaries between its 9 plays (Coriolanus, Richard III, Richard II, Romeo and Juliet,
//! Henry VI part 3, The Winter's Tale, Measure for Measure, The Taming of the Shrew, The
//! Tempest), plus 4 splits inside a play where the cast changes completely (the servants'
//! opening of Romeo and Juliet, the shepherds' act of The Winter's Tale, two scenes of The
//! Tempest). The one it misses: Henry VI part 3 follows Romeo and Juliet with a Montague and a
//! Prince in both casts. A negative drawn from
//! "another play" thus comes from a different cast, almost always from a different play.
//!
//! Documents never cross a play boundary, and a speech's name line is joined to its first
//! sentence ([`with_name_lines`]): each play's speeches are taken
//! [`SPEECHES_PER_DOCUMENT`] at a time (the last document of a play may hold fewer).

use super::documents::{split_sentences, split_speeches, Document, SPEECHES_PER_DOCUMENT};
use crate::tokenizer::Tokenizer;
use std::collections::BTreeSet;

/// Speeches on each side of a candidate play boundary whose principals are compared.
pub const CAST_WINDOW: usize = 100;

/// The speaker of a speech: its first line without the colon, if that line ends with one.
///
/// ```
/// use microlm::data::plays::speaker;
/// assert_eq!(speaker("KING RICHARD II:\nOld John of Gaunt,\n"), Some("KING RICHARD II"));
/// assert_eq!(speaker("no name here\n"), None);
/// ```
pub fn speaker(speech: &str) -> Option<&str> {
    let first = speech.lines().next()?.trim();
    first.strip_suffix(':').filter(|name| !name.is_empty())
}

/// A principal: a name with at least one letter and no lower-case letter.
pub fn is_principal(name: &str) -> bool {
    name.chars().any(char::is_alphabetic) && !name.chars().any(char::is_lowercase)
}

/// The indices of the speeches that start a play (always 0 first; empty for no speeches): the
/// rule of the module's doc, with `window` speeches on each side.
pub fn play_starts(speeches: &[&str], window: usize) -> Vec<usize> {
    if speeches.is_empty() {
        return Vec::new();
    }
    let principals: Vec<Option<&str>> = speeches
        .iter()
        .map(|s| speaker(s).filter(|n| is_principal(n)))
        .collect();
    let cast =
        |range: std::ops::Range<usize>| -> BTreeSet<&str> { principals[range].iter().flatten().copied().collect() };
    let mut starts = vec![0];
    let mut previous_was_boundary = false;
    for i in 1..speeches.len() {
        let before = cast(i.saturating_sub(window)..i);
        let after = cast(i..(i + window).min(speeches.len()));
        let boundary = !before.is_empty() && !after.is_empty() && before.is_disjoint(&after);
        if boundary && !previous_was_boundary {
            starts.push(i);
        }
        previous_was_boundary = boundary;
    }
    starts
}

/// Documents of whole sentences for sentence pairs, and the play of each: `text`'s speeches cut
/// into plays ([`play_starts`] with [`CAST_WINDOW`]), each play's speeches taken
/// [`SPEECHES_PER_DOCUMENT`] at a time, each document cut into sentences
/// (`documents::split_sentences`) and tokenized. A sentence longer than `max_sentence` tokens
/// is cut into pieces of whole words ([`word_pieces`]), so that two pieces always fit in a pair.
pub fn play_documents(text: &str, max_sentence: usize, tokenizer: &Tokenizer) -> (Vec<Document>, Vec<usize>) {
    let speeches = split_speeches(text);
    let mut starts = play_starts(&speeches, CAST_WINDOW);
    starts.push(speeches.len());
    let (mut documents, mut plays) = (Vec::new(), Vec::new());
    for (play, bounds) in starts.windows(2).enumerate() {
        for run in speeches[bounds[0]..bounds[1]].chunks(SPEECHES_PER_DOCUMENT) {
            let sentences: Vec<Vec<usize>> = run
                .iter()
                .flat_map(|speech| with_name_lines(split_sentences(speech)))
                .flat_map(|s| word_pieces(&s, max_sentence, tokenizer))
                .collect();
            if !sentences.is_empty() {
                documents.push(Document { sentences });
                plays.push(play);
            }
        }
    }
    (documents, plays)
}

/// The sentences of one speech with its name line (`ROMEO:\n`, the first sentence) joined to
/// the sentence after it, so that a segment never ends on the name of a speaker whose words are
/// not in it. Only the first sentence is taken for a name line: a later verse line that happens
/// to end with a colon is left alone.
///
/// ```
/// use microlm::data::plays::with_name_lines;
/// assert_eq!(with_name_lines(vec!["ROMEO:\n", "Ay.\n", "Ha!"]), ["ROMEO:\nAy.\n", "Ha!"]);
/// let later = with_name_lines(vec!["ROMEO:\n", "Hear me:\n", "Ay.\n"]);
/// assert_eq!(later, ["ROMEO:\nHear me:\n", "Ay.\n"]);
/// ```
pub fn with_name_lines(sentences: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = sentences.iter().map(|s| s.to_string()).collect();
    let is_name_line = |s: &str| speaker(s).is_some() && s.trim_end().lines().count() == 1;
    if out.len() >= 2 && is_name_line(&out[0]) {
        let name = out.remove(0);
        out[0] = name + &out[0];
    }
    out
}

/// `sentence` tokenized, as one piece if it has at most `max_tokens` tokens; otherwise cut
/// between words (after a run of white space) into pieces of at most `max_tokens`, each as long
/// as the words allow. Only a single word longer than `max_tokens` is cut inside, into pieces of
/// `max_tokens`. Empty pieces are dropped.
///
/// ```
/// use microlm::data::plays::word_pieces;
/// use microlm::tokenizer::{CharTokenizer, Tokenizer};
/// let t = Tokenizer::Char(CharTokenizer::from_text("Now is the winter"));
/// let pieces: Vec<String> = word_pieces("Now is the winter", 8, &t).iter().map(|p| t.decode(p)).collect();
/// assert_eq!(pieces, ["Now is ", "the ", "winter"]);
/// ```
pub fn word_pieces(sentence: &str, max_tokens: usize, tokenizer: &Tokenizer) -> Vec<Vec<usize>> {
    assert!(max_tokens >= 1, "word_pieces: max_tokens must be at least 1");
    let whole = tokenizer.encode(sentence);
    if whole.len() <= max_tokens {
        return if whole.is_empty() { Vec::new() } else { vec![whole] };
    }
    let mut pieces: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for word in sentence.split_inclusive(char::is_whitespace) {
        let ids = tokenizer.encode(word);
        if current.len() + ids.len() > max_tokens && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        if ids.len() > max_tokens {
            // One word longer than a piece: cut inside it, the only place that ever happens.
            for part in ids.chunks(max_tokens) {
                pieces.push(part.to_vec());
            }
        } else {
            current.extend(ids);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}
