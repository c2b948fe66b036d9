//! Multi-head attention (Vaswani et al., 2017, section 3.2.2):
//!
//!   MultiHead(X_q, X_kv) = Concat(head_1, ..., head_h) W_O^T,
//!   head_i = Attention(X_q W_Q,i^T, X_kv W_K,i^T, X_kv W_V,i^T),
//!
//! with h heads of size d_k = d_model / h. The h projections of each kind are one Linear of
//! width d_model whose output is split into heads. Self-attention passes the same sequence as
//! X_q and X_kv; cross-attention passes the decoder's states as X_q and the encoder's as X_kv.
//!
//! In self-attention without a cache (training, evaluation) the three projections run as one
//! product, X [W_Q; W_K; W_V]^T, and attention reads its Q, K and V in place from that one
//! output ([`Tape::attention_packed`]).
//!
//! With a [`KvCache`] (generation only) the keys and values come from the cache: see
//! `kv_cache.rs`.

use super::kv_cache::KvCache;
use super::linear::Linear;
use crate::data::Batch;
use crate::ops::AttentionMask;
use crate::params::Params;
use crate::tape::{Tape, Var};
use rand::Rng;

/// The mask a batch needs: key padding from its lengths, plus the causal mask if asked.
pub fn attention_mask(batch: &Batch, causal: bool) -> AttentionMask {
    AttentionMask {
        causal,
        key_lengths: batch.lengths.clone(),
    }
}

/// h-head attention with projections `q_proj`, `k_proj`, `v_proj`, `out_proj`, each
/// d_model -> d_model with bias.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    /// W_Q, b_Q
    pub q_proj: Linear,
    /// W_K, b_K
    pub k_proj: Linear,
    /// W_V, b_V
    pub v_proj: Linear,
    /// W_O, b_O
    pub out_proj: Linear,
    /// h
    pub heads: usize,
}

impl MultiHeadAttention {
    /// Register `{name}.{q,k,v,out}_proj.{weight,bias}`. d_model must be divisible by heads.
    pub fn new(params: &mut Params, name: &str, d_model: usize, heads: usize, rng: &mut impl Rng) -> Self {
        assert!(
            heads > 0 && d_model.is_multiple_of(heads),
            "MultiHeadAttention: d_model {d_model} is not divisible by heads {heads}"
        );
        MultiHeadAttention {
            q_proj: Linear::new(params, &format!("{name}.q_proj"), d_model, d_model, true, rng),
            k_proj: Linear::new(params, &format!("{name}.k_proj"), d_model, d_model, true, rng),
            v_proj: Linear::new(params, &format!("{name}.v_proj"), d_model, d_model, true, rng),
            out_proj: Linear::new(params, &format!("{name}.out_proj"), d_model, d_model, true, rng),
            heads,
        }
    }

