//! Masked language modelling (MLM), the objective BERT pretrains with:
//!
//!   L_MLM = -(1/|M|) sum_{i in M} log P(x_i | X_masked)
//!
//! Source: Devlin et al., 2019, "BERT", section 3.1 (Task #1: Masked LM); the procedure follows
//! google-research/bert `create_pretraining_data.py` (variant A) and transformers'
//! `DataCollatorForLanguageModeling` (variant B), as `docs/objectives.md` §1 specifies.
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
//!
//! The model, [`MaskedLm`], is BERT's shape: the bidirectional encoder, then the MLM head,
//! evaluated only at the masked positions (the others carry no label, so their logits would be
//! computed for nothing):
//!
//!   h = Encoder(X_masked)          [B, T, D]
//!   h_M = rows of h at M           [|M|, D]
//!   z_M = MlmHead(h_M)             [|M|, V]
//!   L = mean over M of CE(z_M, x_M)

use super::{Evaluation, Tally};
use crate::checkpoint;
use crate::data::Batch;
use crate::nn::{Encoder, MlmHead, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

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
    /// The vocabulary of `tokenizer`: `[PAD]`, `[CLS]`, `[SEP]` and `[MASK]` are never chosen.
    pub fn of(tokenizer: &Tokenizer) -> MlmVocab {
        let s = tokenizer.specials();
        MlmVocab {
            size: tokenizer.vocab_size(),
            mask: s.mask,
            specials: vec![s.pad, s.cls, s.sep, s.mask],
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
    pub x_masked: Batch,
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
pub fn mask_tokens(x: &Batch, vocab: &MlmVocab, config: &MlmConfig, rng: &mut impl Rng) -> MaskedBatch {
    let (batch, seq_len) = (x.batch, x.seq_len);
    let mut x_masked = x.clone();
    let mut masked_positions = Vec::new();
    let mut labels = Vec::new();
    let mut branches = Vec::new();
    for b in 0..batch {
        let n = x.length(b);
        let row = &x.row(b)[..n];
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

/// Encoder (parameters `encoder.*`) and MLM head (`mlm_head.*`), with the corruption it trains
/// under.
#[derive(Clone, Debug)]
pub struct MaskedLm {
    /// The stack.
    pub encoder: Encoder,
    /// Transform (optional) and the output projection, tied by `config.tie_embeddings`.
    pub head: MlmHead,
    /// Which ids the corruption may choose and what it writes.
    pub vocab: MlmVocab,
    /// How positions are chosen and corrupted.
    pub corruption: MlmConfig,
}

impl MaskedLm {
    /// Build the model for `config` and `tokenizer`'s vocabulary, with BERT's corruption;
    /// `head_transform` chooses BERT's head (Linear-GELU-LayerNorm before the projection) or a
    /// plain projection. An invalid config is refused with the field named.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        tokenizer: &Tokenizer,
        head_transform: bool,
        rng: &mut impl Rng,
    ) -> Result<MaskedLm, String> {
        if config.vocab_size != tokenizer.vocab_size() {
            return Err(format!(
                "MaskedLm: config.vocab_size {} but the tokenizer has {} ids",
                config.vocab_size,
                tokenizer.vocab_size()
            ));
        }
        let encoder = Encoder::new(params, "encoder", config, rng)?;
        let (token, eps) = (&encoder.embed.token, config.layer_norm_eps);
        let head = MlmHead::new(
            params,
            "mlm_head",
            token,
            config.tie_embeddings,
            head_transform,
            eps,
            rng,
        );
        Ok(MaskedLm {
            encoder,
            head,
            vocab: MlmVocab::of(tokenizer),
            corruption: MlmConfig::default(),
        })
    }

    /// What a checkpoint needs to rebuild this model and repeat its training: the config, the
    /// head, and the corruption's settings.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.encoder.config.to_metadata();
        let c = &self.corruption;
        let selection = match c.selection {
            Selection::PerSequence { max_predictions } => format!("per_sequence:{max_predictions}"),
            Selection::Independent => "independent".into(),
        };
        m.insert("mlm.head_transform".into(), self.head.transform.is_some().to_string());
        m.insert("mlm.selection".into(), selection);
        m.insert("mlm.mask_rate".into(), c.mask_rate.to_string());
        m.insert("mlm.mask_token_prob".into(), c.mask_token_prob.to_string());
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote (the optimizer's state in it
    /// is skipped).
    pub fn load(path: &Path) -> Result<(MaskedLm, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, tokenizer, metadata, params| {
            let head_transform = metadata.get("mlm.head_transform").map(String::as_str) != Some("false");
            MaskedLm::new(params, config, tokenizer, head_transform, &mut StdRng::seed_from_u64(0))
        })
    }

    /// z_M: logits at the given flat positions (b * T + i) of `x`, `[positions.len(), V]`.
    pub fn logits_at(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &Batch,
        positions: &[usize],
        rng: &mut impl Rng,
    ) -> Var {
        let h = self.encoder.forward(tape, params, x, rng); // [B, T, D]
        self.head_at(tape, params, h, positions)
    }

    /// z_M from encoder states h [B, T, D]: the rows at the flat `positions`, through the head.
    pub fn head_at(&self, tape: &mut Tape, params: &Params, h: Var, positions: &[usize]) -> Var {
        let (b, t, d) = match *tape.shape(h) {
            [b, t, d] => (b, t, d),
            ref s => panic!("MaskedLm::head_at: expected h [B, T, D], got {s:?}"),
        };
        let h = tape.reshape(h, &[b * t, d]); // [B*T, D]
        let h_masked = tape.embedding(h, positions, &[positions.len()]); // gather rows, [|M|, D]
        self.head.forward(tape, params, h_masked) // [|M|, V]
    }

    /// L_MLM of a clean batch `x`: corrupt it with draws from `rng`, then score it. Call
    /// `backward` on `.mean`.
    pub fn loss(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> CrossEntropy {
        let corrupted = mask_tokens(x, &self.vocab, &self.corruption, rng);
        self.loss_masked(tape, params, &corrupted, rng)
    }

    /// L_MLM of a batch already corrupted.
    pub fn loss_masked(
        &self,
        tape: &mut Tape,
        params: &Params,
        batch: &MaskedBatch,
        rng: &mut impl Rng,
    ) -> CrossEntropy {
        let z_masked = self.logits_at(tape, params, &batch.x_masked, &batch.masked_positions, rng);
        mlm_loss(tape, z_masked, &batch.labels)
    }

    /// Masked-token loss and accuracy over clean `batches` in evaluation mode (no dropout, no
    /// gradients). Batch k is corrupted with draws seeded by k alone, so the same batches are
    /// always scored on the same masks, whatever the run's seed or step.
    pub fn evaluate(&self, params: &Params, batches: &[Batch]) -> Evaluation {
        let mut tally = Tally::default();
        for (k, x) in batches.iter().enumerate() {
            let masks = mask_tokens(x, &self.vocab, &self.corruption, &mut StdRng::seed_from_u64(k as u64));
            let mut tape = Tape::no_grad();
            let z_masked = self.logits_at(
                &mut tape,
                params,
                &masks.x_masked,
                &masks.masked_positions,
                &mut StdRng::seed_from_u64(0),
            );
            let targets: Vec<Option<usize>> = masks.labels.iter().map(|&x_i| Some(x_i)).collect();
            tally.add(&mut tape, z_masked, &targets);
        }
        tally.finish()
    }

    /// P(x_i = v | X) at each of `positions` of `x`, in evaluation mode: `[positions.len()][V]`.
    pub fn probabilities(&self, params: &Params, x: &Batch, positions: &[usize]) -> Vec<Vec<f32>> {
        let mut tape = Tape::no_grad();
        let z = self.logits_at(&mut tape, params, x, positions, &mut StdRng::seed_from_u64(0));
        let p = tape.softmax(z, 1);
        let v = self.encoder.config.vocab_size;
        let p = tape.value(p).as_standard_layout().into_owned();
        p.as_slice()
            .expect("standard layout")
            .chunks(v)
            .map(|r| r.to_vec())
            .collect()
    }
}
