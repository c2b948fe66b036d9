//! One encoder layer: self-attention, then the feed-forward network, each wrapped in a residual
//! connection and a LayerNorm placed before (pre-LN) or after (post-LN) it:
//!
//!   post-LN:  x = LN_1(x + Dropout(SelfAttn(x)));      x = LN_2(x + Dropout(FFN(x)))
//!   pre-LN:   x = x + Dropout(SelfAttn(LN_1(x)));      x = x + Dropout(FFN(LN_2(x)))
//!
//! With a causal mask the same layer is a GPT-style decoder block, and with a [`LayerCache`] it
//! is that block during generation.

use super::attention::MultiHeadAttention;
use super::config::{NormPlacement, TransformerConfig};
use super::dropout::Dropout;
use super::feed_forward::FeedForward;
use super::kv_cache::LayerCache;
use super::layer_norm::LayerNorm;
use crate::ops::AttentionMask;
use crate::params::Params;
use crate::tape::{Block, Tape, Var};
use rand::Rng;

/// Parameters: `{name}.self_attn.*`, `{name}.norm1.*`, `{name}.feed_forward.*`, `{name}.norm2.*`.
#[derive(Clone, Debug)]
pub struct EncoderLayer {
    /// Multi-head self-attention.
    pub self_attn: MultiHeadAttention,
    /// LayerNorm around the attention sub-layer.
    pub norm1: LayerNorm,
    /// Position-wise feed-forward.
    pub feed_forward: FeedForward,
    /// LayerNorm around the feed-forward sub-layer.
    pub norm2: LayerNorm,
    /// After each sub-layer, before the residual add.
    pub dropout: Dropout,
    /// Pre- or post-LN.
    pub norm: NormPlacement,
}

impl EncoderLayer {
    /// Register the layer's parameters under `name`.
    pub fn new(params: &mut Params, name: &str, config: &TransformerConfig, rng: &mut impl Rng) -> EncoderLayer {
        let c = config;
        EncoderLayer {
            self_attn: MultiHeadAttention::new(params, &format!("{name}.self_attn"), c.d_model, c.heads, rng),
            norm1: LayerNorm::new(params, &format!("{name}.norm1"), c.d_model, c.layer_norm_eps),
            feed_forward: FeedForward::new(
                params,
                &format!("{name}.feed_forward"),
                c.d_model,
                c.d_ff,
                c.activation,
                c.dropout,
                rng,
            ),
            norm2: LayerNorm::new(params, &format!("{name}.norm2"), c.d_model, c.layer_norm_eps),
            dropout: Dropout { p: c.dropout },
            norm: c.norm,
        }
    }

    /// x [B, T, D] -> [B, T, D]. `mask` says which keys each query may see (padding, causal);
    /// `cache` (generation) holds the keys and values of earlier positions. On a tape that
    /// checkpoints blocks ([`Tape::checkpoints_blocks`], `--checkpoint-blocks`), the layer is one
    /// [`Tape::checkpoint`] node: it keeps x only and runs again in backward.
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        mask: &AttentionMask,
        cache: Option<&mut LayerCache>,
        rng: &mut impl Rng,
    ) -> Var {
        if cache.is_none() && tape.checkpoints_blocks() {
            let (layer, mask) = (self.clone(), mask.clone());
            let block: Box<Block> =
                Box::new(move |tape, params, xs, mut rng| layer.block(tape, params, xs[0], &mask, None, &mut rng));
            return tape.checkpoint("encoder_block", params, &[x], rng, block);
        }
        self.block(tape, params, x, mask, cache, rng)
    }

    /// The layer's ops, as [`EncoderLayer::forward`] records them without checkpointing.
    fn block(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        mask: &AttentionMask,
        cache: Option<&mut LayerCache>,
        rng: &mut impl Rng,
    ) -> Var {
        let cache = cache.map(|c| &mut c.self_attn); // generation: K, V of earlier positions
        match self.norm {
            NormPlacement::Pre => {
                let h = self.norm1.forward(tape, params, x);
                let x = if cache.is_none() && !self.dropout.is_active(tape) {
                    // x + SelfAttn(LN_1(x)), the add fused into the output projection
                    self.self_attn.self_attention_residual(tape, params, h, mask, x)
                } else {
                    let a = self.self_attn.forward(tape, params, h, h, mask, cache);
                    let a = self.dropout.forward(tape, a, rng);
                    tape.add(x, a) // x + Dropout(SelfAttn(LN_1(x)))
                };
                let h = self.norm2.forward(tape, params, x);
                let ff = &self.feed_forward; // x + Dropout(FFN(LN_2(x))):
                ff.forward_residual(tape, params, h, x, self.dropout, rng)
            }
            NormPlacement::Post => {
                let x = if cache.is_none() && !self.dropout.is_active(tape) {
                    self.self_attn.self_attention_residual(tape, params, x, mask, x)
                // fused add
                } else {
                    let a = self.self_attn.forward(tape, params, x, x, mask, cache);
                    let a = self.dropout.forward(tape, a, rng);
                    tape.add(x, a)
                };
                let x = self.norm1.forward(tape, params, x); // LN_1(x + Dropout(SelfAttn(x)))
                let ff = &self.feed_forward; // x + Dropout(FFN(x))
                let x = ff.forward_residual(tape, params, x, x, self.dropout, rng);
                self.norm2.forward(tape, params, x) // LN_2(x + Dropout(FFN(x)))
            }
        }
    }

    /// The attention weights [B, H, T, T] this layer computes for input x (after LN_1 under
    /// pre-LN): softmax(Q K^T / sqrt(d_k)) with the mask applied. For looking at, not training.
    pub fn attention_weights(&self, tape: &mut Tape, params: &Params, x: Var, mask: &AttentionMask) -> Var {
        let h = match self.norm {
            NormPlacement::Pre => self.norm1.forward(tape, params, x),
            NormPlacement::Post => x,
        };
        self.self_attn.weights(tape, params, h, h, mask)
    }
}
