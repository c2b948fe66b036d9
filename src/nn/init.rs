//! Parameter initialisation.
//!
//! We follow BERT and GPT-2: weights of linear layers and embeddings are drawn from
//! normal(0, 0.02); biases start at 0; LayerNorm's gain starts at 1 and its bias at 0.

use crate::Tensor;
use ndarray::IxDyn;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// The standard deviation BERT and GPT-2 use for weights.
pub const INIT_STD: f32 = 0.02;

/// A tensor of the given shape with entries drawn from normal(0, std).
pub fn normal(shape: &[usize], std: f32, rng: &mut impl Rng) -> Tensor {
    let dist = Normal::new(0.0f32, std).expect("std must be finite and non-negative");
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
    Tensor::from_shape_vec(IxDyn(shape), data).expect("n elements")
}

/// A tensor of zeros.
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(IxDyn(shape))
}

/// A tensor of ones.
pub fn ones(shape: &[usize]) -> Tensor {
    Tensor::ones(IxDyn(shape))
}
