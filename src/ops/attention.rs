//! Scaled dot-product attention, fused, one block of query rows at a time (Vaswani et al.,
//! 2017, section 3.2.1):
//!
//!   S = Q K^T * scale + mask,   P = softmax(S) over the keys,   O = P V,
//!
//! with scale = 1 / sqrt(d_k) by default and mask = -inf at every (query, key) pair a query may
//! not see. Shapes: Q [B, H, Tq, D], K [B, H, Tk, D], V [B, H, Tk, Dv], O [B, H, Tq, Dv].
//!
//! **Row blocks.** Built from primitive ops ([`Tape::attention_reference`]), attention holds S
//! and P for every head at once: B * H * Tq * Tk floats per layer, which grow with T^2 (at
//! T = 1,024, batch 4 and 4 heads, 64 MB each). Here each head (b, h) is one task, and it takes
//! its queries a block of rows at a time: S_blk = Q_blk K^T, the softmax, O_blk = P_blk V, while
//! the block's [rows, Tk] scores are still in the core's cache. Forward keeps O and one number
//! per query row, the log of the softmax's denominator (scaled scores s_ij = S_ij * scale),
//!
//!   lse_i = log sum_j e^(s_ij),   so that   P_ij = e^(s_ij - lse_i),
//!
//! and backward recomputes each block's P from Q, K and lse (one more product, Q_blk K^T)
//! instead of reading a stored P. Attention's memory grows with T, not T^2. This is the CPU
//! form of FlashAttention (Dao et al., 2022, "FlashAttention: Fast and Memory-Efficient Exact
//! Attention with IO-Awareness"), whose backward also uses
//!
//!   D_i = sum_j dP_ij P_ij = sum_j (G_i . V_j) P_ij = G_i . O_i      (G = dL/dO),
//!
//! one dot product per row instead of a pass over the row's Tk entries.
//!
//! Both masks hide a suffix of each query's keys (`attention_mask.rs`), so a block multiplies
//! only the keys its last row can see: under the causal mask, about half of them.

use super::attention_mask::AttentionMask;
use crate::kernels::gemm_then::gemm_into_then;
use crate::kernels::matmul::{gemm_into, matmul as gemm, t};
use crate::kernels::{self, vector::exp};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use ndarray::{s, Array4, ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, Ix4};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// About this many scores per row block (S_blk is [rows, Tk]): 128 KB of f32, so that a block's
/// scores, and in backward its dP, stay in the core's cache while they are used.
const BLOCK_SCORES: usize = 32 * 1024;

/// Query rows per block for `tk` keys: about `BLOCK_SCORES` (32 Ki) / Tk, at least 1. At Tk = 128 a
/// block is 256 rows (a whole toy sequence); at Tk = 1,024 it is 32.
pub fn attention_block_rows(tk: usize) -> usize {
    (BLOCK_SCORES / tk.max(1)).max(1)
}

impl Tape {
    /// O = softmax(Q K^T * scale + mask) V; see the module docs. `scale` is usually
    /// 1 / sqrt(D). Blocks of [`attention_block_rows`] query rows.
    pub fn attention(&mut self, q: Var, k: Var, v: Var, mask: &AttentionMask, scale: f32) -> Var {
        let tk = self.shape(k).get(2).copied().unwrap_or(0);
        self.attention_blocked(q, k, v, mask, scale, attention_block_rows(tk))
    }

