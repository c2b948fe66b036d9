//! The projection from hidden states to vocabulary logits: logits = h W^T + b, where W is
//! either the token embedding matrix itself (tied, as in the paper's section 3.4, BERT and
//! GPT-2) or a matrix of its own.

use super::embedding::Embedding;
use super::init::{linear_std, normal, zeros};
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use rand::Rng;

/// logits = h W^T + b, W `[vocab, d]`, b `[vocab]`.
#[derive(Clone, Debug)]
pub struct OutputProjection {
    /// W: the token embedding's id when tied, else `{name}.weight`.
    pub weight: ParamId,
    /// `{name}.bias`
    pub bias: ParamId,
}

impl OutputProjection {
    /// Tied to `embedding` when `tie` is true; otherwise a new W ~ normal(0, 1/sqrt(3 d)), a linear layer's init.
    pub fn new(params: &mut Params, name: &str, embedding: &Embedding, tie: bool, rng: &mut impl Rng) -> Self {
        let weight = if tie {
            embedding.weight
        } else {
            params.add(
                format!("{name}.weight"),
                normal(&[embedding.vocab, embedding.d], linear_std(embedding.d), rng),
            )
        };
        let bias = params.add(format!("{name}.bias"), zeros(&[embedding.vocab]));
        OutputProjection { weight, bias }
    }

    /// h [..., d] -> logits [..., vocab].
    pub fn forward(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let w = tape.param(params, self.weight); // [V, D]
        let b = tape.param(params, self.bias); // [V]
        tape.linear(h, w, Some(b)) // h W^T + b, [..., V]
    }
}
