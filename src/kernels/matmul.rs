//! Matrix multiplication kernels: the fast one (matrixmultiply's SIMD `sgemm`) and the naive
//! triple loop kept as its test oracle.
//!
//! Shapes: A is `[..., M, K]`, B is `[..., K, N]`, C = A·B is `[..., M, N]`, where the leading
//! (batch) axes broadcast like elementwise ops. `sgemm` takes a row stride and a column stride
//! for each operand, so a transposed view (`b.t()`) is read in place, never copied.
//!
//! Threads: one big product is split by matrixmultiply's own threads (`MATMUL_NUM_THREADS`).
//! A batch of small products (those sgemm would run on one thread anyway) is instead spread
//! across the batch with rayon; for 128 products of 128x32 by 32x128 that was about twice as
//! fast on this 2-core machine (see NOTES.md).

use super::broadcast::broadcast_shape;
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use rayon::prelude::*;

/// matrixmultiply gives a product more than one thread only when m*k + k*n >= 2 * 2^14
/// (its `LoopThreadConfig`); below that we parallelise across the batch instead.
const SGEMM_THREADING_THRESHOLD: usize = 2 << 14;

/// Swap the last two axes of a view: the transpose of each matrix in a stack, read through
/// strides (nothing is copied).
pub fn t(x: ArrayViewD<'_, f32>) -> ArrayViewD<'_, f32> {
    let n = x.ndim();
    assert!(n >= 2, "transpose: need at least 2 axes, got {:?}", x.shape());
    let mut x = x;
    x.swap_axes(n - 2, n - 1);
    x
}

/// C = A·B with broadcast batch axes, through `matrixmultiply::sgemm`. Panics with both shapes
/// if they do not fit.
pub fn matmul(a: ArrayViewD<'_, f32>, b: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let (m, k, n) = check_shapes(&a, &b);
    let (ra, rb) = (a.ndim(), b.ndim());
    // A stack of matrices times one matrix is one tall matrix times that matrix:
    // [..., M, K] -> [(...)*M, K]. `to_shape` copies only if the leading axes cannot merge.
    if rb == 2 && ra > 2 {
        let rows: usize = a.shape()[..ra - 1].iter().product();
        let a2 = a.to_shape((rows, k)).expect("element count is unchanged");
        let c2 = matmul(a2.view().into_dyn(), b);
        let mut out_shape = a.shape()[..ra - 1].to_vec();
        out_shape.push(n);
        return c2.into_shape_with_order(out_shape).expect("element count is unchanged");
    }
    let batch = broadcast_shape("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    if nb * m * n == 0 || k == 0 {
        return ArrayD::zeros(out_shape);
    }
    // Broadcast both operands to the full batch (repeated axes get stride 0, nothing is copied).
    let a = a.broadcast(IxDyn(&[&batch[..], &[m, k]].concat())).expect("checked");
    let b = b.broadcast(IxDyn(&[&batch[..], &[k, n]].concat())).expect("checked");
    let nd = batch.len();
    let (rsa, csa) = (a.strides()[nd], a.strides()[nd + 1]);
    let (rsb, csb) = (b.strides()[nd], b.strides()[nd + 1]);
    let a_offsets = batch_offsets(&batch, &a.strides()[..nd]);
    let b_offsets = batch_offsets(&batch, &b.strides()[..nd]);
    let (pa, pb) = (SendPtr(a.as_ptr()), SendPtr(b.as_ptr()));

    let mut c = ArrayD::<f32>::uninit(out_shape);
    let c_slice = c.as_slice_mut().expect("a new array is contiguous");
    // One product: C_i (M x N, row-major) = A_i · B_i.
    let product = |i: usize, c_i: &mut [std::mem::MaybeUninit<f32>]| {
        // SAFETY: the offsets come from the views' own strides and stay inside them; c_i holds
        // exactly m*n elements; sgemm with beta = 0 writes every element of C and reads none.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                pa.get().offset(a_offsets[i]),
                rsa,
                csa,
                pb.get().offset(b_offsets[i]),
                rsb,
                csb,
                0.0,
                c_i.as_mut_ptr() as *mut f32,
                n as isize,
                1,
            );
        }
    };
    let small = m * k + k * n < SGEMM_THREADING_THRESHOLD;
    if nb > 1 && small {
        c_slice
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, c_i)| product(i, c_i));
    } else {
        c_slice
            .chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, c_i)| product(i, c_i));
    }
    // SAFETY: every chunk was fully written by sgemm above.
    unsafe { c.assume_init() }
}

/// The naive triple loop, C[.., i, j] = sum_p A[.., i, p] * B[.., p, j], accumulated in f64.
/// Slow on purpose: it is the reference the fast kernel is tested against, never used on the
/// hot path.
pub fn matmul_naive(a: ArrayViewD<'_, f32>, b: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let (m, k, n) = check_shapes(&a, &b);
    let (ra, rb) = (a.ndim(), b.ndim());
    let batch = broadcast_shape("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let a = a.broadcast(IxDyn(&[&batch[..], &[m, k]].concat())).expect("checked");
    let b = b.broadcast(IxDyn(&[&batch[..], &[k, n]].concat())).expect("checked");
    let mut c = ArrayD::<f32>::zeros([&batch[..], &[m, n]].concat());
    for idx in ndarray::indices(batch.clone()) {
        let idx = idx.slice().to_vec();
        let at = |i: usize, j: usize| IxDyn(&[&idx[..], &[i, j]].concat());
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0.0f64;
                for p in 0..k {
                    sum += a[at(i, p)] as f64 * b[at(p, j)] as f64;
                }
                c[at(i, j)] = sum as f32;
            }
        }
    }
    c
}

/// Check ranks and the inner dimension; return (M, K, N).
fn check_shapes(a: &ArrayViewD<'_, f32>, b: &ArrayViewD<'_, f32>) -> (usize, usize, usize) {
    let (ra, rb) = (a.ndim(), b.ndim());
    assert!(
        ra >= 2 && rb >= 2,
        "matmul: both operands need at least 2 axes, got {:?} x {:?}",
        a.shape(),
        b.shape()
    );
    let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    assert!(
        k == k2,
        "matmul: inner dimensions differ: {:?} x {:?}",
        a.shape(),
        b.shape()
    );
    (m, k, n)
}

/// For each flat batch index (row-major over `batch`), the element offset sum_d idx_d * stride_d.
fn batch_offsets(batch: &[usize], strides: &[isize]) -> Vec<isize> {
    let mut offsets = vec![0isize];
    for (&size, &stride) in batch.iter().zip(strides) {
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..size).map(move |i| o + i as isize * stride))
            .collect();
    }
    offsets
}

/// A raw pointer that may be shared across rayon's threads (they only read through it).
#[derive(Clone, Copy)]
struct SendPtr(*const f32);
// SAFETY: the pointee is an immutable view that outlives the parallel loop.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *const f32 {
        self.0
    }
}
