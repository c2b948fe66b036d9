//! The causal decoder-only stack (GPT's shape): the encoder's layers under a causal mask, so
//! position t sees positions 0..=t only, then a final LayerNorm (pre-LN) and the projection to
//! vocabulary logits:
//!
//!   x_0 = Dropout(E(ids) * s + PE),   x_l = Layer_l(x_{l-1}; causal),
//!   logits = LN_f(x_N) W^T + b   (W = E when tied).

use super::config::TransformerConfig;
use super::encoder::Encoder;
use super::kv_cache::Cache;
use super::output::OutputProjection;
use crate::data::Batch;
use crate::params::Params;
use crate::tape::{Tape, Var};
use rand::Rng;

/// Parameters: `{name}.token_embedding.weight`, `{name}.layers.{i}.*`, `{name}.final_norm.*`
/// (pre-LN only), `{name}.lm_head.bias` and, untied, `{name}.lm_head.weight`.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// The configuration it was built from.
    pub config: TransformerConfig,
    /// Embeddings, the N layers (self-attention + feed-forward) and LN_f: the encoder's stack,
    /// run with the causal mask.
    pub stack: Encoder,
    /// Hidden states -> logits.
    pub lm_head: OutputProjection,
}

impl Decoder {
    /// Build a decoder-only model under `name` (e.g. "decoder").
    pub fn new(
        params: &mut Params,
        name: &str,
        config: &TransformerConfig,
        rng: &mut impl Rng,
    ) -> Result<Decoder, String> {
        let stack = Encoder::new(params, name, config, rng)?;
        let lm_head = OutputProjection::new(
            params,
            &format!("{name}.lm_head"),
            &stack.embed.token,
            config.tie_embeddings,
            rng,
        );
        Ok(Decoder {
            config: config.clone(),
            stack,
            lm_head,
        })
    }

    /// tokens [B, T] -> hidden states [B, T, D], position t computed from tokens 0..=t only.
    pub fn hidden(&self, tape: &mut Tape, params: &Params, tokens: &Batch, rng: &mut impl Rng) -> Var {
        self.stack.forward_with(tape, params, tokens, true, None, rng)
    }

    /// tokens [B, T] -> next-token logits [B, T, vocab].
    pub fn forward(&self, tape: &mut Tape, params: &Params, tokens: &Batch, rng: &mut impl Rng) -> Var {
        self.forward_cached(tape, params, tokens, None, rng)
    }

    /// [`Decoder::forward`] with a key/value cache (generation): `tokens` sit at the positions
    /// after the cached ones, and join the cache.
    pub fn forward_cached(
        &self,
        tape: &mut Tape,
        params: &Params,
        tokens: &Batch,
        cache: Option<&mut Cache>,
        rng: &mut impl Rng,
    ) -> Var {
        let h = self.stack.forward_with(tape, params, tokens, true, cache, rng); // [B, T, D]
        self.lm_head.forward(tape, params, h) // [B, T, vocab]
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> Cache {
        Cache::new(self.config.layers)
    }
}
