//! softmax and log_softmax over one axis, numerically stable: the maximum of each lane is
//! subtracted before exponentiating, which changes nothing mathematically
//! (softmax(x) = softmax(x - c)) but keeps e^x from overflowing.

use crate::kernels::rows_per_task;
use crate::kernels::vector::exp;
use crate::tape::{Tape, Var};
use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

/// out = f applied lane by lane along `axis`: `f(lanes, out_lane)` gets the same lane of each
/// input and writes that lane of the output, which has the inputs' shape.
///
/// The lanes are first made the rows of a row-major buffer: `axis` is moved last and the data
/// copied only if it is not already laid out so (softmax over the last axis of a row-major
/// tensor copies nothing). The rows then run in blocks of [`rows_per_task`] on rayon's threads
/// (one block: on this thread); each lane is computed by one call, so the result does not
/// depend on the threads.
fn map_lanes<const N: usize>(
    inputs: [ArrayViewD<'_, f32>; N],
    axis: usize,
    f: impl Fn([&[f32]; N], &mut [f32]) + Sync + Send,
) -> ArrayD<f32> {
    let ndim = inputs[0].ndim();
    let perm: Vec<usize> = (0..ndim).filter(|&a| a != axis).chain([axis]).collect();
    let views = inputs.map(|x| x.permuted_axes(perm.clone()));
    let rows = views.each_ref().map(|v| v.as_standard_layout());
    let rows = rows.each_ref().map(|r| r.as_slice().expect("standard layout"));
    let d = views[0].shape()[ndim - 1];
    let n = rows_per_task(d);
    let mut out = vec![0.0f32; views[0].len()];
    out.par_chunks_mut(n * d.max(1)).enumerate().for_each(|(t, out)| {
        for (i, out) in out.chunks_mut(d).enumerate() {
            let r = t * n + i;
            f(rows.map(|x| &x[r * d..(r + 1) * d]), out);
        }
    });
    let mut inverse = vec![0; ndim]; // moves the last axis back to `axis`
    perm.iter().enumerate().for_each(|(i, &p)| inverse[p] = i);
    ArrayD::from_shape_vec(views[0].raw_dim(), out)
        .expect("one output per element")
        .permuted_axes(inverse)
}

fn check_axis(op: &str, shape: &[usize], axis: usize) {
    assert!(axis < shape.len(), "{op}: axis {axis} out of range for shape {shape:?}");
}

impl Tape {
    /// y_i = e^(x_i - m) / sum_j e^(x_j - m) along `axis`, m the lane's maximum.
    ///
    /// dL/dx_i = y_i * (dL/dy_i - sum_j dL/dy_j * y_j).
    ///
    /// A lane whose entries are all -inf (fully masked) gives all zeros rather than NaN.
    pub fn softmax(&mut self, x: Var, axis: usize) -> Var {
        let xv = self.value(x).clone();
        check_axis("softmax", xv.shape(), axis);
        let y = map_lanes([xv.view()], axis, |[x], y| {
            let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            if m == f32::NEG_INFINITY {
                // Every entry masked out (e.g. a padded query row): no probability anywhere.
                y.fill(0.0);
                return;
            }
            let mut sum = 0.0;
            for (y, &x) in y.iter_mut().zip(x) {
                *y = exp(x - m);
                sum += *y;
            }
            y.iter_mut().for_each(|v| *v /= sum);
        });
        let y = y.into_shared();
        let y_saved = y.clone();
        self.record("softmax", y, &[x], move |g| {
            let dx = map_lanes([g.view(), y_saved.view()], axis, |[g, y], dx| {
                // sum_j g_j y_j: from the shared denominator sum_j e^(x_j - m)
                let dot: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
                for ((dx, &g), &y) in dx.iter_mut().zip(g).zip(y) {
                    *dx = y * (g - dot); // dy_i/dx_k = y_i (delta_ik - y_k): from y_i = e^(x_i - m) / sum_j e^(x_j - m)
                }
            });
            vec![dx]
        })
    }

    /// y_i = x_i - m - ln sum_j e^(x_j - m) along `axis` (the log of softmax, computed without
    /// ever taking the log of a tiny number).
    ///
    /// dL/dx_i = dL/dy_i - softmax(x)_i * sum_j dL/dy_j, with softmax(x)_i = e^(y_i).
    pub fn log_softmax(&mut self, x: Var, axis: usize) -> Var {
        let xv = self.value(x).clone();
        check_axis("log_softmax", xv.shape(), axis);
        let y = map_lanes([xv.view()], axis, |[x], y| {
            let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let lse = m + x.iter().map(|&v| exp(v - m)).sum::<f32>().ln();
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x - lse;
            }
        });
        let y = y.into_shared();
        let y_saved = y.clone();
        self.record("log_softmax", y, &[x], move |g| {
            let dx = map_lanes([g.view(), y_saved.view()], axis, |[g, y], dx| {
                // sum_j g_j: every y_j depends on x_i through lse
                let g_sum: f32 = g.iter().sum();
                for ((dx, &g), &y) in dx.iter_mut().zip(g).zip(y) {
                    *dx = g - exp(y) * g_sum; // d(x_i)/dx_i = 1, d(lse)/dx_i = softmax_i = e^(y_i): from y = x - lse
                }
            });
            vec![dx]
        })
    }
}
