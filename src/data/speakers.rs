//! A downstream task with real labels from the corpus: speaker attribution. Tiny Shakespeare
//! writes each speech as a `NAME:` line followed by the speech; the task is to read a speech
//! without its name line and say who speaks it, among the most frequent speakers.
//!
//! - **Speeches**: the pieces between blank lines (`documents::split_speeches`) whose first
//!   line is a name followed by a colon; the text is the rest of the piece, its lines joined by
//!   spaces.
//! - **Classes**: the `k` speakers with the most speeches (ties broken by name), class 0 the most
//!   frequent.
//! - **Split**: by position among the chosen speeches, deterministically: every tenth speech
//!   (index 0, 10, 20, ..) is test, the one after it validation, the other eight training. The
//!   plays follow each other in the file, so every split holds every play's speakers.
//!
//! The speeches' text is also in the masked LM's pretraining text (its first 90%); the speakers
//! are not: pretraining never sees a name line's link to its speech as a label.

use super::documents::split_speeches;
use super::Batch;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;

/// One speech and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct Speech {
    /// The index of its speaker in [`SpeakerTask::names`].
    pub speaker: usize,
    /// The speech, without its name line.
    pub text: String,
}

/// The task: class names and the three splits.
#[derive(Clone, Debug)]
pub struct SpeakerTask {
    /// Speaker names, most speeches first.
    pub names: Vec<String>,
    /// About 80% of the speeches.
    pub train: Vec<Speech>,
    /// About 10%, for early stopping.
    pub val: Vec<Speech>,
    /// About 10%, scored once at the end.
    pub test: Vec<Speech>,
}

/// Build the task from the corpus `text` with the `k` most frequent speakers. Error: fewer
/// than `k` speakers, or a split left empty.
pub fn speaker_task(text: &str, k: usize) -> Result<SpeakerTask, String> {
    let speeches: Vec<(String, String)> = split_speeches(text).into_iter().filter_map(name_and_text).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &speeches {
        *counts.entry(name).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if ranked.len() < k {
        return Err(format!(
            "the corpus has {} speakers, fewer than the {k} asked for",
            ranked.len()
        ));
    }
    let names: Vec<String> = ranked[..k].iter().map(|(n, _)| n.to_string()).collect();
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let chosen = speeches.iter().filter_map(|(name, text)| {
        let speaker = names.iter().position(|n| n == name)?;
        Some(Speech {
            speaker,
            text: text.clone(),
        })
    });
    for (i, speech) in chosen.enumerate() {
        match i % 10 {
            0 => test.push(speech),
            1 => val.push(speech),
            _ => train.push(speech),
        }
    }
    if test.is_empty() || val.is_empty() || train.is_empty() {
        return Err(format!(
            "too few speeches by the top {k} speakers to split into train, validation and test"
        ));
    }
    Ok(SpeakerTask {
        names,
        train,
        val,
        test,
    })
}

/// ("NAME", "the speech") if the piece opens with a line "NAME:" and has text after it.
fn name_and_text(piece: &str) -> Option<(String, String)> {
    let mut lines = piece.trim().lines();
    let name = lines.next()?.strip_suffix(':')?;
    let text = lines.collect::<Vec<_>>().join(" ");
    (!name.is_empty() && !text.trim().is_empty()).then(|| (name.to_string(), text))
}

impl SpeakerTask {
    /// Speeches per class in `split`.
    pub fn class_counts(&self, split: &[Speech]) -> Vec<usize> {
        let mut counts = vec![0; self.names.len()];
        for s in split {
            counts[s.speaker] += 1;
        }
        counts
    }

    /// The accuracy of always answering the training split's most frequent class, on `split`.
    pub fn majority_baseline(&self, split: &[Speech]) -> f64 {
        let train = self.class_counts(&self.train);
        let majority = (0..train.len())
            .max_by_key(|&c| (train[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        self.class_counts(split)[majority] as f64 / split.len().max(1) as f64
    }
}

/// Speeches as a padded batch of their first `max_len` tokens (no special tokens), with their
/// lengths, and their classes.
pub fn speech_batch(speeches: &[&Speech], tokenizer: &Tokenizer, max_len: usize) -> (Batch, Vec<usize>) {
    let pad = tokenizer.specials().pad;
    let rows: Vec<Vec<usize>> = speeches
        .iter()
        .map(|s| {
            let mut ids = tokenizer.encode(&s.text);
            ids.truncate(max_len);
            ids
        })
        .collect();
    let t = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let lengths = rows.iter().map(|r| r.len().max(1)).collect();
    let ids = rows
        .into_iter()
        .flat_map(|r| r.into_iter().chain(std::iter::repeat(pad)).take(t))
        .collect();
    let batch = Batch::new(ids, speeches.len(), t).with_lengths(lengths);
    (batch, speeches.iter().map(|s| s.speaker).collect())
}
