//! Matrix multiplication kernels: the fast ones (`thin_gemm`'s for a short K, matrixmultiply's
//! SIMD `sgemm` for the rest) and the naive triple loop kept as their test oracle.
//!
//! Shapes: A is `[..., M, K]`, B is `[..., K, N]`, C = A·B is `[..., M, N]`, where the leading
//! (batch) axes broadcast like elementwise ops. `sgemm` takes a row stride and a column stride
//! for each operand, so a transposed view (`b.t()`) is read in place, never copied.
//!
//! Threads: every sgemm runs on one thread, and rayon shares the work. A batch of small products
//! is spread across the batch (for 128 products of 128x32 by 32x128 that was about twice as fast
//! on this 2-core machine as matrixmultiply's threads; see NOTES.md); one large product is cut
//! into one part per thread, by rows or by columns, each part one sgemm.

use super::broadcast::broadcast_shape;
use super::matmul_naive::check_shapes;
pub use super::matmul_naive::matmul_naive;
use super::thin_gemm::{self, Strided};
use super::vector::dot;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, IxDyn};
use rayon::prelude::*;

/// matrixmultiply gives a product more than one thread only when m*k + k*n >= 2 * 2^14
/// (its `LoopThreadConfig`); below that we parallelise across the batch instead.
const SGEMM_THREADING_THRESHOLD: usize = 2 << 14;

/// A large product is cut for the threads into parts of a multiple of this many rows (or
/// columns), so that every part but the last fills whole micro-kernel tiles.
const SPLIT_ALIGN: usize = 16;

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
    let mut c = ArrayD::<f32>::uninit(out_shape);
    let c_offsets: Vec<isize> = (0..nb).map(|i| (i * m * n) as isize).collect();
    let c_ptr = SendPtrMut(c.as_mut_ptr() as *mut f32);
    // SAFETY: C is a fresh row-major [batch, M, N] buffer; product i owns rows i*M..(i+1)*M.
    unsafe { run_products(&a, &b, &batch, (m, k, n), c_ptr, &c_offsets, (n as isize, 1), None) };
    // SAFETY: every product wrote all of its M x N block (sgemm with beta = 0 writes all of C).
    unsafe { c.assume_init() }
}

/// What to do with each finished stretch of a row of C while it is in cache: called with the
/// row r, the first column c0 and the values C[r, c0 ..], once they are summed. Every element
/// of C is passed exactly once.
pub type Epilogue<'a> = dyn Fn(usize, usize, &mut [f32]) + Sync + 'a;

/// C = A·B for one matrix each, then `epilogue` on every row of C while it is still in cache
/// (bias, activation, residual add: the "fused" layers of `ops`). The product's sums are the
/// same bits as [`matmul`]'s: the epilogue only sees them after they are complete.
pub fn matmul_then(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, epilogue: &Epilogue<'_>) -> Array2<f32> {
    let (a, b) = (a.into_dyn(), b.into_dyn());
    let (m, k, n) = check_shapes(&a, &b);
    if m * n == 0 || k == 0 {
        let mut c = Array2::zeros((m, n));
        c.rows_mut()
            .into_iter()
            .enumerate()
            .for_each(|(r, mut row)| epilogue(r, 0, row.as_slice_mut().expect("a new array is contiguous")));
        return c;
    }
    let mut c = Array2::<f32>::uninit((m, n));
    let c_ptr = SendPtrMut(c.as_mut_ptr() as *mut f32);
    // SAFETY: C is a fresh row-major M x N buffer and the one product writes all of it.
    unsafe { run_products(&a, &b, &[], (m, k, n), c_ptr, &[0], (n as isize, 1), Some(epilogue)) };
    // SAFETY: the product wrote every element (sgemm and thin_gemm with beta = 0 write all of C).
    unsafe { c.assume_init() }
}

/// Attention's products: A [B, H, M, K] times B [B, H, K, N], with C written in memory as
/// [B, M, H, N] and returned as its [B, H, M, N] view (axes 1 and 2 swapped through strides).
/// Heads stored this way merge back into [B, M, H*N] without a copy.
pub fn matmul_heads_interleaved(a: ArrayViewD<'_, f32>, b: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let (m, k, n) = check_shapes(&a, &b);
    assert!(
        a.ndim() == 4 && b.ndim() == 4 && a.shape()[..2] == b.shape()[..2],
        "matmul_heads_interleaved: expected [B, H, M, K] x [B, H, K, N], got {:?} x {:?}",
        a.shape(),
        b.shape()
    );
    let (bs, h) = (a.shape()[0], a.shape()[1]);
    if bs * h * m * n == 0 || k == 0 {
        return ArrayD::<f32>::zeros(IxDyn(&[bs, m, h, n])).permuted_axes(vec![0, 2, 1, 3]);
    }
    let mut c = ArrayD::<f32>::uninit(IxDyn(&[bs, m, h, n]));
    // Product (b, h) starts at C[b, 0, h, 0]; its rows are H*N apart.
    let c_offsets: Vec<isize> = (0..bs * h)
        .map(|i| ((i / h) * m * h * n + (i % h) * n) as isize)
        .collect();
    let c_ptr = SendPtrMut(c.as_mut_ptr() as *mut f32);
    // SAFETY: product (b, h) writes C[b, :, h, :], which no other product touches.
    unsafe {
        run_products(
            &a,
            &b,
            &[bs, h],
            (m, k, n),
            c_ptr,
            &c_offsets,
            ((h * n) as isize, 1),
            None,
        )
    };
    // SAFETY: every product wrote all of its block.
    let c = unsafe { c.assume_init() };
    c.permuted_axes(vec![0, 2, 1, 3])
}

