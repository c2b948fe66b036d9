//! A downstream task whose cue a character model can learn: acceptability, in the manner of
//! CoLA (Warstadt et al., 2019, "Neural Network Acceptability Judgments"), with labels made from
//! the corpus. A real line of held-out text is class 0 ("real"); the same line with one
//! corruption is class 1 ("corrupted"). Every line gives one example of each class, so the
//! classes are balanced exactly.
//!
//! - **Lines**: the distinct spoken lines ([`distinct_lines`]) of at least 20 characters in the
//!   held-out text, the part of the corpus after its first 90% of characters, which the
//!   `mlm` example never trains on.
//! - **Corruptions**, one per negative, taken in turn (line i gets corruption i mod 3, or the
//!   next that applies):
//!   - [`Corruption::Swap`]: two different all-lowercase words trade places;
//!   - [`Corruption::Replace`]: one all-lowercase word becomes a different frequent word of the
//!     same length, drawn in proportion to its count in the first 90% of the corpus;
//!   - [`Corruption::Shuffle`]: the inner letters of one all-lowercase word of four letters or
//!     more are shuffled (first and last letters stay).
//!
//!   Swap and shuffle keep every character count; replace keeps the length and draws its word
//!   from the corpus's own word distribution. A bag of characters can therefore tell the
//!   classes apart only through the replaced words, and barely
//!   (`recipe::baselines::bag_of_characters`). Case is never touched, so capitals give nothing
//!   away either.
//! - **Split** by position, as the speaker task's: of every ten lines, the first is test, the
//!   second validation, the other eight training; a line and its corruption share a split.
//!
//! Words are maximal runs of ASCII letters; punctuation and spaces stay where they were.

use super::documents::distinct_lines;
use super::labelled::{LabelledText, TextTask};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// One way of corrupting a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Two different lowercase words trade places.
    Swap,
    /// One lowercase word becomes a frequent word of the same length.
    Replace,
    /// The inner letters of one lowercase word are shuffled.
    Shuffle,
}

impl Corruption {
    /// "swap,shuffle" -> [Swap, Shuffle]. The error names the flag `--corruptions` and the item.
    pub fn parse_list(list: &str) -> Result<Vec<Corruption>, String> {
        list.split(',')
            .map(|item| match item.trim() {
                "swap" => Ok(Corruption::Swap),
                "replace" => Ok(Corruption::Replace),
                "shuffle" => Ok(Corruption::Shuffle),
                other => Err(format!(
                    "--corruptions: '{other}' is not a corruption (swap, replace, shuffle)"
                )),
            })
            .collect()
    }
}

/// All three, in the order they are taken.
pub const ALL_CORRUPTIONS: [Corruption; 3] = [Corruption::Swap, Corruption::Replace, Corruption::Shuffle];

/// Lowercase words that occur at least `min_count` times, grouped by length, with their counts.
#[derive(Clone, Debug, Default)]
pub struct FrequentWords {
    /// Length in letters -> (word, count), most frequent first.
    pub by_length: BTreeMap<usize, Vec<(String, usize)>>,
}

