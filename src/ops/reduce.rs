//! Reductions over chosen axes: sum, mean, max. With `keepdim` the reduced axes stay as size 1;
//! without it they are removed.
//!
//! Backward of every reduction first puts the gradient back into keepdim shape, then spreads it
//! over the reduced axes: evenly for sum (each input contributed with weight 1), divided by the
//! count for mean, and only to the arg-max for max.

use crate::tape::{Tape, Var};
use crate::tensor::Grad;
use ndarray::{ArrayD, Axis, IxDyn};

/// Check the axes (in range, no repeats) and return them sorted.
fn check_axes(op: &str, shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert!(sorted.len() == axes.len(), "{op}: repeated axis in {axes:?}");
    if let Some(&bad) = sorted.iter().find(|&&a| a >= shape.len()) {
        panic!("{op}: axis {bad} is out of range for shape {shape:?}");
    }
    sorted
}

/// The shape after reducing `axes` with keepdim (reduced axes become 1).
fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// The shape after reducing `axes`, with or without keepdim.
fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    if keepdim {
        keepdim_shape(shape, axes)
    } else {
        shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect()
    }
}

/// Spread a reduced gradient back over the input's shape: reshape to keepdim shape, broadcast.
fn expand(g: Grad, in_shape: &[usize], axes: &[usize]) -> Grad {
    let g = g.as_standard_layout().into_owned();
    let g = g
        .into_shape_with_order(keepdim_shape(in_shape, axes))
        .expect("same element count");
    g.broadcast(IxDyn(in_shape))
        .expect("keepdim shape broadcasts")
        .to_owned()
}

impl Tape {
    /// y = sum of x over `axes`.
    ///
    /// `dL/dx[i] = dL/dy[i with the reduced axes dropped]`: every summed element gets the gradient
    /// of the sum it went into.
    pub fn sum(&mut self, x: Var, axes: &[usize], keepdim: bool) -> Var {
        let xv = self.value(x).clone();
        let axes = check_axes("sum", xv.shape(), axes);
        // Sum the highest axis first so the remaining axis numbers stay valid.
        let mut y: Option<ArrayD<f32>> = None;
        for &ax in axes.iter().rev() {
            y = Some(match y {
                None => xv.sum_axis(Axis(ax)),
                Some(t) => t.sum_axis(Axis(ax)),
            });
        }
        let y = y.unwrap_or_else(|| xv.to_owned());
        // sum_axis keeps the input's memory order; reshape needs row-major.
        let y = if y.is_standard_layout() {
            y
        } else {
            y.as_standard_layout().into_owned()
        };
        let y = y
            .into_shape_with_order(reduced_shape(xv.shape(), &axes, keepdim))
            .expect("same element count");
        let in_shape = xv.shape().to_vec();
        self.record("sum", y, &[x], move |g| {
            vec![expand(g, &in_shape, &axes)] // dy/dx_i = 1 for every summed x_i: from y = sum_i x_i
        })
    }

    /// The sum of every element, as a one-element tensor of shape `[]`.
    pub fn sum_all(&mut self, x: Var) -> Var {
        let axes: Vec<usize> = (0..self.shape(x).len()).collect();
        self.sum(x, &axes, false)
    }

    /// y = mean of x over `axes` = sum / n, n the number of elements reduced.
    ///
    /// `dL/dx[i] = dL/dy / n`.
    pub fn mean(&mut self, x: Var, axes: &[usize], keepdim: bool) -> Var {
        let shape = self.shape(x).to_vec();
        let n: usize = check_axes("mean", &shape, axes).iter().map(|&a| shape[a]).product();
        let s = self.sum(x, axes, keepdim);
        self.mul_scalar(s, 1.0 / n as f32)
    }

    /// y = max of x over `axes`.
    ///
    /// dL/dx = dL/dy at the arg-max of each reduced group (the first one, on ties), 0 elsewhere.
    pub fn max(&mut self, x: Var, axes: &[usize], keepdim: bool) -> Var {
        let xv = self.value(x).clone();
        let axes = check_axes("max", xv.shape(), axes);
        assert!(
            axes.iter().all(|&a| xv.shape()[a] > 0),
            "max: cannot reduce an empty axis of shape {:?}",
            xv.shape()
        );
        // Move the kept axes first and the reduced axes last, so each group is one row of a
        // [groups, group_len] matrix.
        let kept: Vec<usize> = (0..xv.ndim()).filter(|a| !axes.contains(a)).collect();
        let order: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
        let group_len: usize = axes.iter().map(|&a| xv.shape()[a]).product();
        let groups = xv.len() / group_len.max(1);
        let rows = xv.view().permuted_axes(order.clone());
        let rows = rows.as_standard_layout();
        let rows = rows.to_shape((groups, group_len)).expect("same element count");
        let mut argmax = Vec::with_capacity(groups);
        let mut y = Vec::with_capacity(groups);
        for row in rows.outer_iter() {
            let (mut best, mut best_j) = (row[0], 0);
            for (j, &v) in row.iter().enumerate() {
                if v > best {
                    (best, best_j) = (v, j);
                }
            }
            argmax.push(best_j);
            y.push(best);
        }
        let y = ArrayD::from_shape_vec(reduced_shape(xv.shape(), &axes, keepdim), y).expect("one value per group");
        let in_shape = xv.shape().to_vec();
        let permuted_shape: Vec<usize> = order.iter().map(|&a| in_shape[a]).collect();
        self.record("max", y, &[x], move |g| {
            let g: Vec<f32> = g.iter().copied().collect();
            let mut dx = ArrayD::<f32>::zeros(IxDyn(&[groups, group_len]));
            for (r, (&j, &gr)) in argmax.iter().zip(&g).enumerate() {
                dx[[r, j]] = gr; // dy/dx_j = 1 at the arg-max, 0 elsewhere: from y = max_j x_j
            }
            // Undo the reshape, then the permutation.
            let dx = dx.into_shape_with_order(permuted_shape).expect("same element count");
            let mut inverse = vec![0; order.len()];
            for (i, &a) in order.iter().enumerate() {
                inverse[a] = i;
            }
            vec![dx.permuted_axes(inverse)]
        })
    }
}
