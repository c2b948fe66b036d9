//! One decoder layer of the encoder-decoder: causal self-attention, cross-attention over the
//! encoder's output ("memory"), then the feed-forward network, each with a residual and a
//! LayerNorm (Vaswani et al., 2017, section 3.1):
//!
//!   post-LN:  x = LN_1(x + SelfAttn(x));  x = LN_2(x + CrossAttn(x, m));  x = LN_3(x + FFN(x))
//!   pre-LN:   x = x + SelfAttn(LN_1(x));  x = x + CrossAttn(LN_2(x), m);  x = x + FFN(LN_3(x))
//!
//! (each sub-layer's output passes through dropout before the residual add). As in PyTorch's
//! `TransformerDecoderLayer`, the memory m enters cross-attention as it is, not normalised here.

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

/// Parameters: `{name}.self_attn.*`, `{name}.norm1.*`, `{name}.cross_attn.*`, `{name}.norm2.*`,
/// `{name}.feed_forward.*`, `{name}.norm3.*`.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    /// Causal self-attention.
    pub self_attn: MultiHeadAttention,
    /// LayerNorm around self-attention.
    pub norm1: LayerNorm,
    /// Attention from the decoder's positions to the encoder's.
    pub cross_attn: MultiHeadAttention,
    /// LayerNorm around cross-attention.
    pub norm2: LayerNorm,
    /// Position-wise feed-forward.
    pub feed_forward: FeedForward,
    /// LayerNorm around the feed-forward.
    pub norm3: LayerNorm,
    /// After each sub-layer.
    pub dropout: Dropout,
    /// Pre- or post-LN.
    pub norm: NormPlacement,
}

impl DecoderLayer {
    /// Register the layer's parameters under `name`.
    pub fn new(params: &mut Params, name: &str, config: &TransformerConfig, rng: &mut impl Rng) -> DecoderLayer {
        let c = config;
        DecoderLayer {
            self_attn: MultiHeadAttention::new(params, &format!("{name}.self_attn"), c.d_model, c.heads, rng),
            norm1: LayerNorm::new(params, &format!("{name}.norm1"), c.d_model, c.layer_norm_eps),
            cross_attn: MultiHeadAttention::new(params, &format!("{name}.cross_attn"), c.d_model, c.heads, rng),
            norm2: LayerNorm::new(params, &format!("{name}.norm2"), c.d_model, c.layer_norm_eps),
            feed_forward: FeedForward::new(
                params,
                &format!("{name}.feed_forward"),
                c.d_model,
                c.d_ff,
                c.activation,
                c.dropout,
                rng,
            ),
            norm3: LayerNorm::new(params, &format!("{name}.norm3"), c.d_model, c.layer_norm_eps),
            dropout: Dropout { p: c.dropout },
            norm: c.norm,
        }
    }

    /// x [B, T, D] attends to itself under `self_mask` (causal, plus target padding) and to
    /// `memory` [B, S, D] under `memory_mask` (source padding) -> [B, T, D]. `cache`
    /// (generation) holds the self-attention keys and values of earlier positions and the
    /// cross-attention keys and values of the memory.
    /// On a tape that checkpoints blocks ([`Tape::checkpoints_blocks`]), the layer is one
    /// [`Tape::checkpoint`] node: it keeps x and the memory only and runs again in backward.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        memory: Var,
        self_mask: &AttentionMask,
        memory_mask: &AttentionMask,
        cache: Option<&mut LayerCache>,
        rng: &mut impl Rng,
    ) -> Var {
        if cache.is_none() && tape.checkpoints_blocks() {
            let (layer, self_mask, memory_mask) = (self.clone(), self_mask.clone(), memory_mask.clone());
            let block: Box<Block> = Box::new(move |tape, params, xs, mut rng| {
                layer.block(tape, params, xs[0], xs[1], &self_mask, &memory_mask, None, &mut rng)
            });
            return tape.checkpoint("decoder_block", params, &[x, memory], rng, block);
        }
        self.block(tape, params, x, memory, self_mask, memory_mask, cache, rng)
    }

    /// The layer's ops, as [`DecoderLayer::forward`] records them without checkpointing.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        memory: Var,
        self_mask: &AttentionMask,
        memory_mask: &AttentionMask,
        cache: Option<&mut LayerCache>,
        rng: &mut impl Rng,
    ) -> Var {
        // Generation: self-attention K, V of earlier positions; cross-attention K, V of the memory.
        let (self_cache, cross_cache) = match cache {
            Some(c) => (Some(&mut c.self_attn), Some(&mut c.cross_attn)),
            None => (None, None),
        };
        match self.norm {
            NormPlacement::Pre => {
                let h = self.norm1.forward(tape, params, x);
                let a = self.self_attn.forward(tape, params, h, h, self_mask, self_cache);
                let a = self.dropout.forward(tape, a, rng);
                let x = tape.add(x, a); // x + SelfAttn(LN_1(x))
                let h = self.norm2.forward(tape, params, x);
                let c = self
                    .cross_attn
                    .forward(tape, params, h, memory, memory_mask, cross_cache);
                let c = self.dropout.forward(tape, c, rng);
                let x = tape.add(x, c); // x + CrossAttn(LN_2(x), m)
                let h = self.norm3.forward(tape, params, x);
                let ff = &self.feed_forward; // x + FFN(LN_3(x)):
                ff.forward_residual(tape, params, h, x, self.dropout, rng)
            }
            NormPlacement::Post => {
                let a = self.self_attn.forward(tape, params, x, x, self_mask, self_cache);
                let a = self.dropout.forward(tape, a, rng);
                let x = tape.add(x, a);
                let x = self.norm1.forward(tape, params, x); // LN_1(x + SelfAttn(x))
                let c = self
                    .cross_attn
                    .forward(tape, params, x, memory, memory_mask, cross_cache);
                let c = self.dropout.forward(tape, c, rng);
                let x = tape.add(x, c);
                let x = self.norm2.forward(tape, params, x); // LN_2(x + CrossAttn(x, m))
                let ff = &self.feed_forward; // x + FFN(x)
                let x = ff.forward_residual(tape, params, x, x, self.dropout, rng);
                self.norm3.forward(tape, params, x) // LN_3(x + FFN(x))
            }
        }
    }
}
