//! The ops. Each file adds methods to [`Tape`](crate::Tape): the forward computes the value,
//! and the closure passed to `record` right below it is the backward, with the derivative in
//! the doc comment.
//!
//! | file | ops |
//! |---|---|
//! | `binary.rs` | add, sub, mul, div (broadcasting) |
//! | `unary.rs` | neg, add_scalar, mul_scalar, powf, exp, log, sqrt, tanh, sigmoid, relu, gelu |
//! | `reduce.rs` | sum, sum_all, mean, max |
//! | `shape.rs` | reshape, permute, transpose, narrow, concat, split_heads, merge_heads |
//! | `matmul.rs` | matmul (2-D and batched) |
//! | `linear.rs` | linear, y = x W^T + b (fused) and its reference |
//! | `feed_forward.rs` | feed_forward, r + sigma(x W_1^T + b_1) W_2^T + b_2 (fused epilogues) and its reference |
//! | `softmax.rs` | softmax, log_softmax |
//! | `layer_norm.rs` | layer_norm (fused) and its reference |
//! | `embedding.rs` | embedding |
//! | `mask.rs` | masked_fill, dropout |
//! | `cross_entropy.rs` | cross_entropy (fused) and its reference |
//! | `attention.rs` | scaled dot-product attention (fused, a block of query rows at a time), its weights, and its reference |
//! | `attention_mask.rs` | the causal and key-padding masks attention takes |
//! | `argmax.rs` | argmax (no backward) |

mod argmax;
mod attention;
mod attention_mask;
mod binary;
mod cross_entropy;
mod embedding;
mod feed_forward;
mod layer_norm;
mod linear;
mod mask;
mod matmul;
mod reduce;
mod shape;
mod softmax;
mod unary;

pub use attention::attention_block_rows;
pub use attention_mask::AttentionMask;
pub use cross_entropy::CrossEntropy;
pub use feed_forward::{FeedForwardWeights, FusedActivation};
pub use unary::erf;
