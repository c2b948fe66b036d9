//! Position-wise feed-forward network (Vaswani et al., 2017, section 3.3), with GELU in place of
//! the paper's ReLU (as BERT and GPT-2):
//!
//!   FFN(x) = GELU(x W_1^T + b_1) W_2^T + b_2,   d_model -> d_ff -> d_model.

use super::dropout::Dropout;
use super::linear::Linear;
use crate::{Params, Tape, Var};
use rand::Rng;

/// Linear(d_model -> d_ff), GELU, dropout, Linear(d_ff -> d_model). The dropout after the
/// activation sits where PyTorch's `TransformerEncoderLayer` puts it.
#[derive(Clone, Debug)]
pub struct FeedForward {
    /// W_1, b_1: d_model -> d_ff
    pub linear1: Linear,
    /// W_2, b_2: d_ff -> d_model
    pub linear2: Linear,
    /// After the activation.
    pub dropout: Dropout,
}

impl FeedForward {
    /// Register `{name}.linear1.*` and `{name}.linear2.*`.
    pub fn new(params: &mut Params, name: &str, d_model: usize, d_ff: usize, dropout: f32, rng: &mut impl Rng) -> Self {
        FeedForward {
            linear1: Linear::new(params, &format!("{name}.linear1"), d_model, d_ff, true, rng),
            linear2: Linear::new(params, &format!("{name}.linear2"), d_ff, d_model, true, rng),
            dropout: Dropout { p: dropout },
        }
    }

    /// x [..., d_model] -> [..., d_model].
    pub fn forward(&self, tape: &mut Tape, params: &Params, x: Var, rng: &mut impl Rng) -> Var {
        let h = self.linear1.forward(tape, params, x); // [..., d_ff]
        let h = tape.gelu(h);
        let h = self.dropout.forward(tape, h, rng);
        self.linear2.forward(tape, params, h) // [..., d_model]
    }
}