    /// [`Tape::attention`] with `block_rows` query rows per block. The result does not depend
    /// on it beyond rounding (tests run blocks of 1, 2 and 3 rows against the reference).
    ///
    /// Backward, per block of rows, with G = dL/dO and D_i = G_i . O_i:
    ///   P  = e^(s - lse)               (recomputed from S_blk = Q_blk K^T),
    ///   dV += P^T G_blk,
    ///   dP = G_blk V^T,
    ///   dS = P * (dP - D_i) * scale    (the softmax backward, times scale from s = S * scale;
    ///                                   0 wherever P = 0, so masked pairs get no gradient),
    ///   dQ_blk = dS K,   dK += dS^T Q_blk.
    pub fn attention_blocked(
        &mut self,
        q: Var,
        k: Var,
        v: Var,
        mask: &AttentionMask,
        scale: f32,
        block_rows: usize,
    ) -> Var {
        assert!(block_rows > 0, "attention: block_rows must be at least 1");
        let (qv, kv, vv) = (self.value(q).clone(), self.value(k).clone(), self.value(v).clone());
        let (b, h, tq, tk, d, d_v) = check_shapes(qv.shape(), kv.shape(), vv.shape());
        mask.check(b, tk);
        let mask = mask.clone();
        let (o, lse) = forward_all([as_4d(&qv), as_4d(&kv), as_4d(&vv)], &mask, scale, block_rows);
        let o = o.into_dyn().into_shared().permuted_axes(vec![0, 2, 1, 3]); // [B, H, Tq, Dv]
        let o_saved = o.clone();
        self.record("attention", o, &[q, k, v], move |g| {
            // dQ, dK, dV are stored head-interleaved like O, so splitting heads needs no copy.
            let mut dq = Array4::<f32>::zeros((b, tq, h, d));
            let mut dk = Array4::<f32>::zeros((b, tk, h, d));
            let mut dv = Array4::<f32>::zeros((b, tk, h, d_v));
            let inputs = [as_4d(&qv), as_4d(&kv), as_4d(&vv), as_4d(&o_saved), as_4d(&g)];
            let grads = [dq.view_mut(), dk.view_mut(), dv.view_mut()];
            backward_all(inputs, &mask, scale, block_rows, &lse, grads);
            Vec::from([dq, dk, dv].map(|x| x.into_dyn().permuted_axes(vec![0, 2, 1, 3])))
            // [B, H, T, D]
        })
    }

