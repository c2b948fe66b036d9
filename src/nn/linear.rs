//! A fully connected layer: y = x W^T + b.

use super::init::{linear_std, normal, zeros};
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use rand::Rng;

/// y = x W^T + b, with W stored as [out, in] (PyTorch's layout, so checkpoints load there
/// unchanged) and read transposed through strides, not copied.
///
/// Init: W ~ normal(0, 1/sqrt(3 d_in)) (PyTorch's scale, see `init.rs`), b = 0.
#[derive(Clone, Debug)]
pub struct Linear {
    /// [out, in]
    pub weight: ParamId,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<ParamId>,
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
}

impl Linear {
    /// Register `{name}.weight` (and `{name}.bias`) in `params`.
    pub fn new(params: &mut Params, name: &str, d_in: usize, d_out: usize, bias: bool, rng: &mut impl Rng) -> Linear {
        let weight = params.add(format!("{name}.weight"), normal(&[d_out, d_in], linear_std(d_in), rng));
        let bias = bias.then(|| params.add(format!("{name}.bias"), zeros(&[d_out])));
        Linear {
            weight,
            bias,
            d_in,
            d_out,
        }
    }

    /// x [..., in] -> y [..., out].
    pub fn forward(&self, tape: &mut Tape, params: &Params, x: Var) -> Var {
        let w = tape.param(params, self.weight); // [out, in]
        let b = self.bias.map(|b| tape.param(params, b)); // [out]
        tape.linear(x, w, b) // x W^T + b, [..., out]
    }
}
