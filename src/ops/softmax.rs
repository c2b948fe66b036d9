//! softmax and log_softmax over one axis, numerically stable: the maximum of each lane is
//! subtracted before exponentiating, which changes nothing mathematically
//! (softmax(x) = softmax(x - c)) but keeps e^x from overflowing.

use crate::kernels::vector::exp;
use crate::kernels::PAR_MIN_ELEMENTS;
use crate::tape::{Tape, Var};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMut1, Axis, Zip};

/// Run `f(input_lane, output_lane)` over every lane along `axis`, in parallel when large.
fn for_each_lane(
    x: ArrayViewD<'_, f32>,
    out: &mut ArrayD<f32>,
    axis: usize,
    f: impl Fn(ndarray::ArrayView1<'_, f32>, ArrayViewMut1<'_, f32>) + Sync + Send,
) {
    let z = Zip::from(x.lanes(Axis(axis))).and(out.lanes_mut(Axis(axis)));
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_for_each(f);
    } else {
        z.for_each(f);
    }
}

/// Same, with two inputs per lane.
fn for_each_lane2(
    x: ArrayViewD<'_, f32>,
    y: ArrayViewD<'_, f32>,
    out: &mut ArrayD<f32>,
    axis: usize,
    f: impl Fn(ndarray::ArrayView1<'_, f32>, ndarray::ArrayView1<'_, f32>, ArrayViewMut1<'_, f32>) + Sync + Send,
) {
    let z = Zip::from(x.lanes(Axis(axis)))
        .and(y.lanes(Axis(axis)))
        .and(out.lanes_mut(Axis(axis)));
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_for_each(f);
    } else {
        z.for_each(f);
    }
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
        let mut y = ArrayD::<f32>::zeros(xv.raw_dim());
        for_each_lane(xv.view(), &mut y, axis, |x, mut y| {
            let m = x.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
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
            y.mapv_inplace(|v| v / sum);
        });
        let y = y.into_shared();
        let y_saved = y.clone();
        self.record("softmax", y, &[x], move |g| {
            let mut dx = ArrayD::<f32>::zeros(g.raw_dim());
            for_each_lane2(g.view(), y_saved.view(), &mut dx, axis, |g, y, mut dx| {
                let dot: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
                for ((dx, &g), &y) in dx.iter_mut().zip(g).zip(y) {
                    *dx = y * (g - dot);
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
        let mut y = ArrayD::<f32>::zeros(xv.raw_dim());
        for_each_lane(xv.view(), &mut y, axis, |x, mut y| {
            let m = x.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let lse = m + x.iter().map(|&v| exp(v - m)).sum::<f32>().ln();
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x - lse;
            }
        });
        let y = y.into_shared();
        let y_saved = y.clone();
        self.record("log_softmax", y, &[x], move |g| {
            let mut dx = ArrayD::<f32>::zeros(g.raw_dim());
            for_each_lane2(g.view(), y_saved.view(), &mut dx, axis, |g, y, mut dx| {
                let g_sum: f32 = g.sum();
                for ((dx, &g), &y) in dx.iter_mut().zip(g).zip(y) {
                    *dx = g - exp(y) * g_sum;
                }
            });
            vec![dx]
        })
    }
}
