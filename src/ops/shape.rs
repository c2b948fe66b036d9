//! Shape ops: reshape, permute / transpose, narrow, concat, and the head split/merge that
//! multi-head attention needs. None of them changes a value, only where it sits, so each
//! backward moves the gradient back to where the value came from.
//!
//! `permute`, `transpose` and `narrow` are views: the output shares the input's storage with
//! other strides (or a smaller window), and nothing is copied. `reshape` copies only when the
//! input is not laid out row-major (e.g. right after a transpose).

use crate::tape::{Tape, Var};
use crate::tensor::{Grad, Tensor};
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// The permutation that undoes `axes`: inverse[axes[i]] = i.
fn inverse_permutation(axes: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    inverse
}

/// Reshape an owned gradient, copying to row-major first if it is not.
fn reshape_grad(g: Grad, shape: &[usize]) -> Grad {
    let g = if g.is_standard_layout() {
        g
    } else {
        g.as_standard_layout().into_owned()
    };
    g.into_shape_with_order(IxDyn(shape)).expect("same element count")
}

impl Tape {
    /// y = x with a new shape of the same element count (row-major order).
    ///
    /// dL/dx = reshape(dL/dy, shape of x).
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Var {
        let xv = self.value(x).clone();
        let in_shape = xv.shape().to_vec();
        let n: usize = shape.iter().product();
        assert!(
            n == xv.len(),
            "reshape: cannot reshape {in_shape:?} ({} elements) into {shape:?} ({n} elements)",
            xv.len()
        );
        let xv: Tensor = if xv.is_standard_layout() {
            xv
        } else {
            xv.as_standard_layout().into_owned().into_shared()
        };
        let y = xv
            .into_shape_with_order(IxDyn(shape))
            .expect("row-major and same element count");
        self.record("reshape", y, &[x], move |g| {
            vec![reshape_grad(g, &in_shape)] // same elements, old shape: from y = x in a new shape
        })
    }

    /// y = x with its axes reordered: axis i of y is axis `axes[i]` of x. A view, no copy.
    ///
    /// dL/dx = dL/dy permuted by the inverse permutation.
    pub fn permute(&mut self, x: Var, axes: &[usize]) -> Var {
        let xv = self.value(x).clone();
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        assert!(
            sorted == (0..xv.ndim()).collect::<Vec<_>>(),
            "permute: {axes:?} is not a permutation of the axes of shape {:?}",
            xv.shape()
        );
        let y = xv.permuted_axes(axes.to_vec());
        let inverse = inverse_permutation(axes);
        self.record("permute", y, &[x], move |g| {
            vec![g.permuted_axes(inverse)] // axes put back: from y = x with axes reordered
        })
    }

    /// Swap two axes (a view). `transpose(x, -2, -1)` in PyTorch is `transpose(x, n-2, n-1)`.
    ///
    /// dL/dx = dL/dy with the same two axes swapped back.
    pub fn transpose(&mut self, x: Var, axis1: usize, axis2: usize) -> Var {
        let n = self.shape(x).len();
        assert!(
            axis1 < n && axis2 < n,
            "transpose: axes ({axis1}, {axis2}) out of range for shape {:?}",
            self.shape(x)
        );
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(axis1, axis2);
        self.permute(x, &axes)
    }

    /// y = x[.., start..start+len, ..] along `axis` (a view, no copy).
    ///
    /// dL/dx = zeros with dL/dy written into the window start..start+len.
    pub fn narrow(&mut self, x: Var, axis: usize, start: usize, len: usize) -> Var {
        let xv = self.value(x).clone();
        let in_shape = xv.shape().to_vec();
        assert!(
            axis < in_shape.len(),
            "narrow: axis {axis} out of range for shape {in_shape:?}"
        );
        assert!(
            start + len <= in_shape[axis],
            "narrow: window {start}..{} does not fit axis {axis} of shape {in_shape:?}",
            start + len
        );
        let mut y = xv;
        y.slice_axis_inplace(Axis(axis), Slice::from(start..start + len));
        self.record("narrow", y, &[x], move |g| {
            let mut dx = ArrayD::<f32>::zeros(IxDyn(&in_shape));
            // g inside the window, 0 outside: from y = x[start..start+len]
            dx.slice_axis_mut(Axis(axis), Slice::from(start..start + len))
                .assign(&g);
            vec![dx]
        })
    }

    /// y = the inputs joined along `axis`; all other axes must match.
    ///
    /// dL/dx_k = the slice of dL/dy that x_k occupied.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Var {
        assert!(!xs.is_empty(), "concat: no inputs");
        let values: Vec<Tensor> = xs.iter().map(|&x| self.value(x).clone()).collect();
        let shapes: Vec<Vec<usize>> = values.iter().map(|v| v.shape().to_vec()).collect();
        let first = &shapes[0];
        assert!(
            axis < first.len(),
            "concat: axis {axis} out of range for shape {first:?}"
        );
        for s in &shapes {
            let same_rank = s.len() == first.len();
            let same_others = same_rank && s.iter().zip(first).enumerate().all(|(i, (a, b))| i == axis || a == b);
            assert!(same_others, "concat: shapes {shapes:?} differ outside axis {axis}");
        }
        let views: Vec<_> = values.iter().map(|v| v.view()).collect();
        let y = ndarray::concatenate(Axis(axis), &views).expect("shapes checked above");
        self.record("concat", y, xs, move |g| {
            let mut start = 0;
            shapes
                .iter()
                .map(|s| {
                    let len = s[axis];
                    // dL/dx_k = g's slice where x_k sat: from y = [x_1, ..., x_k, ...] along axis
                    let part = g.slice_axis(Axis(axis), Slice::from(start..start + len)).to_owned();
                    start += len;
                    part
                })
                .collect()
        })
    }

    /// Split the last axis into heads: [B, T, H*D] -> [B, H, T, D].
    /// (A reshape to [B, T, H, D], then a permute of axes 1 and 2.)
    pub fn split_heads(&mut self, x: Var, heads: usize) -> Var {
        let s = self.shape(x).to_vec();
        assert!(s.len() == 3, "split_heads: expected [B, T, C], got {s:?}");
        let (b, t, c) = (s[0], s[1], s[2]);
        assert!(
            heads > 0 && c % heads == 0,
            "split_heads: C = {c} is not divisible by heads = {heads}"
        );
        let x = self.reshape(x, &[b, t, heads, c / heads]); // [B, T, H, D]
        self.permute(x, &[0, 2, 1, 3]) // [B, H, T, D]
    }

    /// Merge heads back: [B, H, T, D] -> [B, T, H*D], the inverse of [`Tape::split_heads`].
    pub fn merge_heads(&mut self, x: Var) -> Var {
        let s = self.shape(x).to_vec();
        assert!(s.len() == 4, "merge_heads: expected [B, H, T, D], got {s:?}");
        let (b, h, t, d) = (s[0], s[1], s[2], s[3]);
        let x = self.permute(x, &[0, 2, 1, 3]); // [B, T, H, D]
        self.reshape(x, &[b, t, h * d]) // [B, T, H*D]
    }
}