    /// x_q [B, Tq, D], x_kv [B, Tk, D] -> out [B, Tq, D].
    ///
    /// With `cache`, K and V are the cache's after this call: self-attention appends the
    /// projections of x_kv to it, cross-attention computes them at the first call only (later
    /// calls ignore x_kv). The cached tensors enter the tape as constants: no gradient flows
    /// into them, which generation does not need.
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &Params,
        x_q: Var,
        x_kv: Var,
        mask: &AttentionMask,
        cache: Option<&mut KvCache>,
    ) -> Var {
        let d = self.q_proj.d_out;
        let h = self.heads;
        let scale = 1.0 / ((d / h) as f32).sqrt(); // 1 / sqrt(d_k)
        if x_q == x_kv && cache.is_none() {
            // Self-attention in training: Q, K and V from one product (one pass over X).
            let qkv = self.qkv_forward(tape, params, x_q); // [B, T, 3D]
            let out = tape.attention_packed(qkv, h, mask, scale); // [B, H, T, D/H]
            let merged = tape.merge_heads(out); // [B, T, D]
            return self.out_proj.forward(tape, params, merged);
        }
        let q = self.q_proj.forward(tape, params, x_q); // [B, Tq, D]
        let q = tape.split_heads(q, h); // [B, H, Tq, D/H]
        let (k, v) = match cache {
            None => self.keys_values(tape, params, x_kv), // [B, H, Tk, D/H] each
            Some(cache) => {
                if cache.needs_new_keys() {
                    let (k_new, v_new) = self.keys_values(tape, params, x_kv);
                    cache.append(tape.value(k_new), tape.value(v_new)); // K, V of positions 0..t+n
                }
                let k = cache.keys.clone().expect("filled above");
                let v = cache.values.clone().expect("filled above");
                (tape.constant(k), tape.constant(v))
            }
        };
        let out = tape.attention(q, k, v, mask, scale); // [B, H, Tq, D/H]
        let merged = tape.merge_heads(out); // [B, Tq, D]
        self.out_proj.forward(tape, params, merged) // [B, Tq, D]
    }

    /// residual + SelfAttn(x), self-attention in training (no cache): the same as
    /// [`MultiHeadAttention::forward`] with x as both inputs followed by an `add`, with the add
    /// done in the output projection's epilogue ([`Tape::linear_residual`]): one [B, T, D]
    /// tensor less kept for backward, the same bits.
    pub fn self_attention_residual(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        mask: &AttentionMask,
        residual: Var,
    ) -> Var {
        let (d, h) = (self.q_proj.d_out, self.heads);
        let scale = 1.0 / ((d / h) as f32).sqrt(); // 1 / sqrt(d_k)
        let qkv = self.qkv_forward(tape, params, x); // [B, T, 3D]
        let out = tape.attention_packed(qkv, h, mask, scale); // [B, H, T, D/H]
        let merged = tape.merge_heads(out); // [B, T, D]
        let w = tape.param(params, self.out_proj.weight);
        let b = self.out_proj.bias.map(|b| tape.param(params, b));
        tape.linear_residual(merged, w, b, residual) // residual + merged W_O^T + b_O
    }

    /// The attention weights of every head, P = softmax(Q K^T / sqrt(d_k) + mask),
    /// [B, H, Tq, Tk], for pictures: the same projections as [`MultiHeadAttention::forward`],
    /// with P kept whole (forward never holds it) and no backward.
    pub fn weights(&self, tape: &mut Tape, params: &Params, x_q: Var, x_kv: Var, mask: &AttentionMask) -> Var {
        let (d, h) = (self.q_proj.d_out, self.heads);
        let q = self.q_proj.forward(tape, params, x_q);
        let q = tape.split_heads(q, h); // [B, H, Tq, D/H]
        let k = self.k_proj.forward(tape, params, x_kv);
        let k = tape.split_heads(k, h); // [B, H, Tk, D/H]
        tape.attention_weights(q, k, mask, 1.0 / ((d / h) as f32).sqrt())
    }

    /// [Q K V] = X [W_Q; W_K; W_V]^T + [b_Q; b_K; b_V], [B, T, 3D]: the three projections as
    /// one product with the weights stacked (a concat on the tape, so each W still gets its own
    /// gradient).
    fn qkv_forward(&self, tape: &mut Tape, params: &Params, x: Var) -> Var {
        let projections = [&self.q_proj, &self.k_proj, &self.v_proj];
        let w = projections.map(|p| tape.param(params, p.weight));
        let w = tape.concat(&w, 0); // [3D, D]
        let b = match projections.map(|p| p.bias) {
            [Some(bq), Some(bk), Some(bv)] => {
                let b = [bq, bk, bv].map(|b| tape.param(params, b));
                Some(tape.concat(&b, 0)) // [3D]
            }
            [None, None, None] => None,
            _ => panic!("MultiHeadAttention: the Q, K and V projections must all have a bias, or none"),
        };
        tape.linear(x, w, b)
    }

    /// K = X_kv W_K^T + b_K and V = X_kv W_V^T + b_V, split into heads: [B, H, Tk, D/H] each.
    fn keys_values(&self, tape: &mut Tape, params: &Params, x_kv: Var) -> (Var, Var) {
        let k = self.k_proj.forward(tape, params, x_kv); // [B, Tk, D]
        let v = self.v_proj.forward(tape, params, x_kv); // [B, Tk, D]
        (tape.split_heads(k, self.heads), tape.split_heads(v, self.heads))
    }
}
