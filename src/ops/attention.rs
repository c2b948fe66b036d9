//! Scaled dot-product attention, fused (Vaswani et al., 2017, section 3.2.1):
//!
//!   S = Q K^T * scale + mask,   P = softmax(S) over the keys,   O = P V,
//!
//! with scale = 1 / sqrt(d_k) by default and mask = -inf at every (query, key) pair a query may
//! not see. Shapes: Q [B, H, Tq, D], K [B, H, Tk, D], V [B, H, Tk, Dv], P [B, H, Tq, Tk],
//! O [B, H, Tq, Dv].
//!
//! Fused means one op on the tape instead of five (matmul, scale, mask, softmax, matmul): the
//! scores are scaled, masked and turned into probabilities in place, so each forward holds one
//! [B, H, Tq, Tk] buffer, P, which backward needs anyway. [`Tape::attention_reference`] builds
//! the same function from primitive ops; tests check one against the other.

use crate::kernels::matmul::{matmul as gemm, matmul_heads_interleaved as gemm_interleaved, t};
use crate::kernels::{self, vector::exp};
use crate::tape::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// Which (query, key) pairs attention may not use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttentionMask {
    /// Causal: query i may only see keys j <= i (a decoder may not look ahead).
    pub causal: bool,
    /// Key padding: sequence b has `key_lengths[b]` real keys; keys at j >= that are padding.
    pub key_lengths: Option<Vec<usize>>,
}

impl AttentionMask {
    /// No masking at all.
    pub fn none() -> AttentionMask {
        AttentionMask::default()
    }

    /// The causal mask alone.
    pub fn causal() -> AttentionMask {
        AttentionMask {
            causal: true,
            key_lengths: None,
        }
    }

    /// Key padding alone.
    pub fn padding(key_lengths: Vec<usize>) -> AttentionMask {
        AttentionMask {
            causal: false,
            key_lengths: Some(key_lengths),
        }
    }

    /// True if query i of sequence b may not see key j.
    pub fn is_masked(&self, b: usize, i: usize, j: usize) -> bool {
        (self.causal && j > i) || self.key_lengths.as_ref().is_some_and(|len| j >= len[b])
    }

    /// How many keys query i of sequence b sees, out of `tk`: it sees keys 0..visible_keys,
    /// since both masks hide a suffix (causal: keys after i; padding: keys at or past the length).
    pub fn visible_keys(&self, b: usize, i: usize, tk: usize) -> usize {
        let causal_limit = if self.causal { i + 1 } else { tk };
        let padding_limit = self.key_lengths.as_ref().map_or(tk, |len| len[b]);
        causal_limit.min(padding_limit).min(tk)
    }

    /// The mask as booleans of shape [B, 1, Tq, Tk] (true = hidden), for `masked_fill`.
    pub fn to_bool(&self, b: usize, tq: usize, tk: usize) -> ArrayD<bool> {
        ArrayD::from_shape_fn(IxDyn(&[b, 1, tq, tk]), |ix| self.is_masked(ix[0], ix[2], ix[3]))
    }

    fn check(&self, b: usize, tk: usize) {
        if let Some(len) = &self.key_lengths {
            assert!(
                len.len() == b,
                "attention: {} key lengths given for a batch of {b}",
                len.len()
            );
            if let Some(&bad) = len.iter().find(|&&l| l > tk) {
                panic!("attention: key length {bad} exceeds the {tk} keys");
            }
        }
    }
}

/// The outputs of [`Tape::attention`].
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    /// O = P V, [B, H, Tq, Dv].
    pub out: Var,
    /// The attention weights P, [B, H, Tq, Tk], for inspection (pictures). It shares the
    /// buffer backward keeps; it has no backward of its own, so a loss must not use it.
    pub weights: Var,
}

