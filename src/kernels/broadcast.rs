//! Numpy-style broadcasting, and its adjoint: summing a gradient back down to an input's shape.
//!
//! Two shapes broadcast when, aligned at their last axes, each pair of sizes is equal or one of
//! them is 1; missing leading axes count as 1. In forward a size-1 (or missing) axis is repeated;
//! so in backward the gradient is summed over every axis that was repeated.

use super::rows_per_task;
use crate::tensor::Grad;
use ndarray::{Axis, IxDyn};
use rayon::prelude::*;

/// The shape two operands broadcast to, or a panic naming the op and both shapes.
///
/// ```
/// use microlm::kernels::broadcast::broadcast_shape;
/// assert_eq!(broadcast_shape("add", &[4, 1, 3], &[2, 1]), vec![4, 2, 3]);
/// ```
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        // Align from the right: axis i of the output is axis i - (n - len) of each operand.
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => panic!("{op}: cannot broadcast shapes {a:?} and {b:?}"),
        };
    }
    out
}

/// Sum `grad` (of the broadcast output's shape) down to `shape`, the shape of the operand that
/// was broadcast: sum away the extra leading axes, then sum (keeping the axis) every axis where
/// the operand had size 1 and the output did not.
///
/// ```
/// use microlm::kernels::broadcast::sum_to_shape;
/// use ndarray::{ArrayD, IxDyn};
/// let g = ArrayD::<f32>::ones(IxDyn(&[4, 2, 3]));
/// let s = sum_to_shape(g, &[2, 1]);
/// assert_eq!(s.shape(), &[2, 1]);
/// assert_eq!(s[[0, 0]], 12.0); // 4 * 3 copies were summed
/// ```
pub fn sum_to_shape(grad: Grad, shape: &[usize]) -> Grad {
    if grad.shape() == shape {
        return grad;
    }
    if let Some(summed) = sum_leading_rows(&grad, shape) {
        return summed;
    }
    assert!(
        grad.ndim() >= shape.len(),
        "sum_to_shape: gradient {:?} has fewer axes than {shape:?}",
        grad.shape()
    );
    let mut g = grad;
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (ax, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[ax] != 1 {
            g = g.sum_axis(Axis(ax)).insert_axis(Axis(ax));
        }
    }
    assert_eq!(g.shape(), shape, "sum_to_shape: shapes are not broadcast-compatible");
    g
}

/// The common case of [`sum_to_shape`], done in parallel: a row-major gradient [R, C] (any
/// leading axes folded into R) summed down to [C] (a bias), i.e. when `shape` without its leading
/// 1s is the gradient's trailing shape. Returns None for any other case.
///
/// Each task sums a fixed block of [`rows_per_task`] rows into its own partial [C]; the partials
/// are then added in block order. The blocks depend on C only, so the result is bit-identical
/// for any number of threads (a `reduce` would add the partials in whatever order the threads
/// finished).
fn sum_leading_rows(grad: &Grad, shape: &[usize]) -> Option<Grad> {
    let trailing: Vec<usize> = shape.iter().copied().skip_while(|&d| d == 1).collect();
    let c: usize = trailing.iter().product();
    let g = grad.as_slice()?;
    if c == 0 || !grad.shape().ends_with(&trailing) {
        return None;
    }
    let partials: Vec<Vec<f32>> = g
        .par_chunks(rows_per_task(c) * c)
        .map(|block| {
            let mut partial = vec![0.0f32; c];
            for row in block.chunks_exact(c) {
                partial.iter_mut().zip(row).for_each(|(p, &x)| *p += x);
            }
            partial
        })
        .collect();
    let mut total = vec![0.0f32; c];
    for partial in &partials {
        total.iter_mut().zip(partial).for_each(|(t, &p)| *t += p);
    }
    Some(Grad::from_shape_vec(IxDyn(shape), total).expect("C elements"))
}
