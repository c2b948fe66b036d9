//! The key/value cache: what generation keeps between steps so that each new token costs one
//! position's work instead of a forward over the whole context.
//!
//! Under the causal mask, the keys and values of positions 0..t never change once computed: a
//! later token cannot alter an earlier position. So each attention keeps them:
//!
//! - **self-attention** appends the new positions' K and V and attends over all of them; a step
//!   that adds one token computes its q, k, v and output projections for one position, O(d^2)
//!   per layer, plus one query over the t cached keys, O(t d);
//! - **cross-attention** (encoder-decoder) reads the encoder's output, which does not change
//!   while the decoder writes: its K and V are computed at the first step and reused after.
//!
//! A cache holds plain tensors (not tape variables): it serves generation, where nothing is
//! differentiated. Every call with a cache either fills an empty cache from several positions
//! (a prefill, under the mask the caller gives) or adds exactly one position, which may see
//! every cached one, so it needs no mask.

use crate::data::Batch;
use crate::ops::AttentionMask;
use crate::tensor::Tensor;
use ndarray::Axis;

/// One attention's keys and values so far, each `[B, H, t, d_k]` (`None` before the first call).
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// K of every position so far.
    pub keys: Option<Tensor>,
    /// V of every position so far.
    pub values: Option<Tensor>,
    /// True for self-attention (each call appends its positions), false for cross-attention
    /// (the first call fills it, later calls reuse it).
    pub grows: bool,
}

impl KvCache {
    /// For self-attention: each call appends.
    pub fn self_attention() -> KvCache {
        KvCache {
            grows: true,
            ..KvCache::default()
        }
    }

    /// For cross-attention: filled once from the encoder's output.
    pub fn cross_attention() -> KvCache {
        KvCache {
            grows: false,
            ..KvCache::default()
        }
    }

    /// Positions held, t.
    pub fn len(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.shape()[2])
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.keys.is_none()
    }

    /// True if the next call must compute K and V (self-attention always; cross-attention once).
    pub fn needs_new_keys(&self) -> bool {
        self.grows || self.is_empty()
    }

    /// Append `k_new`, `v_new` `[B, H, n, d_k]` after the cached positions. A copy, O(t d): the
    /// same order of work as the step's attention, and simpler than a preallocated buffer.
    pub fn append(&mut self, k_new: &Tensor, v_new: &Tensor) {
        let join = |old: &Option<Tensor>, new: &Tensor| match old {
            None => new.clone(),
            Some(old) => ndarray::concatenate(Axis(2), &[old.view(), new.view()])
                .expect("cached and new positions have the same batch, heads and width")
                .into_shared(),
        };
        self.keys = Some(join(&self.keys, k_new));
        self.values = Some(join(&self.values, v_new));
    }
}

/// One layer's caches: its self-attention, and its cross-attention in an encoder-decoder.
#[derive(Clone, Debug)]
pub struct LayerCache {
    /// Grows by the new positions at every call.
    pub self_attn: KvCache,
    /// Filled once (unused by encoder layers).
    pub cross_attn: KvCache,
}

/// Every layer's caches, and how many positions they hold: the next token's position.
#[derive(Clone, Debug)]
pub struct Cache {
    /// One per layer, in order.
    pub layers: Vec<LayerCache>,
    /// t: positions cached so far, which is also the position of the next token.
    pub positions: usize,
}

impl Cache {
    /// An empty cache for a stack of `layers` layers.
    pub fn new(layers: usize) -> Cache {
        let layer = LayerCache {
            self_attn: KvCache::self_attention(),
            cross_attn: KvCache::cross_attention(),
        };
        Cache {
            layers: vec![layer; layers],
            positions: 0,
        }
    }
}

impl Cache {
    /// The self-attention mask for `tokens` entering a stack with this cache: `usual` (the mask
    /// without a cache) for a prefill into an empty cache; none for one token after cached
    /// ones, since it may see them all. Panics for more than one token after cached ones, or
    /// padded sequences, which generation never asks for.
    pub fn self_mask(&self, tokens: &Batch, usual: AttentionMask) -> AttentionMask {
        if self.positions == 0 {
            return usual;
        }
        assert!(
            tokens.seq_len == 1 && tokens.lengths.is_none(),
            "cache: after {} cached positions, add one unpadded token at a time (got {})",
            self.positions,
            tokens.seq_len
        );
        AttentionMask::none()
    }
}
