//! Masked language modelling (MLM), the objective BERT pretrains with:
//!
//!   L_MLM = -(1/|M|) sum_{i in M} log P(x_i | X_masked)
//!
//! Source: Devlin et al., 2019, "BERT", section 3.1 (Task #1: Masked LM); the procedure follows
//! google-research/bert `create_pretraining_data.py` (variant A) and transformers'
//! `DataCollatorForLanguageModeling` (variant B), as `objectives.md` §1 specifies.
//!
//! The corruption, in the order the code does it:
//! 1. Candidates: every real position (before the sequence's length) whose token is not one of
//!    `[PAD]`, `[CLS]`, `[SEP]` or `[MASK]`. `[UNK]` is a candidate, as in bert.
//! 2. Choose the masked positions M:
//!    - variant A (default): exactly k = min(max_predictions, max(1, round_half_even(0.15 n)))
//!      per sequence, n its length, taken from a shuffle of the candidates (fewer if there are
//!      fewer candidates);
//!    - variant B: each candidate independently with probability 0.15.
//! 3. For each i in M draw once: with probability 0.8 x_masked_i = `[MASK]`; otherwise, on a fair
//!    coin, x_masked_i = x_i (kept) or a token drawn uniformly from the whole vocabulary.
//! 4. The label of i in M is its original token x_i; positions outside M carry no label.
//!
//! The loss is one mean over all masked positions of the batch (not a mean of per-sequence
//! means), with the sum and |M| kept for gradient accumulation; an empty M gives 0.

use crate::nn::Tokens;
use crate::tokenizer::{BpeTokenizer, CharTokenizer, SPECIALS};
use crate::{CrossEntropy, Tape, Var};
use rand::Rng;

/// How the masked positions M are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Selection {
    /// Variant A, the bert reference: exactly k per sequence (see [`num_predictions`]).
    PerSequence {
        /// bert's `max_predictions_per_seq`: 20 for sequences of 128, 80 for 512.
        max_predictions: usize,
    },
    /// Variant B, the transformers collator: each candidate independently with the mask rate.
    Independent,
}

/// The corruption's knobs; [`MlmConfig::default`] is BERT's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlmConfig {
    /// How M is chosen. Default: variant A with max_predictions 20.
    pub selection: Selection,
    /// The share of positions predicted, 0.15.
    pub mask_rate: f64,
    /// Of the chosen positions, the share replaced by `[MASK]`, 0.8. The rest are split evenly
    /// between a random token and the unchanged token.
    pub mask_token_prob: f64,
}

impl Default for MlmConfig {
    fn default() -> MlmConfig {
        MlmConfig {
            selection: Selection::PerSequence { max_predictions: 20 },
            mask_rate: 0.15,
            mask_token_prob: 0.8,
        }
    }
}

impl MlmConfig {
    /// Check the rates; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.mask_rate > 0.0 && self.mask_rate < 1.0) {
            return Err(format!("MlmConfig: mask_rate {} is not in (0, 1)", self.mask_rate));
        }
        if !(0.0..=1.0).contains(&self.mask_token_prob) {
            return Err(format!(
                "MlmConfig: mask_token_prob {} is not in [0, 1]",
                self.mask_token_prob
            ));
        }
        if let Selection::PerSequence { max_predictions: 0 } = self.selection {
            return Err("MlmConfig: max_predictions must be at least 1".into());
        }
        Ok(())
    }
}

/// What the corruption needs to know about the vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct MlmVocab {
    /// |V|: random replacements are drawn uniformly from 0..size.
    pub size: usize,
    /// The id of `[MASK]`.
    pub mask: usize,
    /// Ids that are never chosen: `[PAD]`, `[CLS]`, `[SEP]`, `[MASK]`.
    pub specials: Vec<usize>,
}

impl MlmVocab {
    /// The character tokenizer's: specials are ids 0..5 except `[UNK]`.
    pub fn for_chars(tokenizer: &CharTokenizer) -> MlmVocab {
        use crate::tokenizer::{CLS, MASK, PAD, SEP};
        MlmVocab {
            size: tokenizer.vocab_size(),
            mask: MASK,
            specials: vec![PAD, CLS, SEP, MASK],
        }
    }

    /// The BPE tokenizer's: its specials are the last five ids, in the order of `SPECIALS`.
    pub fn for_bpe(tokenizer: &BpeTokenizer) -> MlmVocab {
        let id = |name: &str| tokenizer.special(SPECIALS.iter().position(|s| *s == name).unwrap());
        MlmVocab {
            size: tokenizer.vocab_size(),
            mask: id("[MASK]"),
            specials: vec![id("[PAD]"), id("[CLS]"), id("[SEP]"), id("[MASK]")],
        }
    }
}