    /// Self-attention on Q, K and V packed in one tensor, the output of one product
    /// X [W_Q; W_K; W_V]^T: `qkv` is [B, T, 3 * H * Dh], Q, K and V side by side on the last
    /// axis, each split into `heads` heads. Returns O [B, H, T, Dh], as [`Tape::attention`] does.
    /// Q, K and V are read in place through strides, and backward writes dQ, dK and dV into one
    /// [B, T, 3 * H * Dh] gradient: no copy either way.
    pub fn attention_packed(&mut self, qkv: Var, heads: usize, mask: &AttentionMask, scale: f32) -> Var {
        let shape = self.shape(qkv).to_vec();
        assert!(
            shape.len() == 3 && heads > 0 && shape[2].is_multiple_of(3 * heads),
            "attention_packed: expected [B, T, 3 * heads * Dh] with {heads} heads, got {shape:?}"
        );
        let (b, t, dh) = (shape[0], shape[1], shape[2] / (3 * heads));
        mask.check(b, t);
        let mask = mask.clone();
        let block_rows = attention_block_rows(t);
        let x = self.value(qkv).clone(); // shares the buffer
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned().into_shared()
        };
        let (o, lse) = forward_all(unpack(&x, heads), &mask, scale, block_rows);
        let o = o.into_dyn().into_shared().permuted_axes(vec![0, 2, 1, 3]); // [B, H, T, Dh]
        let o_saved = o.clone();
        self.record("attention", o, &[qkv], move |g| {
            let mut dqkv = ndarray::Array5::<f32>::zeros((b, t, 3, heads, dh)); // dQ, dK, dV side by side
            let (dq, rest) = dqkv.view_mut().split_at(Axis(2), 1);
            let (dk, dv) = rest.split_at(Axis(2), 1);
            let grads = [dq, dk, dv].map(|x| x.index_axis_move(Axis(2), 0)); // [B, T, H, Dh] each
            let [q4, k4, v4] = unpack(&x, heads);
            backward_all(
                [q4, k4, v4, as_4d(&o_saved), as_4d(&g)],
                &mask,
                scale,
                block_rows,
                &lse,
                grads,
            );
            vec![dqkv
                .into_shape_with_order(vec![b, t, 3 * heads * dh])
                .expect("same elements")]
        })
    }

    /// The attention weights P = softmax(Q K^T * scale + mask), [B, H, Tq, Tk], for pictures
    /// and inspection. It holds all of P at once and has no backward: a loss must not use it.
    pub fn attention_weights(&mut self, q: Var, k: Var, mask: &AttentionMask, scale: f32) -> Var {
        let (qv, kv) = (self.value(q).clone(), self.value(k).clone());
        let (b, h, tq, tk, ..) = check_shapes(qv.shape(), kv.shape(), kv.shape());
        mask.check(b, tk);
        let mut p = gemm(qv.view(), t(kv.view())); // S = Q K^T, [B, H, Tq, Tk]
        if tk > 0 {
            let rows = p.as_slice_mut().expect("a new array is contiguous");
            rows.par_chunks_mut(tk).enumerate().for_each(|(r, row)| {
                let visible = mask.visible_keys(r / (h * tq), r % tq, tk);
                softmax_row(row, visible, scale);
            });
        }
        self.record_without_backward("attention_weights", p, &[q, k])
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

/// Forward over every head (b, h), one task each: O, stored as [B, Tq, H, Dv] in memory so
/// that merging heads needs no copy, and lse, [B, H, Tq].
fn forward_all(
    [q4, k4, v4]: [ArrayView4<'_, f32>; 3],
    mask: &AttentionMask,
    scale: f32,
    block_rows: usize,
) -> (Array4<f32>, Vec<f32>) {
    let (b, h, tq, tk, dv) = (q4.dim().0, q4.dim().1, q4.dim().2, k4.dim().2, v4.dim().3);
    let mut o = Array4::<f32>::zeros((b, tq, h, dv));
    let mut lse = vec![0.0f32; b * h * tq];
    heads_mut(o.view_mut())
        .into_par_iter()
        .zip(lse.par_chunks_mut(tq.max(1)))
        .enumerate()
        .for_each(|(i, (o, lse))| {
            let (bi, hi) = (i / h, i % h);
            let visible = |row: usize| mask.visible_keys(bi, row, tk);
            let inputs = [q4, k4, v4].map(|x| head(x, bi, hi));
            forward_head(inputs, visible, scale, block_rows, o, lse);
        });
    (o, lse)
}

/// Backward over every head (b, h), one task each, from Q, K, V, O and G = dL/dO
/// ([B, H, T, D] views) and lse; writes dQ, dK, dV, each a [B, T, H, D] view.
fn backward_all(
    [q4, k4, v4, o4, g4]: [ArrayView4<'_, f32>; 5],
    mask: &AttentionMask,
    scale: f32,
    block_rows: usize,
    lse: &[f32],
    [dq, dk, dv]: [ArrayViewMut4<'_, f32>; 3],
) {
    let (h, tq, tk) = (q4.dim().1, q4.dim().2, k4.dim().2);
    heads_mut(dq)
        .into_par_iter()
        .zip(heads_mut(dk))
        .zip(heads_mut(dv))
        .zip(lse.par_chunks(tq.max(1)))
        .enumerate()
        .for_each(|(i, (((dq, dk), dv), lse))| {
            let (bi, hi) = (i / h, i % h);
            let visible = |row: usize| mask.visible_keys(bi, row, tk);
            let inputs = [q4, k4, v4, o4, g4].map(|x| head(x, bi, hi));
            backward_head(inputs, visible, scale, block_rows, lse, [dq, dk, dv]);
        });
}

/// One head's forward: for each block of query rows, S_blk = Q_blk K^T over the keys the block
/// sees, its rows turned into P in place (inside the product, each row as soon as it is summed:
/// `gemm_into_then`), O_blk = P_blk V. Writes `o` [Tq, Dv] and `lse` [Tq].
fn forward_head(
    [q, k, v]: [ArrayView2<'_, f32>; 3],
    visible: impl Fn(usize) -> usize + Sync,
    scale: f32,
    block_rows: usize,
    mut o: ArrayViewMut2<'_, f32>,
    lse: &mut [f32],
) {
    let (tq, tk) = (q.nrows(), k.nrows());
    SCRATCH.with_borrow_mut(|[scores, _]| {
        let mut scores = scratch(scores, block_rows.min(tq), tk);
        for r0 in (0..tq).step_by(block_rows) {
            let r1 = (r0 + block_rows).min(tq);
            let seen = visible(r1 - 1); // a block's last row sees the most keys
            let mut p = scores.slice_mut(s![..r1 - r0, ..seen]);
            // S_blk = Q_blk K^T, and each row of it turned into P_blk = softmax(S_blk * scale) as
            // soon as the product has summed it, while it is in L1 (the product's epilogue).
            let lse_blk: Vec<AtomicU32> = (r0..r1).map(|_| AtomicU32::new(0)).collect();
            let softmax = |i: usize, row: &mut [f32]| {
                let lse_i = softmax_row(row, visible(r0 + i), scale);
                lse_blk[i].store(lse_i.to_bits(), Ordering::Relaxed);
            };
            let (q_blk, k_seen) = (q.slice(s![r0..r1, ..]), k.slice(s![..seen, ..]));
            gemm_into_then(q_blk, k_seen.t(), 0.0, p.view_mut(), &softmax);
            for (lse_i, l) in lse[r0..r1].iter_mut().zip(&lse_blk) {
                *lse_i = f32::from_bits(l.load(Ordering::Relaxed));
            }
            gemm_into(1.0, p.view(), v.slice(s![..seen, ..]), 0.0, o.slice_mut(s![r0..r1, ..]));
            // O_blk = P_blk V
        }
    });
}

/// One head's backward (see [`Tape::attention_blocked`]): inputs Q, K, V, O and G = dL/dO of
/// the head, its `lse`; writes dQ, dK, dV of the head.
fn backward_head(
    [q, k, v, o, g]: [ArrayView2<'_, f32>; 5],
    visible: impl Fn(usize) -> usize + Sync,
    scale: f32,
    block_rows: usize,
    lse: &[f32],
    [mut dq, mut dk, mut dv]: [ArrayViewMut2<'_, f32>; 3],
) {
    let (tq, tk) = (q.nrows(), k.nrows());
    let d: Vec<f32> = (0..tq).map(|i| g.row(i).dot(&o.row(i))).collect(); // D_i = G_i . O_i
    SCRATCH.with_borrow_mut(|[p_buf, ds_buf]| {
        let mut p_buf = scratch(p_buf, block_rows.min(tq), tk);
        let mut ds_buf = scratch(ds_buf, block_rows.min(tq), tk);
        for r0 in (0..tq).step_by(block_rows) {
            let r1 = (r0 + block_rows).min(tq);
            let seen = visible(r1 - 1);
            let (q_blk, g_blk) = (q.slice(s![r0..r1, ..]), g.slice(s![r0..r1, ..]));
            let (k_seen, v_seen) = (k.slice(s![..seen, ..]), v.slice(s![..seen, ..]));
            let mut p = p_buf.slice_mut(s![..r1 - r0, ..seen]);
            // S_blk = Q_blk K^T, again, each row turned into P = e^(s * scale - lse) in the
            // product's epilogue
            let recompute_p = |i: usize, row: &mut [f32]| {
                let (live, hidden) = row.split_at_mut(visible(r0 + i));
                let lse_i = lse[r0 + i];
                live.iter_mut().for_each(|s| *s = exp(*s * scale - lse_i)); // P = e^(s - lse)
                hidden.fill(0.0);
            };
            gemm_into_then(q_blk, k_seen.t(), 0.0, p.view_mut(), &recompute_p);
            gemm_into(1.0, p.t(), g_blk, 1.0, dv.slice_mut(s![..seen, ..])); // dV += P^T G_blk: from O = P V
            let mut ds = ds_buf.slice_mut(s![..r1 - r0, ..seen]);
            // dP = G_blk V^T: from O = P V; each row turned into dS in the product's epilogue
            let p_blk = p.view();
            let ds_from_dp = |i: usize, ds_row: &mut [f32]| {
                let p_row = p_blk.row(i);
                let p_row = p_row.to_slice().expect("a row of P is contiguous");
                let d_i = d[r0 + i];
                for (ds, &p) in ds_row.iter_mut().zip(p_row) {
                    *ds = p * (*ds - d_i) * scale; // dS = P (dP - D_i) * scale: from P = softmax(S * scale); over dP
                }
            };
            gemm_into_then(g_blk, v_seen.t(), 0.0, ds.view_mut(), &ds_from_dp);
            gemm_into(1.0, ds.view(), k_seen, 0.0, dq.slice_mut(s![r0..r1, ..])); // dQ_blk = dS K: from S = Q K^T
            gemm_into(1.0, ds.t(), q_blk, 1.0, dk.slice_mut(s![..seen, ..])); // dK += dS^T Q_blk: from S = Q K^T
        }
    });
}

thread_local! {
    /// Each worker's buffers for a block of scores (and, in backward, of dS): reused from head
    /// to head instead of allocated and zeroed for each. Every element a block reads is written
    /// first (a product with beta = 0, or the softmax's fill of the hidden keys).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// `buf` as a [rows, cols] matrix, grown if it is too small (its old values are left in it).
fn scratch(buf: &mut Vec<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    if buf.len() < rows * cols {
        buf.resize(rows * cols, 0.0);
    }
    ArrayViewMut2::from_shape((rows, cols), &mut buf[..rows * cols]).expect("rows * cols elements")
}

/// Row i of S (unscaled Q K^T) becomes row i of P, in place: p_j = e^(s_j * scale - m) / Z for
/// the visible keys j < `visible` (m their largest scaled score), 0 for the hidden ones. Returns
/// lse = m + ln Z, the log of the softmax's denominator; -inf for a query that sees nothing
/// (its row is all zeros: it attends to nothing).
fn softmax_row(row: &mut [f32], visible: usize, scale: f32) -> f32 {
    let (live, hidden) = row.split_at_mut(visible);
    hidden.fill(0.0); // e^-inf = 0
    if live.is_empty() {
        return f32::NEG_INFINITY;
    }
    let max = kernels::vector::max(live) * scale; // scale > 0, so the max of s * scale
    live.iter_mut().for_each(|s| *s = exp(*s * scale - max));
    let z = kernels::vector::sum(live);
    let inv = 1.0 / z;
    live.iter_mut().for_each(|s| *s *= inv);
    max + z.ln()
}

/// Each head (b, h) of a [B, T, H, D] view, as a [T, D] view, in (b, h) order.
fn heads_mut(x: ArrayViewMut4<'_, f32>) -> Vec<ArrayViewMut2<'_, f32>> {
    x.into_outer_iter_mut()
        .flat_map(|x_b| x_b.permuted_axes([1, 0, 2]).into_outer_iter_mut()) // [H, T, D] -> [T, D] each
        .collect()
}

/// Q, K and V of a packed [B, T, 3 * H * Dh] tensor (see [`Tape::attention_packed`]), each as
/// a [B, H, T, Dh] view into it.
fn unpack(x: &Tensor, heads: usize) -> [ArrayView4<'_, f32>; 3] {
    let (b, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let x5 = x
        .view()
        .into_shape_with_order((b, t, 3, heads, c / (3 * heads)))
        .expect("standard layout");
    [0, 1, 2].map(|j| x5.index_axis_move(Axis(2), j).permuted_axes([0, 2, 1, 3]))
}

/// Head (b, h) of a [B, H, T, D] array, as a [T, D] view.
fn head(x: ArrayView4<'_, f32>, b: usize, h: usize) -> ArrayView2<'_, f32> {
    x.slice_move(s![b, h, .., ..])
}

/// A [B, H, T, D] tensor as a 4-axis view (the ops' values have dynamic rank).
fn as_4d<S: ndarray::Data<Elem = f32>>(x: &ndarray::ArrayBase<S, ndarray::IxDyn>) -> ArrayView4<'_, f32> {
    x.view().into_dimensionality::<Ix4>().expect("shapes checked: 4 axes")
}

/// Check Q [B, H, Tq, D], K [B, H, Tk, D], V [B, H, Tk, Dv]; return (B, H, Tq, Tk, D, Dv).
fn check_shapes(qs: &[usize], ks: &[usize], vs: &[usize]) -> (usize, usize, usize, usize, usize, usize) {
    assert!(
        qs.len() == 4 && ks.len() == 4 && vs.len() == 4,
        "attention: expected Q, K, V of shape [B, H, T, D], got {qs:?}, {ks:?}, {vs:?}"
    );
    let (b, h, tq, d, tk) = (qs[0], qs[1], qs[2], qs[3], ks[2]);
    assert!(
        ks == [b, h, tk, d] && vs[..3] == [b, h, tk],
        "attention: Q {qs:?}, K {ks:?} and V {vs:?} do not fit ([B, H, Tq, D], [B, H, Tk, D], [B, H, Tk, Dv])"
    );
    (b, h, tq, tk, d, vs[3])
}