impl FrequentWords {
    /// Count the all-lowercase words of `text` and keep those seen at least `min_count` times.
    pub fn count(text: &str, min_count: usize) -> FrequentWords {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (start, end) in word_spans(text) {
            let w = &text[start..end];
            if is_lowercase_word(w) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut by_length: BTreeMap<usize, Vec<(String, usize)>> = BTreeMap::new();
        for (w, c) in counts.into_iter().filter(|&(_, c)| c >= min_count) {
            by_length.entry(w.len()).or_default().push((w.to_string(), c));
        }
        for words in by_length.values_mut() {
            words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        FrequentWords { by_length }
    }

    /// A word of `len` letters other than `not`, drawn in proportion to its count.
    pub fn draw(&self, len: usize, not: &str, rng: &mut impl Rng) -> Option<&str> {
        let words: Vec<&(String, usize)> = self.by_length.get(&len)?.iter().filter(|(w, _)| w != not).collect();
        let total: usize = words.iter().map(|(_, c)| c).sum();
        if total == 0 {
            return None;
        }
        let mut r = rng.random_range(0..total);
        for (w, c) in words {
            if r < *c {
                return Some(w);
            }
            r -= c;
        }
        None
    }
}

/// Byte spans of the maximal runs of ASCII letters in `line`.
pub fn word_spans(line: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in line.bytes().enumerate().chain(std::iter::once((line.len(), b' '))) {
        match (b.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    spans
}

fn is_lowercase_word(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())
}

/// `line` with one `kind` of corruption drawn with `rng`, or `None` if it does not apply (no
/// two different lowercase words, no replacement of the same length, no word to shuffle).
pub fn corrupt(
    line: &str,
    kind: Corruption,
    edits: usize,
    words: &FrequentWords,
    rng: &mut impl Rng,
) -> Option<String> {
    let spans: Vec<(usize, usize)> = word_spans(line)
        .into_iter()
        .filter(|&(s, e)| is_lowercase_word(&line[s..e]))
        .collect();
    let replace = |(s, e): (usize, usize), with: &str| format!("{}{with}{}", &line[..s], &line[e..]);
    match kind {
        Corruption::Swap => {
            let pairs: Vec<(usize, usize)> = (0..spans.len())
                .flat_map(|i| (i + 1..spans.len()).map(move |j| (i, j)))
                .filter(|&(i, j)| line[spans[i].0..spans[i].1] != line[spans[j].0..spans[j].1])
                .collect();
            let &(i, j) = pairs.choose(rng)?;
            let ((s1, e1), (s2, e2)) = (spans[i], spans[j]);
            Some(format!(
                "{}{}{}{}{}",
                &line[..s1],
                &line[s2..e2],
                &line[e1..s2],
                &line[s1..e1],
                &line[e2..]
            ))
        }
        Corruption::Replace => {
            let mut order = spans.clone();
            order.shuffle(rng);
            order.into_iter().find_map(|span| {
                let w = &line[span.0..span.1];
                words.draw(w.len(), w, rng).map(|new| replace(span, new))
            })
        }
        Corruption::Shuffle => {
            let can: Vec<(usize, usize)> = spans
                .into_iter()
                .filter(|&(s, e)| {
                    e - s >= 4
                        && line.as_bytes()[s + 1..e - 1]
                            .iter()
                            .any(|&b| b != line.as_bytes()[s + 1])
                })
                .collect();
            if can.is_empty() {
                return None;
            }
            let mut out = line.as_bytes().to_vec(); // shuffling within a word keeps every offset
            for &(s, e) in can.choose_multiple(rng, edits.max(1)) {
                let inner = &mut out[s + 1..e - 1];
                let before = inner.to_vec();
                while inner == &before[..] {
                    inner.shuffle(rng);
                }
            }
            Some(String::from_utf8(out).expect("ASCII letters shuffled among themselves"))
        }
    }
}

/// The text after the first 90% of `text`'s characters (the `mlm` example's validation split,
/// for a character tokenizer).
pub fn held_out(text: &str) -> &str {
    let n = text.chars().count();
    let cut = (n as f64 * 0.9) as usize;
    let byte = text.char_indices().nth(cut).map_or(text.len(), |(b, _)| b);
    &text[byte..]
}

/// The text's first 90% of characters (what the `mlm` example trains on).
pub fn pretraining_part(text: &str) -> &str {
    let held = held_out(text);
    &text[..text.len() - held.len()]
}

/// Build the task from the corpus `text`, with the corruptions `kinds` taken in turn, drawn
/// with `seed`. Errors: no line can be corrupted, or a split is left empty.
pub fn acceptability_task(text: &str, kinds: &[Corruption], edits: usize, seed: u64) -> Result<TextTask, String> {
    if kinds.is_empty() {
        return Err("acceptability_task: no corruption kinds given".into());
    }
    let words = FrequentWords::count(pretraining_part(text), 10);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    for line in distinct_lines(held_out(text), 20) {
        let bad = (0..kinds.len()).find_map(|k| {
            let kind = kinds[(i + k) % kinds.len()];
            corrupt(&line, kind, edits, &words, &mut rng)
        });
        let Some(bad) = bad else { continue };
        let split = match i % 10 {
            0 => &mut test,
            1 => &mut val,
            _ => &mut train,
        };
        split.push(LabelledText { class: 0, text: line });
        split.push(LabelledText { class: 1, text: bad });
        i += 1;
    }
    if test.is_empty() || val.is_empty() || train.is_empty() {
        return Err("too few held-out lines to split into train, validation and test".into());
    }
    Ok(TextTask {
        title: "acceptability: real line or corrupted".into(),
        unit: "lines".into(),
        names: vec!["real".into(), "corrupted".into()],
        train,
        val,
        test,
    })
}
