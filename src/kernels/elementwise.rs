//! Elementwise kernels: apply a scalar function to every element (or pair of elements), in
//! parallel over chunks once the tensor is large enough.
//!
//! The common cases run over plain slices, which the compiler vectorises: a row-major input,
//! two row-major inputs of one shape, and a row-major input with a row-major operand that
//! broadcasts along the leading axes (a bias `[D]` added to activations `[B, T, D]`). Anything else
//! (transposed views, broadcasting in the middle) goes through ndarray's general `Zip`.

use super::broadcast::broadcast_shape;
use super::PAR_MIN_ELEMENTS;
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task for the slice paths.
const CHUNK: usize = 1 << 14;

/// y_i = f(x_i), for any layout of `x`.
pub fn map(x: ArrayViewD<'_, f32>, f: impl Fn(f32) -> f32 + Sync + Send) -> ArrayD<f32> {
    if let Some(xs) = x.as_slice() {
        // A plain loop over slices: with f inlined, the compiler vectorises it.
        let body = |(ys, xs): (&mut [MaybeUninit<f32>], &[f32])| {
            for (y, &x) in ys.iter_mut().zip(xs) {
                y.write(f(x));
            }
        };
        let mut y: Vec<f32> = Vec::with_capacity(xs.len());
        if xs.len() >= PAR_MIN_ELEMENTS {
            y.spare_capacity_mut()[..xs.len()]
                .par_chunks_mut(CHUNK)
                .zip(xs.par_chunks(CHUNK))
                .for_each(body);
        } else {
            body((&mut y.spare_capacity_mut()[..xs.len()], xs));
        }
        // SAFETY: the loops above wrote all xs.len() elements.
        unsafe { y.set_len(xs.len()) };
        return ArrayD::from_shape_vec(x.raw_dim(), y).expect("one output per input");
    }
    let z = Zip::from(&x);
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_map_collect(|&v| f(v))
    } else {
        z.map_collect(|&v| f(v))
    }
}

/// z_i = f(x_i, y_i), with `x` and `y` broadcast to a common shape (`op` names the op in the
/// error if they do not broadcast).
pub fn zip_map(
    op: &str,
    x: ArrayViewD<'_, f32>,
    y: ArrayViewD<'_, f32>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> ArrayD<f32> {
    let shape = broadcast_shape(op, x.shape(), y.shape());
    if let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) {
        // Same shape, or y repeating along x's leading axes (y's shape is a suffix of x's).
        let suffix = x.shape() == shape.as_slice() && x.shape().ends_with(y.shape());
        if suffix && !ys.is_empty() {
            // Each row of x pairs with all of y; with equal shapes there is one "row" (n = all),
            // so the parallel split is by CHUNK elements, in whole rows when y is smaller.
            let n = if xs.len() == ys.len() {
                CHUNK.min(ys.len())
            } else {
                ys.len()
            };
            let row = |(out, xs): (&mut [f32], &[f32]), ys: &[f32]| {
                for (o, (&a, &b)) in out.iter_mut().zip(xs.iter().zip(ys)) {
                    *o = f(a, b);
                }
            };
            let mut z = vec![0.0f32; xs.len()];
            let task = n * CHUNK.div_ceil(n);
            let same = xs.len() == ys.len();
            // With equal shapes, y's slice moves along with x's; otherwise y repeats.
            let run = |t: usize, out: &mut [f32], xs: &[f32]| {
                for (r, (o, x)) in out.chunks_mut(n).zip(xs.chunks(n)).enumerate() {
                    let (start, len) = (if same { t * task + r * n } else { 0 }, o.len());
                    row((o, x), &ys[start..start + len]);
                }
            };
            if xs.len() >= PAR_MIN_ELEMENTS {
                z.par_chunks_mut(task)
                    .zip(xs.par_chunks(task))
                    .enumerate()
                    .for_each(|(t, (o, x))| run(t, o, x));
            } else {
                z.chunks_mut(task)
                    .zip(xs.chunks(task))
                    .enumerate()
                    .for_each(|(t, (o, x))| run(t, o, x));
            }
            return ArrayD::from_shape_vec(IxDyn(&shape), z).expect("one output per element");
        }
    }
    let x = x.broadcast(IxDyn(&shape)).expect("shape checked above");
    let y = y.broadcast(IxDyn(&shape)).expect("shape checked above");
    let z = Zip::from(&x).and(&y);
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_map_collect(|&a, &b| f(a, b))
    } else {
        z.map_collect(|&a, &b| f(a, b))
    }
}