impl Tape {
    /// O = softmax(Q K^T * scale + mask) V; see the module docs. `scale` is usually
    /// 1 / sqrt(D).
    ///
    /// Backward, with G = dL/dO:
    ///   dV = P^T G,
    ///   dP = G V^T,
    ///   dS = P * (dP - rowsum(dP * P))   (the softmax backward; 0 wherever P = 0, so masked
    ///                                     pairs get no gradient),
    ///   dQ = dS K * scale,   dK = dS^T Q * scale.
    pub fn attention(&mut self, q: Var, k: Var, v: Var, mask: &AttentionMask, scale: f32) -> Attention {
        let (qv, kv, vv) = (self.value(q).clone(), self.value(k).clone(), self.value(v).clone());
        let (qs, ks, vs) = (qv.shape(), kv.shape(), vv.shape());
        assert!(
            qs.len() == 4 && ks.len() == 4 && vs.len() == 4,
            "attention: expected Q, K, V of shape [B, H, T, D], got {qs:?}, {ks:?}, {vs:?}"
        );
        let (b, h, tq, d) = (qs[0], qs[1], qs[2], qs[3]);
        let tk = ks[2];
        assert!(
            ks == [b, h, tk, d] && vs[..3] == [b, h, tk],
            "attention: Q {qs:?}, K {ks:?} and V {vs:?} do not fit ([B, H, Tq, D], [B, H, Tk, D], [B, H, Tk, Dv])"
        );
        mask.check(b, tk);

        // S = Q K^T (one buffer), then in place: P = softmax(S * scale + mask), row by row.
        let mut p = gemm(qv.view(), t(kv.view())); // [B, H, Tq, Tk]
        if tk > 0 {
            let rows = p.as_slice_mut().expect("a new array is contiguous");
            rows.par_chunks_mut(tk).enumerate().for_each(|(r, row)| {
                // Every mask we support hides a suffix of the keys: query i of sequence b sees
                // keys 0..visible and no others.
                let visible = mask.visible_keys(r / (h * tq), r % tq, tk);
                let (live, hidden) = row.split_at_mut(visible);
                hidden.fill(0.0); // e^-inf = 0
                if live.is_empty() {
                    return; // a query that may see nothing attends to nothing
                }
                let max = kernels::vector::max(live) * scale;
                live.iter_mut().for_each(|s| *s = exp(*s * scale - max));
                let inv = 1.0 / kernels::vector::sum(live);
                live.iter_mut().for_each(|s| *s *= inv);
            });
        }
        let p = p.into_shared();
        // O = P V, stored as [B, Tq, H, Dv] so that merging heads needs no copy.
        let o = gemm_interleaved(p.view(), vv.view()); // [B, H, Tq, Dv]
        let p_saved = p.clone();
        let out = self.record("attention", o, &[q, k, v], move |g| {
            // dQ, dK, dV are stored head-interleaved like O, so splitting heads needs no copy.
            let dv = gemm_interleaved(t(p_saved.view()), g.view()); // dV = P^T G: from O = P V, [B, H, Tk, Dv]
            let mut ds = gemm(g.view(), t(vv.view())); // dP = G V^T: from O = P V, [B, H, Tq, Tk]
            if tk > 0 {
                let p_rows = p_saved.as_slice().expect("contiguous");
                let ds_rows = ds.as_slice_mut().expect("a new array is contiguous");
                ds_rows
                    .par_chunks_mut(tk)
                    .zip(p_rows.par_chunks(tk))
                    .for_each(|(dp, p)| {
                        let dot = kernels::vector::dot(dp, p); // rowsum(dP * P)
                        for (dp, &p) in dp.iter_mut().zip(p) {
                            // dS = P (dP - rowsum(dP P)): from P = softmax(S); times scale, from
                            // S * scale inside the softmax. In place over dP.
                            *dp = p * (*dp - dot) * scale;
                        }
                    });
            }
            let dq = gemm_interleaved(ds.view(), kv.view()); // dQ = dS K * scale: from S = Q K^T, [B, H, Tq, D]
            let dk = gemm_interleaved(t(ds.view()), qv.view()); // dK = dS^T Q * scale: from S = Q K^T, [B, H, Tk, D]
            vec![dq, dk, dv]
        });
        let weights = self.record_without_backward("attention_weights", p, &[q, k, v]);
        Attention { out, weights }
    }

    /// The same attention composed of primitive ops (matmul, mul_scalar, masked_fill, softmax,
    /// matmul): the slow reference [`Tape::attention`] is tested against. Returns O.
    pub fn attention_reference(&mut self, q: Var, k: Var, v: Var, mask: &AttentionMask, scale: f32) -> Var {
        let (b, tq, tk) = (self.shape(q)[0], self.shape(q)[2], self.shape(k)[2]);
        let kt = self.transpose(k, 2, 3); // [B, H, D, Tk]
        let s = self.matmul(q, kt); // [B, H, Tq, Tk]
        let s = self.mul_scalar(s, scale);
        let s = self.masked_fill(s, &mask.to_bool(b, tq, tk), f32::NEG_INFINITY);
        let p = self.softmax(s, 3);
        self.matmul(p, v) // [B, H, Tq, Dv]
    }
}
