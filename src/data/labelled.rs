//! Labelled texts for downstream tasks: a [`TextTask`] is class names and three splits of
//! [`LabelledText`], and [`text_batch`] turns texts into a padded batch with their classes.
//! The speaker task (`speakers.rs`) and the acceptability task (`acceptability.rs`) both build
//! one; fine-tuning (`recipe::finetune`) reads any.

use super::Batch;
use crate::tokenizer::Tokenizer;

/// One text and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledText {
    /// The index of its class in [`TextTask::names`].
    pub class: usize,
    /// The text.
    pub text: String,
}

/// A classification task: what it is, its class names and the three splits.
#[derive(Clone, Debug)]
pub struct TextTask {
    /// A short title for tables and charts ("speaker attribution, 10 speakers").
    pub title: String,
    /// What one example is, in the plural ("speeches", "lines").
    pub unit: String,
    /// Class names.
    pub names: Vec<String>,
    /// About 80% of the examples.
    pub train: Vec<LabelledText>,
    /// About 10%, for early stopping.
    pub val: Vec<LabelledText>,
    /// About 10%, scored once at the end.
    pub test: Vec<LabelledText>,
}

impl TextTask {
    /// Examples per class in `split`.
    pub fn class_counts(&self, split: &[LabelledText]) -> Vec<usize> {
        let mut counts = vec![0; self.names.len()];
        for s in split {
            counts[s.class] += 1;
        }
        counts
    }

    /// The accuracy of always answering the training split's most frequent class (the lowest
    /// index on a tie), on `split`.
    pub fn majority_baseline(&self, split: &[LabelledText]) -> f64 {
        let train = self.class_counts(&self.train);
        let majority = (0..train.len())
            .max_by_key(|&c| (train[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        self.class_counts(split)[majority] as f64 / split.len().max(1) as f64
    }
}

/// Texts as a padded batch of their first `max_len` tokens (no special tokens), with their
/// lengths, and their classes.
pub fn text_batch(texts: &[&LabelledText], tokenizer: &Tokenizer, max_len: usize) -> (Batch, Vec<usize>) {
    let pad = tokenizer.specials().pad;
    let rows: Vec<Vec<usize>> = texts
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
    let batch = Batch::new(ids, texts.len(), t).with_lengths(lengths);
    (batch, texts.iter().map(|s| s.class).collect())
}
