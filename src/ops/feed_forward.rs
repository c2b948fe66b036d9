//! A transformer's position-wise feed-forward network and its residual add, as one op:
//!
//! ```text
//! h = x W_1^T + b_1,    a = sigma(h),    y = r + a W_2^T + b_2
//! ```
//!
//! with sigma GELU, exact or its tanh form (the formulas and their slopes sigma' are
//! [`Tape::gelu`]'s and [`Tape::gelu_tanh`]'s, the same functions). Op by op this is four nodes
//! (linear, gelu, linear, add) and four passes over memory after the products; here b_1 and
//! sigma are applied to each row of the first product, and b_2 and r to each row of the second,
//! while the row is still in cache (the products' "epilogues",
//! [`matmul_then`](crate::kernels::matmul::matmul_then)). Backward keeps x and h only: not
//! a = sigma(h) (recomputed from h, one pass), not the two products' outputs, which the op-by-op
//! path keeps as nodes. Per row of d_model, that is 5 d_model floats instead of 13 (d_ff =
//! 4 d_model).
//!
//! Backward, with g = dL/dy, rows folded as in [`Tape::linear`]:
//!
//! ```text
//! dL/dr   = g
//! dL/dW_2 = g^T a,              dL/db_2 = sum over rows of g
//! dL/dh   = (g W_2) * sigma'(h)       (sigma' applied in the epilogue of g W_2)
//! dL/dW_1 = dh^T x,             dL/db_1 = sum over rows of dh,     dL/dx = dh W_1
//! ```
//!
//! Every number is computed by the same kernel in the same order as on the op-by-op path
//! ([`Tape::feed_forward_reference`]), so values and gradients are the same bits;
//! `tests/feed_forward.rs` checks that.

use super::unary::{gelu, gelu_slope, gelu_tanh, gelu_tanh_slope};
use crate::kernels::broadcast::sum_to_shape;
use crate::kernels::elementwise::map;
use crate::kernels::matmul::{matmul as gemm, matmul_then, t};
use crate::tape::{Tape, Var};
use ndarray::{Array2, IxDyn};
use std::mem::MaybeUninit;

/// The nonlinearity sigma of a fused feed-forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedActivation {
    /// Exact GELU, [`Tape::gelu`].
    Gelu,
    /// GELU's tanh approximation, [`Tape::gelu_tanh`].
    GeluTanh,
}

/// The four parameters of a feed-forward: W_1 `[d_ff, d]`, b_1 `[d_ff]`, W_2 `[d, d_ff]`, b_2 `[d]`.
#[derive(Clone, Copy, Debug)]
pub struct FeedForwardWeights {
    /// W_1, `[d_ff, d]`.
    pub w1: Var,
    /// b_1, `[d_ff]`.
    pub b1: Var,
    /// W_2, `[d, d_ff]`.
    pub w2: Var,
    /// b_2, `[d]`.
    pub b2: Var,
}

/// A pointer to the rows of a = sigma(h) that the first product's epilogue fills, shared by
/// the threads: each element is written by exactly one epilogue call.
#[derive(Clone, Copy)]
struct RowsOut(*mut f32);
// SAFETY: the epilogue calls write disjoint elements (one call per stretch of a row of C).
unsafe impl Send for RowsOut {}
unsafe impl Sync for RowsOut {}

impl RowsOut {
    /// Where element i goes. (A method, so that closures capture the whole `RowsOut`.)
    ///
    /// # Safety
    /// i must be inside the buffer.
    unsafe fn at(&self, i: usize) -> *mut MaybeUninit<f32> {
        self.0.add(i) as *mut MaybeUninit<f32>
    }
}