/// What happened to one chosen position (step 3 of the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// Replaced by `[MASK]` (80%).
    Mask,
    /// Replaced by a uniformly random token (10%); it may draw the original.
    Random,
    /// Left unchanged (10%).
    Keep,
}

/// A corrupted batch and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskedBatch {
    /// The model's input X_masked: the batch with the chosen positions corrupted.
    pub x_masked: Tokens,
    /// M as flat indices b * T + i, sorted.
    pub masked_positions: Vec<usize>,
    /// The original token x_i of each masked position, in the same order.
    pub labels: Vec<usize>,
    /// The branch taken at each masked position, in the same order.
    pub branches: Vec<Branch>,
}

impl MaskedBatch {
    /// One label per position of the batch: `Some(x_i)` for i in M, `None` elsewhere.
    pub fn labels_per_position(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.x_masked.ids.len()];
        for (&i, &x_i) in self.masked_positions.iter().zip(&self.labels) {
            out[i] = Some(x_i);
        }
        out
    }
}

/// Variant A's count for a sequence of n real tokens:
/// k = min(max_predictions, max(1, round_half_even(0.15 n))).
///
/// ```
/// use microlm::objectives::mlm::num_predictions;
/// assert_eq!(num_predictions(30, 0.15, 20), 4); // 4.5 rounds to the even 4
/// assert_eq!(num_predictions(512, 0.15, 20), 20);
/// ```
pub fn num_predictions(n: usize, mask_rate: f64, max_predictions: usize) -> usize {
    let k = (mask_rate * n as f64).round_ties_even() as usize;
    max_predictions.min(k.max(1))
}

/// Corrupt a batch (steps 1 to 4 of the module docs). Deterministic for a given `rng` state.
pub fn mask_tokens(x: &Tokens, vocab: &MlmVocab, config: &MlmConfig, rng: &mut impl Rng) -> MaskedBatch {
    let (batch, seq_len) = (x.batch, x.seq_len);
    let mut x_masked = x.clone();
    let mut masked_positions = Vec::new();
    let mut labels = Vec::new();
    let mut branches = Vec::new();
    for b in 0..batch {
        let n = x.lengths.as_ref().map_or(seq_len, |l| l[b]);
        let row = &x.ids[b * seq_len..b * seq_len + n];
        // 1. candidates
        let mut candidates: Vec<usize> = (0..n).filter(|&i| !vocab.specials.contains(&row[i])).collect();
        // 2. M for this sequence
        let mut chosen: Vec<usize> = match config.selection {
            Selection::PerSequence { max_predictions } => {
                let k = num_predictions(n, config.mask_rate, max_predictions).min(candidates.len());
                for j in 0..k {
                    // a partial Fisher-Yates shuffle: the first k entries are a uniform sample
                    let pick = rng.random_range(j..candidates.len());
                    candidates.swap(j, pick);
                }
                candidates.truncate(k);
                candidates
            }
            Selection::Independent => candidates
                .into_iter()
                .filter(|_| rng.random_bool(config.mask_rate))
                .collect(),
        };
        chosen.sort_unstable();
        // 3. and 4.
        for i in chosen {
            let flat = b * seq_len + i;
            let x_i = x.ids[flat];
            let branch = if rng.random_bool(config.mask_token_prob) {
                x_masked.ids[flat] = vocab.mask;
                Branch::Mask
            } else if rng.random_bool(0.5) {
                Branch::Keep
            } else {
                x_masked.ids[flat] = rng.random_range(0..vocab.size);
                Branch::Random
            };
            masked_positions.push(flat);
            labels.push(x_i);
            branches.push(branch);
        }
    }
    MaskedBatch {
        x_masked,
        masked_positions,
        labels,
        branches,
    }
}

/// L_MLM from the logits at the masked positions: `logits_masked` is `[|M|, V]`, row j the
/// prediction for `masked_positions[j]`, and `labels[j]` its original token. Returns the mean
/// (the loss), the sum and |M|; an empty M gives 0 with zero gradient.
///
/// dL/dz_j = (softmax(z_j) - onehot(x_j)) / |M|.
pub fn mlm_loss(tape: &mut Tape, logits_masked: Var, labels: &[usize]) -> CrossEntropy {
    let targets: Vec<Option<usize>> = labels.iter().map(|&x_i| Some(x_i)).collect();
    tape.cross_entropy(logits_masked, &targets)
}
