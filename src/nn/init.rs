//! Parameter initialisation.
//!
//! - Linear weights W [out, in]: normal(0, 1/sqrt(3 in)), the standard deviation of PyTorch's
//!   default `nn.Linear` init (uniform on +-1/sqrt(in)). At BERT-base's width (in = 768) this is
//!   0.0208, BERT's and GPT-2's 0.02; at this crate's toy width (in = 128) it is 0.051. A flat
//!   0.02 at width 128 cost 0.08 nats of validation loss after 1,300 MLM steps (NOTES.md §11.1).
//! - Embedding tables: normal(0, 0.02), or by default 1/sqrt(d) for the token table under the
//!   sqrt(d) input scale (see `embedding.rs`). The training examples set the token table's std
//!   to 0.02 even with the scale: token vectors then start smaller than the positions, which
//!   cut the masked LM's validation loss by about 0.3 nats (NOTES.md §11.3).
//! - Biases start at 0; LayerNorm's gain starts at 1 and its bias at 0.

use crate::tensor::Tensor;
use ndarray::IxDyn;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// The standard deviation BERT and GPT-2 use for embeddings (and, at width 768, for weights).
pub const INIT_STD: f32 = 0.02;

/// The standard deviation of a linear layer's weights with `fan_in` inputs: 1/sqrt(3 fan_in),
/// that of PyTorch's default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn linear_std(fan_in: usize) -> f32 {
    1.0 / (3.0 * fan_in as f32).sqrt()
}

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
