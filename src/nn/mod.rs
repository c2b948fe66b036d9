//! The Transformer's layers (Vaswani et al., 2017, "Attention Is All You Need"), each a plain
//! struct that owns the ids of its parameters and has a `forward` written with the tape's ops.
//!
//! Reading order: `init.rs`, `linear.rs`, `embedding.rs`, `layer_norm.rs`, `dropout.rs`,
//! `positional.rs`, `attention.rs` (multi-head), `kv_cache.rs`, `feed_forward.rs`, `output.rs`,
//! `mlm_head.rs`, `patch_embedding.rs`, `config.rs`, `encoder_layer.rs`, `decoder_layer.rs`,
//! `encoder.rs`, `decoder.rs`,
//! `encoder_decoder.rs`.
//!
//! Every layer's `forward(&self, tape, params, ...)` takes the tape it records on and the
//! parameter store its ids point into.

pub mod attention;

pub mod config;
pub mod decoder;
pub mod decoder_layer;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod encoder_decoder;
pub mod encoder_layer;
pub mod feed_forward;
pub mod init;
pub mod kv_cache;
pub mod layer_norm;
pub mod linear;
pub mod mlm_head;
pub mod output;
pub mod patch_embedding;
pub mod positional;

pub use attention::{attention_mask, MultiHeadAttention};
pub use config::{Activation, NormPlacement, TransformerConfig};
pub use decoder::Decoder;
pub use decoder_layer::DecoderLayer;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use embedding::InputEmbedding;
pub use encoder::Encoder;
pub use encoder_decoder::EncoderDecoder;
pub use encoder_layer::EncoderLayer;
pub use feed_forward::FeedForward;
pub use kv_cache::{Cache, KvCache, LayerCache};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mlm_head::MlmHead;
pub use output::OutputProjection;
pub use patch_embedding::PatchEmbedding;
