//! The naive triple loop, the oracle the fast products are tested against, and the shape check
//! every product shares.

use super::broadcast::broadcast_shape;
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};

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
pub(super) fn check_shapes(a: &ArrayViewD<'_, f32>, b: &ArrayViewD<'_, f32>) -> (usize, usize, usize) {
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