/// C = alpha A·B + beta C for one matrix each, on this thread: one `sgemm` reading A, B and C
/// through their strides (a transposed view or a slice of a larger array is not copied). With
/// beta = 0, C's old values are not read. The row-block attention kernel's products use it.
pub fn gemm_into(alpha: f32, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, beta: f32, mut c: ArrayViewMut2<'_, f32>) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n),
        "gemm_into: A {:?} x B {:?} does not give C {:?}",
        a.shape(),
        b.shape(),
        c.shape()
    );
    if m * n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: C = beta C.
        c.mapv_inplace(|x| if beta == 0.0 { 0.0 } else { beta * x });
        return;
    }
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    if alpha == 1.0 && sc[1] == 1 {
        let (a_in, b_in) = (Strided::of(a.view()), Strided::of(b.view()));
        // SAFETY: as for sgemm below; C's columns are contiguous.
        if unsafe { thin_gemm::try_gemm((m, k, n), a_in, b_in, beta, c.as_mut_ptr(), sc[0]) } {
            return;
        }
    }
    // SAFETY: the pointers and strides come from the three views, which cover A (m x k),
    // B (k x n) and C (m x n); C is borrowed mutably, so nothing else reads or writes it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            sa[0],
            sa[1],
            b.as_ptr(),
            sb[0],
            sb[1],
            beta,
            c.as_mut_ptr(),
            sc[0],
            sc[1],
        );
    }
}

