//! # microlm
//!
//! How large language models are pretrained, built by hand in plain Rust on the CPU: a tiny
//! reverse-mode autograd over `ndarray` f32 tensors, the Transformer's layers, and the
//! self-supervised objectives, each small enough to read at one sitting.
//!
//! ## Reading order
//!
//! The engine first, then the stages a training run passes through, in the order data flows:
//! corpus and tokenizer, batch, model, objective, backward, optimizer, trainer.
//!
//! Imports go one way. Inside the crate every file imports an item from the module that
//! defines it (`crate::tape::Tape`, `crate::params::Params`), so the layers stay visible; the
//! root's re-exports (`microlm::Tape`) are for users. From the bottom up, a module imports only
//! from the lines above its own:
//!
//! | layer | modules |
//! |---|---|
//! | 0 | `tensor`, `tokenizer`, `profile`, `memory`, `svg` |
//! | 1 | `kernels`, `params`, `threads`, `data`, `metrics`, `learning_curve`, `growth_chart` |
//! | 2 | `gradients`, `cli` |
//! | 3 | `tape`, `optim` |
//! | 4 | `ops`, `gradcheck` |
//! | 5 | `nn` |
//! | 6 | `generate`, `checkpoint` |
//! | 7 | `trainer`: the loop, which takes the objective as two closures and knows none; `beam_search`, on `generate` |
//! | 8 | `objectives` |
//! | 9 | `recipe`, `attention_map`, `hf` |
//! | 10 | `inspect`, `inspect_images`, `scaling` |
//!
//! `tests/import_layers.rs` checks that no module, and no file within one, imports another
//! that imports it back.
//!
//! 0. [`tensor`]: the ground floor, the reference-counted f32 array every other file uses.
//! 1. [`tape`]: the autograd. A [`Tape`] is an arena of nodes in execution order; a [`Var`] is
//!    a node's index. Each op pushes its output and a backward closure; [`Tape::backward`] is a
//!    reverse loop over the arena that hands each node's gradient to its closure and adds the
//!    results into the inputs' gradients. No topological sort: execution order already is one.
//! 2. [`params`] and [`gradients`]: parameters live outside the tape, in a [`Params`] store, and
//!    persist across steps. Backward returns their gradients as a [`Gradients`] value.
//! 3. [`ops`]: one file per family of ops, each op's forward and backward side by side with the
//!    derivative in its doc comment. Start with `unary.rs` and `binary.rs`, then `reduce.rs`,
//!    `shape.rs`, `matmul.rs`, `softmax.rs`, `layer_norm.rs`, `embedding.rs`, `mask.rs`,
//!    `attention.rs` and `cross_entropy.rs`.
//! 4. [`kernels`]: the loops under the ops: broadcasting, elementwise maps, vectorised exp and
//!    sums, and matmul: `thin_gemm.rs`'s micro-kernels for a short K (B packed, A read in
//!    place), matrixmultiply's SIMD `sgemm` for the rest, and the naive triple loop that tests
//!    both. They know nothing of the tape.
//! 5. [`gradcheck`]: checking any gradient against central finite differences.
//! 6. [`threads`] and [`memory`]: one setting for every thread pool, and reuse of freed buffers;
//!    [`profile`]: with `--profile true`, the tape times every op it records, forward and
//!    backward, and a training example ends with the table of where a step went.
//! 7. [`tokenizer`]: characters, byte-level BPE trained from scratch, and whole words (for
//!    the shapes world's captions), behind one [`Tokenizer`](tokenizer::Tokenizer) that also
//!    says which ids are special.
//! 8. [`data`]: reading and splitting a corpus, drawing windows, and the
//!    [`Batch`](data::Batch) every model takes; documents, sentences, plays and sentence pairs
//!    (`documents.rs`, `plays.rs`, `pairs.rs`) for the objectives that read two segments;
//!    BART's noise functions (`bart_noise.rs`) and T5's span corruption
//!    (`span_corruption.rs`); the shapes world (`shapes/`), generated pictures with captions
//!    that say what is in them (scenes and their grammar in `grammar.rs`, pixels in
//!    `render.rs`), drawn as SVG by
//!    `image_svg.rs`; the speaker-attribution task (`speakers.rs`), real labels for
//!    fine-tuning; and a generated corpus with a planted bias (`bias_corpus.rs`).
//! 9. [`nn`]: the Transformer's layers, each a plain struct with a `forward` written with the
//!    ops: linear, embeddings, layer norm, positions, multi-head attention (with an optional
//!    key/value cache, `kv_cache.rs`), feed-forward, encoder and decoder layers, and the three
//!    stacks; patch embeddings (`patch_embedding.rs`) turn an image into tokens.
//! 10. [`generate`]: sampling text from the decoder-only model or the encoder-decoder, through
//!     the model's own forward, with or without the cache; [`beam_search`]: the k most likely
//!     outputs kept at each step, with length normalisation and n-gram blocking.
//! 11. [`objectives`]: the pretraining objectives, each one file that opens with its loss
//!     formula and holds its model twin with the same face (`loss`, `evaluate`, `load`):
//!     `mlm.rs` (BERT's masked LM, [`MaskedLm`](objectives::MaskedLm)) and `clm.rs` (GPT's
//!     causal LM, [`CausalLm`](objectives::CausalLm)), side by side; then `nsp.rs` (BERT's
//!     next-sentence or ALBERT's sentence-order prediction beside the masked LM,
//!     [`Bert`](objectives::Bert), and the baselines it must beat in `pair_baselines.rs`); and
//!     `denoise.rs` (BART's and T5's denoising on the encoder-decoder,
//!     [`Denoiser`](objectives::Denoiser)), its noise choice in `noise.rs` and its scores in
//!     `reconstruction.rs`; `simcse.rs` (contrastive sentence embeddings: dropout views or span positives,
//!     [`SimCse`](objectives::SimCse)), with big batches by `grad_cache.rs`, measured by
//!     `sentence_embeddings.rs`; and the
//!     multimodal pair: `mmlm.rs` (masked words predicted from a caption and its image, with
//!     image-text matching in `itm.rs`, over the one stream of `image_text.rs`,
//!     [`Mmlm`](objectives::Mmlm)), measured by `grounding.rs`, and `clip.rs` (two towers
//!     trained contrastively, [`Clip`](objectives::Clip)). Then `electra.rs` (replaced-token
//!     detection: a small masked LM fills masked positions with samples, the encoder spots
//!     them, [`Electra`](objectives::Electra)), measured by `replaced_tokens.rs`, its compute
//!     counted beside the masked LM's in `compute.rs`. Last, for fine-tuning rather than
//!     pretraining, `classify.rs`: a classifier head over the encoder's mean-pooled states.
//! 12. [`optim`]: SGD with momentum, AdamW (and which parameters it does not decay), the
//!     learning-rate schedule, gradient clipping.
//! 13. [`checkpoint`]: models and training runs as safetensors, and the settings a resume must
//!     share.
//! 14. [`trainer`]: the loop every objective shares; its `update` function is one training step
//!     line by line (schedule, forward, loss, backward, clip, optimizer step). It writes
//!     [`metrics`] (CSV and an SVG loss curve, drawn with the primitives of `svg.rs`).
//! 15. [`recipe`]: what every training example shares (flags via [`cli`], corpus and
//!     tokenizer, model shape, optimizer, validation set), and `recipe/finetune.rs`:
//!     fine-tuning a classifier with early stopping, `recipe/linear_probe.rs`: linear probes
//!     and LP-FT's head, `recipe/comparison.rs`: what pretraining buys, whose learning curves
//!     [`learning_curve`] draws as SVG. [`inspect`] and [`inspect_images`]: a model's guesses, printed and drawn;
//!     [`attention_map`]: every layer's and head's attention drawn as SVG grids (`grid.rs`),
//!     and the heads with a recognisable job.
//! 16. [`scaling`]: the scaling-law sweep (loss against model size, compute and data) and its
//!     power-law fit, with the log-log charts in `scaling/chart.rs`.
//! 17. [`growth_chart`]: the growth bench's chart (`benches/growth/`): microlm's training
//!     tokens/s and peak memory over PyTorch's as sequence length, d_model and batch grow.
//! 18. [`hf`]: taking a model to PyTorch: the causal LM as `transformers`' `GPT2LMHeadModel`,
//!     the masked LM as `MegatronBertForMaskedLM`, each tensor renamed, transposed or stacked
//!     into the class's layout, the tokenizer as `tokenizer.json`; and such a directory read back.
//!
//! ## The examples, as a curriculum
//!
//! | # | command | what it shows |
//! |---|---|---|
//! | 1 | `cargo run --release --example 01_autograd_tour` | the autograd, step by step, on XOR |
//! | 2 | `cargo run --release --example 02_transformer_tour` | the toy encoder's parameters and an attention pattern |
//! | 3 | `cargo run --release --example 03_tokenizers` | characters and BPE on Tiny Shakespeare |
//! | 4 | `cargo run --release --example mlm` | masked LM: a BERT-style encoder in about five minutes |
//! | 5 | `cargo run --release --example fill_mask -- "To be, or not to b[MASK]"` | asking it |
//! | 6 | `cargo run --release --example clm` | causal LM with nanoGPT's CPU recipe in about 75 seconds |
//! | 7 | `cargo run --release --example generate -- "ROMEO:"` | continuing a prompt with it |
//! | 8 | `cargo run --release --example bert` | masked LM and next-sentence (or sentence-order) prediction on pairs of whole sentences |
//! | 9 | `cargo run --release --example denoise` | BART's denoising (or T5's span corruption) on the encoder-decoder |
//! | 10 | `cargo run --release --example simcse -- --init runs/mlm/checkpoint.safetensors` | Contrastive sentence embeddings (span positives, SimCSE), and what they find |
//! | 11 | `cargo run --release --example mmlm` | a multimodal masked LM on generated pictures: does it read the image? |
//! | 12 | `cargo run --release --example clip` | CLIP's two towers, and retrieval between pictures and captions |
//! | 13 | `cargo run --release --example finetune -- --init runs/mlm/checkpoint.safetensors` | fine-tuning on speaker attribution: does pretraining help? |
//! | 14 | `cargo run --release --example scaling` | bigger is better, and data hungry: loss against size and data |
//! | 15 | `cargo run --release --example bias` | a planted bias in the data, learned by the model |
//! | 16 | `cargo run --release --example attention -- --mlm runs/mlm/checkpoint.safetensors` | every head's attention, drawn, and the heads with a job |
//! | 17 | `cargo run --release --example export_hf -- --from runs/clm/checkpoint.safetensors --to runs/clm-hf` | the model in PyTorch: a `transformers` directory with the same logits, and back |
//! | 18 | `cargo run --release --example electra` | ELECTRA at the masked LM's compute: which characters did the generator replace? |
//!
//! The files are `examples/01_*.rs` to `examples/18_*.rs`. A new objective adds one file in
//! `src/objectives/` and one example like `04_mlm.rs`: flags, data, model and validation set
//! from the recipe, then the model's `loss` and `evaluate` handed to the trainer.
//!
//! ## What microlm does not do
//!
//! - No GPU, no BLAS, no mixed precision: f32 on the CPU, matmuls through matrixmultiply.
//! - No higher-order gradients: a backward closure computes with tensors, not on the tape.
//! - No distributed or data-parallel training; threads parallelise within one op.
//! - No model or data downloads: the corpus is a file you give it (Tiny Shakespeare ships in
//!   `data/`), and models are trained here from scratch.
//! - No learned or rotary positions, no KV-cache batching with different lengths: generation
//!   is one sequence (greedy, sampled, or a beam search whose hypotheses run one by one).
//! - Toy scale only: the models have about a million parameters and the examples train them in
//!   minutes; nothing here has been run at the sizes the papers use.
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

#![warn(missing_docs)]

pub mod attention_map;
pub mod beam_search;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod generate;
pub mod gradcheck;
pub mod gradients;
pub mod growth_chart;
pub mod hf;
pub mod inspect;
pub mod inspect_images;
pub mod kernels;
pub mod learning_curve;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod objectives;
pub mod ops;
pub mod optim;
pub mod params;
pub mod profile;
pub mod recipe;
pub mod scaling;
mod svg;
pub mod tape;
pub mod tensor;
pub mod threads;
pub mod tokenizer;
pub mod trainer;

pub use gradients::Gradients;
pub use ops::{AttentionMask, CrossEntropy};
pub use params::{ParamId, Params};
pub use tape::{Tape, Var};
pub use tensor::{Grad, Tensor};
pub use threads::{init_threads_from_env, num_threads, set_num_threads};

/// The README's code runs as a doc test, so the taste of the API it gives stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
