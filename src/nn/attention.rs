//! Multi-head attention (Vaswani et al., 2017, section 3.2.2):
//!
//!   MultiHead(X_q, X_kv) = Concat(head_1, ..., head_h) W_O^T,
//!   head_i = Attention(X_q W_Q,i^T, X_kv W_K,i^T, X_kv W_V,i^T),
//!
//! with h heads of size d_k = d_model / h. The h projections of each kind are one Linear of
//! width d_model whose output is split into heads. Self-attention passes the same sequence as
//! X_q and X_kv; cross-attention passes the decoder's states as X_q and the encoder's as X_kv.

use super::linear::Linear;
use crate::ops::{Attention, AttentionMask};
use crate::{Params, Tape, Var};
use rand::Rng;

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
            heads > 0 && d_model % heads == 0,
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

    /// x_q [B, Tq, D], x_kv [B, Tk, D] -> out [B, Tq, D], and the weights [B, H, Tq, Tk].
    pub fn forward(&self, tape: &mut Tape, params: &Params, x_q: Var, x_kv: Var, mask: &AttentionMask) -> Attention {
        let d = self.q_proj.d_out;
        let h = self.heads;
        let q = self.q_proj.forward(tape, params, x_q); // [B, Tq, D]
        let k = self.k_proj.forward(tape, params, x_kv); // [B, Tk, D]
        let v = self.v_proj.forward(tape, params, x_kv); // [B, Tk, D]
        let q = tape.split_heads(q, h); // [B, H, Tq, D/H]
        let k = tape.split_heads(k, h); // [B, H, Tk, D/H]
        let v = tape.split_heads(v, h); // [B, H, Tk, D/H]
        let scale = 1.0 / ((d / h) as f32).sqrt(); // 1 / sqrt(d_k)
        let att = tape.attention(q, k, v, mask, scale); // out [B, H, Tq, D/H]
        let merged = tape.merge_heads(att.out); // [B, Tq, D]
        let out = self.out_proj.forward(tape, params, merged); // [B, Tq, D]
        Attention {
            out,
            weights: att.weights,
        }
    }
}