/// Run the products C_i = A_i B_i for every batch index i, with A and B broadcast to `batch`,
/// C_i at `c + c_offsets[i]` with row and column strides `c_strides`. A batch of small products
/// is spread over rayon; otherwise the products run in turn, each cut into one part per rayon
/// thread (by rows, or by columns when it has more), each part one sgemm. An `epilogue` (one
/// product, contiguous columns) runs on each part's rows as they are finished.
///
/// # Safety
/// `c` must point to writable memory in which the blocks named by `c_offsets` and `c_strides`
/// are in bounds and do not overlap.
#[allow(clippy::too_many_arguments)] // the shapes, both operands, where C goes, the epilogue
unsafe fn run_products(
    a: &ArrayViewD<'_, f32>,
    b: &ArrayViewD<'_, f32>,
    batch: &[usize],
    (m, k, n): (usize, usize, usize),
    c: SendPtrMut,
    c_offsets: &[isize],
    (rsc, csc): (isize, isize),
    epilogue: Option<&Epilogue<'_>>,
) {
    assert!(
        epilogue.is_none() || (c_offsets.len() == 1 && csc == 1),
        "an epilogue needs one product"
    );
    // Broadcast both operands to the full batch (repeated axes get stride 0, nothing is copied).
    let a = a.broadcast(IxDyn(&[batch, &[m, k]].concat())).expect("checked");
    let b = b.broadcast(IxDyn(&[batch, &[k, n]].concat())).expect("checked");
    let nd = batch.len();
    let (rsa, csa) = (a.strides()[nd], a.strides()[nd + 1]);
    let (rsb, csb) = (b.strides()[nd], b.strides()[nd + 1]);
    let a_offsets = batch_offsets(batch, &a.strides()[..nd]);
    let b_offsets = batch_offsets(batch, &b.strides()[..nd]);
    let (pa, pb) = (SendPtr(a.as_ptr()), SendPtr(b.as_ptr()));
    // Rows r0..r1 and columns c0..c1 of C_i = A_i · B_i: one product (thin_gemm's, or sgemm
    // when it declines) on the matching rows of A_i and columns of B_i.
    let block = |i: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        let (r, c0i) = (r0 as isize, c0 as isize);
        if csc == 1 {
            let a_blk = Strided {
                ptr: pa.get().offset(a_offsets[i] + r * rsa),
                rs: rsa,
                cs: csa,
            };
            let b_blk = Strided {
                ptr: pb.get().offset(b_offsets[i] + c0i * csb),
                rs: rsb,
                cs: csb,
            };
            let c_blk = c.get().offset(c_offsets[i] + r * rsc + c0i);
            let then = epilogue.map(|f| move |i: usize, row: &mut [f32]| f(r0 + i, c0, row));
            let then = then.as_ref().map(|f| f as &thin_gemm::RowEpilogue<'_>);
            // SAFETY: as for sgemm below; C's columns are contiguous.
            if unsafe { thin_gemm::try_gemm_then((r1 - r0, k, c1 - c0), a_blk, b_blk, 0.0, c_blk, rsc, then) } {
                return;
            }
        }
        // SAFETY: the A and B offsets come from the views' own strides and stay inside them;
        // the caller guarantees C's; sgemm with beta = 0 writes every element of the block.
        unsafe {
            matrixmultiply::sgemm(
                r1 - r0,
                k,
                c1 - c0,
                1.0,
                pa.get().offset(a_offsets[i] + r * rsa),
                rsa,
                csa,
                pb.get().offset(b_offsets[i] + c0i * csb),
                rsb,
                csb,
                0.0,
                c.get().offset(c_offsets[i] + r * rsc + c0i * csc),
                rsc,
                csc,
            );
        }
        if let Some(f) = epilogue {
            for row in r0..r1 {
                // SAFETY: this block's rows, just written by sgemm; columns contiguous.
                let c_row =
                    unsafe { std::slice::from_raw_parts_mut(c.get().offset(row as isize * rsc + c0i), c1 - c0) };
                f(row, c0, c_row);
            }
        }
    };
    // One product: C_i = A_i · B_i.
    let product = |i: usize| {
        if m == 1 && csa == 1 && (rsb == 1 || csb == 1) {
            // SAFETY: as for sgemm below: offsets and strides come from the views.
            unsafe {
                row_times_matrix(
                    pa.get().offset(a_offsets[i]),
                    pb.get().offset(b_offsets[i]),
                    (k, n),
                    (rsb, csb),
                    c.get().offset(c_offsets[i]),
                    csc,
                )
            };
            if let Some(f) = epilogue {
                // SAFETY: the one row just written; an epilogue means contiguous columns.
                f(0, 0, unsafe {
                    std::slice::from_raw_parts_mut(c.get().offset(c_offsets[i]), n)
                });
            }
            return;
        }
        block(i, (0, m), (0, n));
    };
    let nb = c_offsets.len();
    let small = m * k + k * n < SGEMM_THREADING_THRESHOLD;
    let parts = rayon::current_num_threads();
    if nb > 1 && small {
        (0..nb).into_par_iter().for_each(product);
    } else if parts > 1 && !small && m.max(n) >= 2 * SPLIT_ALIGN {
        // One large product at a time, its rows (or, if it has more columns, its columns) cut
        // into one part per thread; each part is one single-threaded sgemm. Every element of C
        // is still one sgemm's sum over all of K, in the same order: the same bits.
        for i in 0..nb {
            let along = if m >= n { m } else { n };
            let step = along.div_ceil(parts).next_multiple_of(SPLIT_ALIGN);
            (0..along.div_ceil(step)).into_par_iter().for_each(|p| {
                let cut = (p * step, ((p + 1) * step).min(along));
                if m >= n {
                    block(i, cut, (0, n));
                } else {
                    block(i, (0, m), cut);
                }
            });
        }
    } else {
        (0..nb).for_each(product);
    }
}

/// One row times a matrix, c = a B (M = 1, as in generating one token at a time), without
/// sgemm's packing, which for a single row copies all of B to use each element once:
/// - B's columns contiguous (B = W^T of a row-major W, as in a linear layer): c_j = dot(a, B[:, j]);
/// - B's rows contiguous: c = sum_p a_p B[p, :], one row at a time.
///
/// # Safety
/// `a` must hold k contiguous elements, `b` a k x n matrix with the given strides (one of them
/// 1), and `c` n writable elements `csc` apart.
unsafe fn row_times_matrix(
    a: *const f32,
    b: *const f32,
    (k, n): (usize, usize),
    (rsb, csb): (isize, isize),
    c: *mut f32,
    csc: isize,
) {
    let a = std::slice::from_raw_parts(a, k);
    if rsb == 1 {
        for j in 0..n {
            let column = std::slice::from_raw_parts(b.offset(j as isize * csb), k);
            *c.offset(j as isize * csc) = dot(a, column);
        }
    } else {
        let mut row_sum = vec![0.0f32; n];
        for (p, &a_p) in a.iter().enumerate() {
            let row = std::slice::from_raw_parts(b.offset(p as isize * rsb), n);
            for (acc, &b_pj) in row_sum.iter_mut().zip(row) {
                *acc += a_p * b_pj;
            }
        }
        for (j, v) in row_sum.into_iter().enumerate() {
            *c.offset(j as isize * csc) = v;
        }
    }
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

/// A raw pointer to C, shared across rayon's threads; each writes only its own block.
#[derive(Clone, Copy)]
struct SendPtrMut(*mut f32);
// SAFETY: the products write disjoint blocks (see `run_products`).
unsafe impl Send for SendPtrMut {}
unsafe impl Sync for SendPtrMut {}
impl SendPtrMut {
    fn get(self) -> *mut f32 {
        self.0
    }
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
