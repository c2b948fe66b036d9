//! The self-supervised objectives. Each file opens with its loss formula and its source, and
//! holds the objective's model twin, with the same face for every objective:
//!
//! | | [`MaskedLm`] (`mlm.rs`) | [`CausalLm`] (`clm.rs`) |
//! |---|---|---|
//! | loss | L = -(1/\|M\|) sum_{i in M} log P(x_i \| X_masked) | L = -(1/\|T\|) sum_t log P(x_{t+1} \| x_{<=t}) |
//! | model | encoder + MLM head | decoder-only stack + LM head |
//! | `new` | builds it into a [`Params`](crate::Params) store | the same |
//! | `loss(tape, params, x, rng)` | masks x, scores the masked positions | scores every next token |
//! | `evaluate(params, batches)` | masked-token loss and accuracy | next-token loss and accuracy |
//! | `metadata()`, `load(path)` | what a checkpoint needs to rebuild it | the same |
//!
//! A training example hands `loss` and `evaluate` to the trainer and nothing else differs.
//!
//! [`Bert`] (`nsp.rs`) builds on [`MaskedLm`]: the same encoder (with segment embeddings) and
//! head, plus BERT's pooler and next-sentence classifier; its `loss` reads a batch of sentence
//! pairs and returns L_MLM + L_NSP (or ALBERT's sentence-order prediction, the same head and loss
//! on other pairs), and `validation` reports the pair task as extra measures;
//! `pair_baselines.rs` holds the baselines the pair task must beat.
//!
//! [`Denoiser`] (`denoise.rs`) is the encoder-decoder that learns to undo a [`Noise`]
//! (`noise.rs`): BART's noise functions (the target is the whole document) or T5's span
//! corruption (the target is the dropped spans). Its `loss` corrupts a batch of documents and
//! scores every target token under teacher forcing; `denoise_scores.rs` decodes by beam search
//! and scores what it writes noise by noise, with the measures of `reconstruction.rs`.
//!
//! [`SimCse`] (`simcse.rs`) trains the encoder contrastively: two views of each text (dropout
//! views of a line, or two spans of a speech), InfoNCE over the batch; `grad_cache.rs`
//! differentiates a big batch one chunk at a time (gradient caching); `sentence_embeddings.rs`
//! measures the embeddings (alignment, uniformity, retrieval).
//!
//! [`Mmlm`] (`mmlm.rs`) reads a caption and an image in one stream (`image_text.rs`): masked
//! caption words are predicted from the rest of the caption and the image's patches, beside
//! image-text matching (`itm.rs`); `grounding.rs` measures whether it reads the image. [`Clip`]
//! (`clip.rs`) trains an image tower and a text tower to agree.
//!
//! [`Electra`] (`electra.rs`) is replaced-token detection: a small masked LM (the generator)
//! fills the masked positions with its own samples, and the discriminator, the encoder kept for
//! fine-tuning, says at every position whether the token is the original;
//! `replaced_tokens.rs` measures it against always answering "original";
//! `compute.rs` counts its training FLOPs beside the masked LM's, to compare the two at equal
//! compute.

pub mod classify;
pub mod clip;
pub mod clm;
pub mod compute;
pub mod denoise;
pub mod denoise_scores;
pub mod electra;
pub mod grad_cache;
pub mod grounding;
pub mod image_text;
pub mod itm;
pub mod mlm;
pub mod mmlm;
pub mod noise;
pub mod nsp;
pub mod pair_baselines;
pub mod reconstruction;
pub mod replaced_tokens;
pub mod sentence_embeddings;
pub mod simcse;
pub mod tfidf;

pub use clip::{clip_loss, Clip};
pub use clm::CausalLm;
pub use denoise::{Denoiser, Example, Seq2SeqBatch};
pub use electra::{electra_loss, Electra, ElectraLoss};
pub use itm::{itm_loss, ItmBatch, ItmLabel};
pub use mlm::{mask_tokens, mlm_loss, num_predictions, Branch, MaskedBatch, MaskedLm, MlmConfig, MlmVocab, Selection};
pub use mmlm::{Mmlm, MmlmLoss};
pub use noise::Noise;
pub use nsp::{nsp_loss, Bert, BertLoss, NspHead};
pub use simcse::{info_nce, SimCse};

/// What a validation pass measured: the trainer's type (`trainer/evaluation.rs`), which every
/// objective's `evaluate` returns; named here too for the objectives' users.
pub use crate::trainer::Evaluation;

use crate::tape::{Tape, Var};

/// Sums over validation batches, turned into an [`Evaluation`] at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    loss_sum: f64,
    correct: usize,
    count: usize,
}

impl Tally {
    /// Add the cross-entropy and the top-1 hits of `logits` `[..., V]` against `targets` (one
    /// per row of logits, row-major; `None` rows are not scored).
    pub fn add(&mut self, tape: &mut Tape, logits: Var, targets: &[Option<usize>]) {
        let ce = tape.cross_entropy(logits, targets);
        self.loss_sum += tape.scalar(ce.sum) as f64;
        self.count += ce.count;
        let last_axis = tape.shape(logits).len() - 1;
        let predicted = tape.argmax(logits, last_axis);
        let hits = tape.value(predicted).iter().zip(targets);
        self.correct += hits.filter(|(&p, &y)| y == Some(p as usize)).count();
    }

    /// Mean loss and accuracy (both 0 when nothing was scored).
    pub fn finish(self) -> Evaluation {
        let per = |x: f64| if self.count == 0 { 0.0 } else { x / self.count as f64 };
        Evaluation {
            loss: per(self.loss_sum),
            accuracy: Some(per(self.correct as f64)),
            count: self.count,
            extra: Vec::new(),
        }
    }
}