impl Tape {
    /// y = r + sigma(x W_1^T + b_1) W_2^T + b_2 for x `[..., d]` (without r when `residual` is
    /// None). See the module docs for the formulas and what backward keeps.
    pub fn feed_forward(
        &mut self,
        x: Var,
        weights: FeedForwardWeights,
        activation: FusedActivation,
        residual: Option<Var>,
    ) -> Var {
        let FeedForwardWeights { w1, b1, w2, b2 } = weights;
        let xv = self.value(x).clone();
        let (w1v, w2v) = (self.value(w1).clone(), self.value(w2).clone());
        let (b1v, b2v) = (self.value(b1).clone(), self.value(b2).clone());
        let xs = xv.shape().to_vec();
        let d = *xs.last().expect("feed_forward: x needs at least one axis");
        let d_ff = w1v.shape()[0];
        assert!(
            w1v.shape() == [d_ff, d] && w2v.shape() == [d, d_ff] && b1v.shape() == [d_ff] && b2v.shape() == [d],
            "feed_forward: x {xs:?} with W_1 {:?}, b_1 {:?}, W_2 {:?}, b_2 {:?} (expected [d_ff, d], [d_ff], [d, d_ff], [d])",
            w1v.shape(),
            b1v.shape(),
            w2v.shape(),
            b2v.shape()
        );
        let rv = residual.map(|r| self.value(r).as_standard_layout().into_owned());
        if let Some(rv) = &rv {
            assert!(
                rv.shape() == xs,
                "feed_forward: residual {:?} is not x's shape {xs:?}",
                rv.shape()
            );
        }
        let rows = xv.len() / d.max(1);
        let x2 = xv.to_shape((rows, d)).expect("same element count"); // [R, d]
        let w1t = w1v.view().into_dimensionality().expect("2-D").reversed_axes(); // W_1^T [d, d_ff]
        let w2t = w2v.view().into_dimensionality().expect("2-D").reversed_axes(); // W_2^T [d_ff, d]
        let (b1s, b2s) = (b1v.as_slice().expect("1-D"), b2v.as_slice().expect("1-D"));

        // h = x W_1^T + b_1, and a = sigma(h) written beside it, row by row while in cache.
        let mut a = Vec::<f32>::with_capacity(rows * d_ff);
        let a_out = RowsOut(a.as_mut_ptr());
        let h = matmul_then(x2.view(), w1t, &|r, c0, h_row| {
            let b1 = &b1s[c0..c0 + h_row.len()];
            h_row.iter_mut().zip(b1).for_each(|(h, b)| *h += b); // h = x W_1^T + b_1
                                                                 // SAFETY: a has room for rows x d_ff; these elements are written by this call only.
            let a_row = unsafe { std::slice::from_raw_parts_mut(a_out.at(r * d_ff + c0), h_row.len()) };
            // a = sigma(h); one loop per activation, so that each is vectorised
            match activation {
                FusedActivation::Gelu => a_row.iter_mut().zip(&*h_row).for_each(|(a, &h)| {
                    a.write(gelu(h));
                }),
                FusedActivation::GeluTanh => a_row.iter_mut().zip(&*h_row).for_each(|(a, &h)| {
                    a.write(gelu_tanh(h));
                }),
            }
        });
        // SAFETY: the epilogue wrote every one of the rows x d_ff elements.
        unsafe { a.set_len(rows * d_ff) };
        let a = Array2::from_shape_vec((rows, d_ff), a).expect("rows x d_ff");

        // y = r + (a W_2^T + b_2), row by row while in cache.
        let r_rows = rv.as_ref().map(|r| r.as_slice().expect("standard layout"));
        let y = matmul_then(a.view(), w2t, &|r, c0, y_row| {
            let b2 = &b2s[c0..c0 + y_row.len()];
            y_row.iter_mut().zip(b2).for_each(|(y, b)| *y += b); // a W_2^T + b_2
            if let Some(res) = r_rows {
                let res = &res[r * d + c0..][..y_row.len()];
                y_row.iter_mut().zip(res).for_each(|(y, r)| *y += r); // y = r + ...
            }
        });
        drop(a); // not kept: backward recomputes it from h
        let y = y.into_shape_with_order(IxDyn(&xs)).expect("same element count");

        let mut inputs = vec![x, w1, b1, w2, b2];
        inputs.extend(residual);
        let h = h.into_shared();
        self.record("feed_forward", y, &inputs, move |g| {
            let x2 = xv.to_shape((rows, d)).expect("same element count"); // [R, d]
            let g2 = g.to_shape((rows, d)).expect("same element count"); // [R, d]
                                                                         // a = sigma(h) again, for dL/dW_2 = g^T a.
            let a = match activation {
                FusedActivation::Gelu => map(h.view().into_dyn(), gelu),
                FusedActivation::GeluTanh => map(h.view().into_dyn(), gelu_tanh),
            };
            let dw2 = gemm(t(g2.view().into_dyn()), a.view()); // [d, d_ff]
            drop(a);
            // dL/dh = (g W_2) * sigma'(h), sigma' applied to each row of the product.
            let w2m = w2v.view().into_dimensionality().expect("2-D");
            let dh = matmul_then(g2.view(), w2m, &|r, c0, row| {
                let h = &h.as_slice().expect("row-major")[r * d_ff + c0..][..row.len()];
                match activation {
                    FusedActivation::Gelu => row.iter_mut().zip(h).for_each(|(dh, &h)| *dh *= gelu_slope(h)),
                    FusedActivation::GeluTanh => row.iter_mut().zip(h).for_each(|(dh, &h)| *dh *= gelu_tanh_slope(h)),
                }
            });
            drop(h);
            let dw1 = gemm(t(dh.view().into_dyn()), x2.view().into_dyn()); // dL/dW_1 = dh^T x, [d_ff, d]
            let mut dx = gemm(dh.view().into_dyn(), w1v.view()); // dL/dx = dh W_1, [R, d]
            dx = dx.into_shape_with_order(IxDyn(&xs)).expect("same element count");
            let mut dh_shape = xs[..xs.len() - 1].to_vec();
            dh_shape.push(d_ff);
            let dh = dh.into_shape_with_order(IxDyn(&dh_shape)).expect("same element count");
            let db1 = sum_to_shape(dh, &[d_ff]); // dL/db_1 = sum over rows of dh
            let mut grads = vec![dx, dw1, db1, dw2];
            if residual.is_some() {
                grads.push(sum_to_shape(g.clone(), &[d])); // dL/db_2 = sum over rows of g
                grads.push(g); // dL/dr = g
            } else {
                grads.push(sum_to_shape(g, &[d]));
            }
            grads
        })
    }

    /// The same feed-forward op by op: linear, sigma, linear, add. The reference
    /// [`Tape::feed_forward`] is tested against.
    pub fn feed_forward_reference(
        &mut self,
        x: Var,
        weights: FeedForwardWeights,
        activation: FusedActivation,
        residual: Option<Var>,
    ) -> Var {
        let h = self.linear(x, weights.w1, Some(weights.b1));
        let a = match activation {
            FusedActivation::Gelu => self.gelu(h),
            FusedActivation::GeluTanh => self.gelu_tanh(h),
        };
        let f = self.linear(a, weights.w2, Some(weights.b2));
        match residual {
            Some(r) => self.add(r, f),
            None => f,
        }
    }
}
