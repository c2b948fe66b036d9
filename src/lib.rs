//! # microlm
//!
//! How large language models are pretrained, built by hand in plain Rust on the CPU: a tiny
//! reverse-mode autograd over `ndarray` f32 tensors, the Transformer's layers, and the
//! self-supervised objectives, each small enough to read at one sitting.
//!
//! ## Reading order
//!
//! 1. [`tape`]: the autograd. A [`Tape`] is an arena of nodes in execution order; a [`Var`] is
//!    a node's index. Each op pushes its output and a backward closure; [`Tape::backward`] is a
//!    reverse loop over the arena that hands each node's gradient to its closure and adds the
//!    results into the inputs' gradients. No topological sort: execution order already is one.
//! 2. [`params`] and [`gradients`]: parameters live outside the tape, in a [`Params`] store, and persist across
//!    steps. Backward returns their gradients as a [`Gradients`] value.
//! 3. [`ops`]: one file per family of ops, each op's forward and backward side by side with the
//!    derivative in its doc comment. Start with `unary.rs` and `binary.rs`, then `reduce.rs`,
//!    `shape.rs`, `matmul.rs`, `softmax.rs`, `layer_norm.rs`, `embedding.rs`, `mask.rs` and
//!    `cross_entropy.rs`.
//! 4. [`kernels`]: the loops under the ops: broadcasting, elementwise maps, vectorised exp and
//!    sums, and matmul through matrixmultiply's SIMD `sgemm` beside the naive triple loop that
//!    tests it.
//! 5. [`gradcheck`]: checking any gradient against central finite differences.
//! 6. [`threads`] and [`memory`]: one setting for every thread pool, and reuse of freed buffers.
//! 7. [`nn`]: the Transformer's layers, each a plain struct with a `forward` written with the
//!    ops: linear, embeddings, layer norm, positions, multi-head attention (over the fused
//!    `Tape::attention` op), feed-forward, encoder and decoder layers, and the three stacks.
//! 8. [`optim`]: SGD with momentum, AdamW (and which parameters it does not decay), the
//!    learning-rate schedule, gradient clipping. [`checkpoint`]: parameters as safetensors.
//! 9. [`tokenizer`]: characters, and byte-level BPE trained from scratch. [`data`]: loading,
//!    splitting and batching a corpus.
//! 10. [`objectives`]: the pretraining objectives, each opening with its loss formula. Start
//!     with `mlm.rs` (BERT's masked LM: how positions are chosen and corrupted, and the loss),
//!     then `mlm_model.rs` (encoder + MLM head, scored only at the masked positions), then
//!     `clm.rs` (GPT's next-token loss, the shift inside the loss). [`generate`]: sampling text
//!     from the decoder, with and without a key/value cache.
//! 11. [`trainer`]: the loop every objective shares (schedule, clipping, validation,
//!     checkpoints and exact resume), writing [`metrics`] (CSV and an SVG loss curve). [`cli`]
//!     reads the examples' flags.
//!
//! Then run the examples: `mlm` trains a masked LM on Tiny Shakespeare in about five minutes
//! (`examples/mlm.rs`), `fill_mask` queries it; `clm` trains a GPT-style character model with
//! nanoGPT's CPU recipe in about a minute and a half, `generate` continues a prompt with it; the numbered tours (`01_autograd_tour.rs`
//! onwards) walk through the engine and the layers.
//!
//! ## A taste
//!
//! ```
//! use microlm::{Tape, Tensor};
//! let mut tape = Tape::new();
//! let x = tape.input(Tensor::from_shape_vec(vec![2], vec![1.0, 2.0]).unwrap());
//! let y = tape.mul(x, x); // y = x^2
//! let loss = tape.sum_all(y); // L = sum x^2
//! let grads = tape.backward(loss);
//! assert_eq!(grads.wrt(x).unwrap().as_slice().unwrap(), &[2.0, 4.0]); // dL/dx = 2x
//! ```
//!
//! ## Errors
//!
//! Misusing an op (shapes that do not fit, an axis out of range, an id outside the vocabulary)
//! is a bug in the calling program, so it panics with a message that names the op and the
//! shapes, like indexing a slice out of bounds does. Failures that come from the outside world
//! (files, user input) return `Result`. NOTES.md gives the reasoning.

pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod generate;
pub mod gradcheck;
pub mod gradients;
pub mod kernels;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod objectives;
pub mod ops;
pub mod optim;
pub mod params;
pub mod tape;
pub mod tensor;
pub mod threads;
pub mod tokenizer;
pub mod trainer;

pub use gradients::Gradients;
pub use ops::{Attention, AttentionMask, CrossEntropy};
pub use params::{ParamId, Params};
pub use tape::{Tape, Var};
pub use tensor::{Grad, Tensor};
pub use threads::{init_threads_from_env, num_threads, set_num_threads};

/// The README's code runs as a doc test, so the taste of the API it gives stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
