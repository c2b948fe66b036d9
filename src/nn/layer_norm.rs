//! Layer normalisation as a layer: the fused op plus its two parameters.

use super::init::{ones, zeros};
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};

/// y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis. Init: gamma = 1,
/// beta = 0. Parameters are named `{name}.weight` (gamma) and `{name}.bias` (beta), as PyTorch.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// gamma, `[d]`
    pub weight: ParamId,
    /// beta, `[d]`
    pub bias: ParamId,
    /// Added to the variance; 1e-5 as PyTorch's default.
    pub eps: f32,
}

impl LayerNorm {
    /// Register `{name}.weight` and `{name}.bias` in `params`.
    pub fn new(params: &mut Params, name: &str, d: usize, eps: f32) -> LayerNorm {
        let weight = params.add(format!("{name}.weight"), ones(&[d]));
        let bias = params.add(format!("{name}.bias"), zeros(&[d]));
        LayerNorm { weight, bias, eps }
    }

    /// x [..., d] -> y [..., d].
    pub fn forward(&self, tape: &mut Tape, params: &Params, x: Var) -> Var {
        let (g, b) = (tape.param(params, self.weight), tape.param(params, self.bias));
        tape.layer_norm(x, g, b, self.eps)
    }
}
