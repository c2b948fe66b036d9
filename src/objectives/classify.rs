//! Fine-tuning on a downstream task: classify a whole sequence. The encoder's states are pooled
//! into one vector and a linear layer scores the K classes,
//!
//! ```text
//! p_b = (1/n_b) sum_{t < n_b} h_{b,t}          mean over the real positions of sequence b
//! s_b = W p_b + c                              [K]
//! L = -(1/N) sum_b log softmax(s_b)_{y_b}
//! ```
//!
//! **Why the mean and not `[CLS]`.** Our masked LM pretrains on raw windows of text with no
//! `[CLS]` token, so nothing in pretraining gives a `[CLS]` state meaning; the mean over every
//! position is what the pretrained states offer (and the better sentence embedding of the two
//! in NOTES.md §11.6). BERT fine-tunes from `[CLS]` because its NSP task trained that state.
//!
//! Fine-tuning updates every weight (encoder and head); a **linear probe** freezes the encoder
//! and learns W, c alone, which measures what the pretrained states hold as they are.
//!
//! Sources: Devlin et al., 2019, "BERT", §4 (fine-tuning: the task head on the pooled state, all
//! parameters trained, a small learning rate); Howard and Ruder, 2018, "ULMFiT" (pretrain on
//! text, fine-tune on a few labels).

use super::Tally;
use crate::data::Batch;
use crate::nn::{Encoder, Linear};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An encoder and a linear head over its mean-pooled states (`classifier.*`).
#[derive(Clone, Debug)]
pub struct Classifier {
    /// The (pretrained or fresh) encoder.
    pub encoder: Encoder,
    /// W, c: [K, D].
    pub head: Linear,
}

impl Classifier {
    /// Put a fresh head for `classes` classes on `encoder`.
    pub fn new(params: &mut Params, encoder: Encoder, classes: usize, rng: &mut impl Rng) -> Classifier {
        let head = Linear::new(params, "classifier", encoder.config.d_model, classes, true, rng);
        Classifier { encoder, head }
    }

    /// p [B, D]: the mean of the encoder's states over each sequence's real positions.
    pub fn pooled(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        let x = match (&self.encoder.embed.segment, &x.segments) {
            (Some(_), None) => x.clone().with_segments(vec![0; x.ids.len()]), // one segment
            _ => x.clone(),
        };
        let h = self.encoder.forward(tape, params, &x, rng); // [B, T, D]
        let weights = tape.constant(mean_weights(&x)); // 1/n_b at real positions, [B, T, 1]
        let weighted = tape.mul(h, weights);
        tape.sum(weighted, &[1], false) // p_b = (1/n_b) sum_t h_bt
    }

    /// s [B, K]. With `frozen`, the encoder runs without gradients in evaluation mode and only
    /// the head learns (a linear probe).
    pub fn logits(&self, tape: &mut Tape, params: &Params, x: &Batch, frozen: bool, rng: &mut impl Rng) -> Var {
        let p = if frozen {
            let mut no_grad = Tape::no_grad();
            let p = self.pooled(&mut no_grad, params, x, &mut StdRng::seed_from_u64(0));
            tape.constant(no_grad.value(p).clone())
        } else {
            self.pooled(tape, params, x, rng)
        };
        self.head.forward(tape, params, p) // W p + c
    }

    /// L over a batch and its classes `y`.
    pub fn loss(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &Batch,
        y: &[usize],
        frozen: bool,
        rng: &mut impl Rng,
    ) -> CrossEntropy {
        let s = self.logits(tape, params, x, frozen, rng);
        let targets: Vec<Option<usize>> = y.iter().map(|&c| Some(c)).collect();
        tape.cross_entropy(s, &targets)
    }

    /// Accuracy (top-1) over labelled batches, in evaluation mode.
    pub fn accuracy(&self, params: &Params, batches: &[(Batch, Vec<usize>)]) -> f64 {
        let mut tally = Tally::default();
        for (x, y) in batches {
            let mut tape = Tape::no_grad();
            let s = self.logits(&mut tape, params, x, true, &mut StdRng::seed_from_u64(0));
            let targets: Vec<Option<usize>> = y.iter().map(|&c| Some(c)).collect();
            tally.add(&mut tape, s, &targets);
        }
        tally.finish().accuracy.unwrap_or(0.0)
    }
}

/// [B, T, 1] weights: 1/n_b at the real positions of sequence b, 0 at its padding.
pub fn mean_weights(x: &Batch) -> Tensor {
    ArrayD::from_shape_fn(IxDyn(&[x.batch, x.seq_len, 1]), |ix| {
        let n = x.length(ix[0]);
        if ix[1] < n {
            1.0 / n as f32
        } else {
            0.0
        }
    })
    .into_shared()
}
