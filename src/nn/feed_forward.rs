//! Position-wise feed-forward network (Vaswani et al., 2017, section 3.3), d_model -> d_ff ->
//! d_model, with the nonlinearity sigma chosen by [`Activation`]:
//!
//!   FFN(x) = sigma(x W_1^T + b_1) W_2^T + b_2
//!
//! - [`Activation::Relu`], the paper's (and `torch.nn.TransformerEncoderLayer`'s default):
//!   sigma(h) = max(h, 0).
//! - [`Activation::Gelu`], exact GELU (BERT): sigma(h) = h Phi(h), Phi the standard normal CDF,
//!   Phi(h) = (1 + erf(h / sqrt 2)) / 2.
//! - [`Activation::GeluTanh`], GELU's tanh approximation (GPT-2):
//!   sigma(h) = h/2 (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3))).

use super::config::Activation;
use super::dropout::Dropout;
use super::linear::Linear;
use crate::ops::{FeedForwardWeights, FusedActivation};
use crate::params::Params;
use crate::tape::{Tape, Var};
use rand::Rng;

/// Linear(d_model -> d_ff), activation, dropout, Linear(d_ff -> d_model). The dropout after the
/// activation sits where PyTorch's `TransformerEncoderLayer` puts it.
#[derive(Clone, Debug)]
pub struct FeedForward {
    /// W_1, b_1: d_model -> d_ff
    pub linear1: Linear,
    /// W_2, b_2: d_ff -> d_model
    pub linear2: Linear,
    /// The nonlinearity between the two linear maps.
    pub activation: Activation,
    /// After the activation.
    pub dropout: Dropout,
}

impl FeedForward {
    /// Register `{name}.linear1.*` and `{name}.linear2.*`.
    pub fn new(
        params: &mut Params,
        name: &str,
        d_model: usize,
        d_ff: usize,
        activation: Activation,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Self {
        FeedForward {
            linear1: Linear::new(params, &format!("{name}.linear1"), d_model, d_ff, true, rng),
            linear2: Linear::new(params, &format!("{name}.linear2"), d_ff, d_model, true, rng),
            activation,
            dropout: Dropout { p: dropout },
        }
    }

    /// x [..., d_model] -> [..., d_model].
    pub fn forward(&self, tape: &mut Tape, params: &Params, x: Var, rng: &mut impl Rng) -> Var {
        let h = self.linear1.forward(tape, params, x); // [..., d_ff]
        let h = match self.activation {
            Activation::Gelu => tape.gelu(h),
            Activation::GeluTanh => tape.gelu_tanh(h),
            Activation::Relu => tape.relu(h),
        };
        let h = self.dropout.forward(tape, h, rng);
        self.linear2.forward(tape, params, h) // [..., d_model]
    }

    /// residual + Dropout(FFN(x)): the sub-layer with its residual add, `dropout` being the
    /// layer's dropout after the FFN. With no dropout active (p = 0, or not training) and a GELU,
    /// it is one fused op, [`Tape::feed_forward`], which keeps less for backward and computes
    /// the same bits; otherwise it is [`FeedForward::forward`], dropout and `add`, op by op.
    pub fn forward_residual(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        residual: Var,
        dropout: Dropout,
        rng: &mut impl Rng,
    ) -> Var {
        let active = |p: f32| tape.is_training() && p > 0.0;
        let fused = match self.activation {
            Activation::Gelu => Some(FusedActivation::Gelu),
            Activation::GeluTanh => Some(FusedActivation::GeluTanh),
            Activation::Relu => None,
        };
        let biases = (self.linear1.bias, self.linear2.bias);
        if let (Some(activation), (Some(b1), Some(b2))) = (fused, biases) {
            if !active(self.dropout.p) && !active(dropout.p) {
                let weights = FeedForwardWeights {
                    w1: tape.param(params, self.linear1.weight),
                    b1: tape.param(params, b1),
                    w2: tape.param(params, self.linear2.weight),
                    b2: tape.param(params, b2),
                };
                return tape.feed_forward(x, weights, activation, Some(residual));
            }
        }
        let f = self.forward(tape, params, x, rng);
        let f = dropout.forward(tape, f, rng);
        tape.add(residual, f)
    }
}
