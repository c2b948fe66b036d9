//! A product into a given view that hands each finished row of C to a function while the row
//! is still in cache: how attention fuses its softmax (and, in backward, the recomputed P and
//! dS) with the products that make their rows. Its own file because it needs both `matmul`
//! (sgemm, for the products `thin_gemm` does not take) and `thin_gemm` (the epilogue inside the
//! tiles).

use super::matmul::gemm_into;
use super::thin_gemm::{self, Strided};
use ndarray::{ArrayView2, ArrayViewMut2};

/// C = A·B (beta = 0) or C + A·B (beta = 1) into a view with contiguous rows, as
/// [`gemm_into`] with alpha = 1, then `epilogue(i, row)` on every row i of C once it is summed:
/// inside `thin_gemm`'s tiles, while the row's MR-row block is in L1, where that kernel runs the
/// product; after the whole product otherwise (sgemm, an empty product). Every row is passed
/// exactly once, an empty one too. The sums are the same bits as [`gemm_into`]'s.
pub fn gemm_into_then(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    mut c: ArrayViewMut2<'_, f32>,
    epilogue: &thin_gemm::RowEpilogue<'_>,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n) && (n <= 1 || c.strides()[1] == 1),
        "gemm_into_then: A {:?} x B {:?} does not give C {:?} with contiguous rows",
        a.shape(),
        b.shape(),
        c.shape()
    );
    if m * n > 0 && k > 0 {
        let (a_in, b_in, rsc) = (Strided::of(a.view()), Strided::of(b.view()), c.strides()[0]);
        // SAFETY: as in gemm_into: the views cover A, B and C, and C is borrowed mutably.
        if unsafe { thin_gemm::try_gemm_then((m, k, n), a_in, b_in, beta, c.as_mut_ptr(), rsc, Some(epilogue)) } {
            return;
        }
    }
    gemm_into(1.0, a, b, beta, c.view_mut());
    for (i, mut row) in c.rows_mut().into_iter().enumerate() {
        epilogue(i, row.as_slice_mut().unwrap_or(&mut []));
    }
}
