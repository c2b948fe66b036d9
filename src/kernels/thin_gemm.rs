//! Thin products without packing A: C = A·B (+ C) when K is short, as in a linear layer's
//! forward (x W^T, K = d_in), its input gradient (g W, K = d_out) and attention's head products
//! (K = 32 or the block's length).
//!
//! A general sgemm (matrixmultiply's) copies both operands into cache-sized panels before it
//! multiplies ("packing"). For a product whose output is wide and K short, every number of A is
//! used only n times, and for a row-major A packing is a transpose done one number at a time:
//! packing was about a quarter of the toy training step (NOTES.md §8.2). Here only B is packed
//! (it is the small operand: a weight matrix, or one head's K or V), into panels of NR columns,
//! one row of NR numbers per k:
//!
//! ```text
//! panel p:  B[0, p NR .. p NR + NR],  B[1, p NR ..],  ...,  B[K-1, p NR ..]
//! ```
//!
//! and A is read in place through its strides. The micro-kernel keeps an MR x NR tile of C in
//! registers and, for each k, broadcasts A[i, k] for its MR rows and multiplies it into the
//! panel's row k:
//!
//! ```text
//! C[i, j] = sum_k A[i, k] B[k, j]        for the tile's rows i and columns j, k = 0, 1, ..., K-1
//! ```
//!
//! one fused multiply-add per (i, k, lane), in the order of k. Every element of C is one such
//! sum, whatever the tile or the thread that computes it: the same bits at any thread count.
//!
//! Two micro-kernels, picked at run time: AVX-512 (MR = 8 rows, NR = 32 columns, 16
//! accumulators of 16 lanes) and AVX2 with FMA (MR = 6, NR = 16, 12 accumulators of 8 lanes).
//! On other CPUs [`try_gemm`] declines and the caller uses sgemm. `tests/thin_gemm.rs` checks
//! both micro-kernels bit for bit against the fused multiply-add chain above written out with
//! `f32::mul_add`, and the public path against `matmul_naive`, the naive triple loop.

use std::cell::RefCell;

/// Products with K above this are left to sgemm: its panels keep a long K in cache, which one
/// K x NR panel of B here does not.
pub const MAX_K: usize = 512;

/// Which micro-kernel this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 16-lane vectors: MR = 8, NR = 32.
    Avx512,
    /// 8-lane vectors with fused multiply-add: MR = 6, NR = 16.
    Avx2Fma,
}

impl Isa {
    /// The best micro-kernel this CPU has, if any.
    pub fn detect() -> Option<Isa> {
        Isa::all_here().first().copied()
    }

    /// Every micro-kernel this CPU can run, best first (the tests run them all).
    pub fn all_here() -> Vec<Isa> {
        let mut isas = vec![];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                isas.push(Isa::Avx2Fma);
            }
        }
        isas
    }

    /// Rows and columns of the tile of C one micro-kernel call computes: (MR, NR).
    pub fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (8, 32),
            Isa::Avx2Fma => (6, 16),
        }
    }
}

/// One operand's place in memory: its first element and its row and column strides (elements).
#[derive(Clone, Copy)]
pub struct Strided {
    /// The element [0, 0].
    pub ptr: *const f32,
    /// Elements from one row to the next.
    pub rs: isize,
    /// Elements from one column to the next.
    pub cs: isize,
}

impl Strided {
    /// Where a matrix view's elements are.
    pub fn of(x: ndarray::ArrayView2<'_, f32>) -> Strided {
        Strided {
            ptr: x.as_ptr(),
            rs: x.strides()[0],
            cs: x.strides()[1],
        }
    }
}

thread_local! {
    /// Each thread's buffer for B's panels, reused from product to product.
    static PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What to do with each finished row of C while it is still in cache (an "epilogue": a bias,
/// an activation, a residual add): called with the row's index i (0 for the first row of this
/// product) and its n values, once the whole row is summed.
pub type RowEpilogue<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

/// C = A·B (beta = 0) or C = C + A·B (beta = 1) for (m, k, n): A m x k, B k x n, and C m x n
/// with rows `rsc` apart and contiguous columns, with the micro-kernel of this CPU. Returns false, having
/// done nothing, when there is none, when K > [`MAX_K`], or when beta is neither 0 nor 1.
///
/// # Safety
/// A and B must be readable at every (i, k) and (k, j) through their strides, and C writable at
/// every (i, j); C must not overlap A or B.
pub unsafe fn try_gemm(
    (m, k, n): (usize, usize, usize),
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    rsc: isize,
) -> bool {
    try_gemm_then((m, k, n), a, b, beta, c, rsc, None)
}

/// [`try_gemm`], then `epilogue` on each row of C as soon as its MR-row block is done (the
/// block is then in L1: MR x n floats).
///
/// # Safety
/// As for [`try_gemm`].
pub unsafe fn try_gemm_then(
    (m, k, n): (usize, usize, usize),
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    epilogue: Option<&RowEpilogue<'_>>,
) -> bool {
    match Isa::detect() {
        Some(isa) if k <= MAX_K && (beta == 0.0 || beta == 1.0) => {
            gemm_with_then(isa, (m, k, n), a, b, beta == 1.0, c, rsc, epilogue);
            true
        }
        _ => false,
    }
}

/// [`try_gemm`] with a chosen micro-kernel (the tests run both where the CPU has both).
///
/// # Safety
/// As for [`try_gemm`], and the CPU must have `isa`'s instructions ([`Isa::detect`] or better).
pub unsafe fn gemm_with(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    a: Strided,
    b: Strided,
    accumulate: bool,
    c: *mut f32,
    rsc: isize,
) {
    gemm_with_then(isa, (m, k, n), a, b, accumulate, c, rsc, None)
}

/// [`gemm_with`] and an epilogue per finished row ([`try_gemm_then`]).
#[allow(clippy::too_many_arguments)] // the product's shape, operands and output, as gemm_with
unsafe fn gemm_with_then(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    a: Strided,
    b: Strided,
    accumulate: bool,
    c: *mut f32,
    rsc: isize,
    epilogue: Option<&RowEpilogue<'_>>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (mr, nr) = isa.tile();
    let panels = n.div_ceil(nr);
    PANELS.with_borrow_mut(|packed| {
        pack_b(b, k, n, nr, packed);
        for i0 in (0..m).step_by(mr) {
            let rows = mr.min(m - i0);
            let a_rows = a.ptr.offset(i0 as isize * a.rs);
            for p in 0..panels {
                let j0 = p * nr;
                let tile = Tile {
                    c: c.offset(i0 as isize * rsc + j0 as isize),
                    rsc,
                    rows,
                    cols: nr.min(n - j0),
                    accumulate,
                };
                let panel = packed.as_ptr().add(p * k * nr);
                match isa {
                    Isa::Avx512 => kernel_avx512(a_rows, a.rs, a.cs, panel, k, tile),
                    Isa::Avx2Fma => kernel_avx2(a_rows, a.rs, a.cs, panel, k, tile),
                }
            }
            if let Some(epilogue) = epilogue {
                // Rows i0 .. i0 + rows of C are complete, and still in L1.
                for i in i0..i0 + rows {
                    epilogue(i, std::slice::from_raw_parts_mut(c.offset(i as isize * rsc), n));
                }
            }
        }
    });
}

/// B (k x n) into panels of `nr` columns, k rows of `nr` each. The last panel's columns past n
/// keep whatever the buffer held (zeros, or an earlier product's numbers): their sums go to
/// lanes of the tile that are never written to C, so filling them would be wasted work.
unsafe fn pack_b(b: Strided, k: usize, n: usize, nr: usize, packed: &mut Vec<f32>) {
    let panels = n.div_ceil(nr);
    if packed.len() < panels * k * nr {
        packed.resize(panels * k * nr, 0.0);
    }
    for p in 0..panels {
        let cols = nr.min(n - p * nr);
        for kk in 0..k {
            let row = &mut packed[(p * k + kk) * nr..][..cols];
            let src = b.ptr.offset(kk as isize * b.rs + (p * nr) as isize * b.cs);
            if b.cs == 1 {
                row.copy_from_slice(std::slice::from_raw_parts(src, cols));
            } else {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, x)| *x = *src.offset(j as isize * b.cs));
            }
        }
    }
}

/// Where one micro-kernel call writes: `rows` x `cols` of C (at most MR x NR) from `c`.
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    rsc: isize,
    rows: usize,
    cols: usize,
    accumulate: bool,
}

impl Tile {
    /// Write the tile's sums, `sums[i * nr + j]` for row i and column j: stored, or added to C.
    unsafe fn write_back(self, sums: &[f32], nr: usize) {
        for i in 0..self.rows {
            let c_row = std::slice::from_raw_parts_mut(self.c.offset(i as isize * self.rsc), self.cols);
            let s_row = &sums[i * nr..][..self.cols];
            if self.accumulate {
                c_row.iter_mut().zip(s_row).for_each(|(c, s)| *c += s);
            } else {
                c_row.copy_from_slice(s_row);
            }
        }
    }
}

/// The AVX-512 micro-kernel: an 8 x 32 tile of C, acc[i] = sum_k A[i, k] B[k, 0..32] in two
/// 16-lane halves. Rows past `tile.rows` repeat the last row of A (their sums are not written).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(a: *const f32, rsa: isize, csa: isize, panel: *const f32, k: usize, tile: Tile) {
    use std::arch::x86_64::*;
    const MR: usize = 8;
    const NR: usize = 32;
    let row = |i: usize| a.offset(i.min(tile.rows - 1) as isize * rsa);
    let a_rows: [*const f32; MR] = std::array::from_fn(row);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for kk in 0..k {
        let b0 = _mm512_loadu_ps(panel.add(kk * NR)); // B[k, 0..16]
        let b1 = _mm512_loadu_ps(panel.add(kk * NR + 16)); // B[k, 16..32]
        for i in 0..MR {
            let a_ik = _mm512_set1_ps(*a_rows[i].offset(kk as isize * csa)); // A[i, k] in every lane
            acc[i][0] = _mm512_fmadd_ps(a_ik, b0, acc[i][0]); // C[i, j] += A[i, k] B[k, j]
            acc[i][1] = _mm512_fmadd_ps(a_ik, b1, acc[i][1]);
        }
    }
    if tile.rows == MR && tile.cols == NR {
        for (i, [lo, hi]) in acc.iter().enumerate() {
            let c = tile.c.offset(i as isize * tile.rsc);
            let (lo, hi) = if tile.accumulate {
                (
                    _mm512_add_ps(_mm512_loadu_ps(c), *lo),
                    _mm512_add_ps(_mm512_loadu_ps(c.add(16)), *hi),
                )
            } else {
                (*lo, *hi)
            };
            _mm512_storeu_ps(c, lo);
            _mm512_storeu_ps(c.add(16), hi);
        }
    } else {
        let mut sums = [0.0f32; MR * NR];
        for (i, [lo, hi]) in acc.iter().enumerate() {
            _mm512_storeu_ps(sums.as_mut_ptr().add(i * NR), *lo);
            _mm512_storeu_ps(sums.as_mut_ptr().add(i * NR + 16), *hi);
        }
        tile.write_back(&sums, NR);
    }
}

/// The AVX2 micro-kernel: a 6 x 16 tile of C, acc[i] = sum_k A[i, k] B[k, 0..16] in two 8-lane
/// halves. Rows past `tile.rows` repeat the last row of A (their sums are not written).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(a: *const f32, rsa: isize, csa: isize, panel: *const f32, k: usize, tile: Tile) {
    use std::arch::x86_64::*;
    const MR: usize = 6;
    const NR: usize = 16;
    let row = |i: usize| a.offset(i.min(tile.rows - 1) as isize * rsa);
    let a_rows: [*const f32; MR] = std::array::from_fn(row);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for kk in 0..k {
        let b0 = _mm256_loadu_ps(panel.add(kk * NR)); // B[k, 0..8]
        let b1 = _mm256_loadu_ps(panel.add(kk * NR + 8)); // B[k, 8..16]
        for i in 0..MR {
            let a_ik = _mm256_set1_ps(*a_rows[i].offset(kk as isize * csa)); // A[i, k] in every lane
            acc[i][0] = _mm256_fmadd_ps(a_ik, b0, acc[i][0]); // C[i, j] += A[i, k] B[k, j]
            acc[i][1] = _mm256_fmadd_ps(a_ik, b1, acc[i][1]);
        }
    }
    if tile.rows == MR && tile.cols == NR {
        for (i, [lo, hi]) in acc.iter().enumerate() {
            let c = tile.c.offset(i as isize * tile.rsc);
            let (lo, hi) = if tile.accumulate {
                (
                    _mm256_add_ps(_mm256_loadu_ps(c), *lo),
                    _mm256_add_ps(_mm256_loadu_ps(c.add(8)), *hi),
                )
            } else {
                (*lo, *hi)
            };
            _mm256_storeu_ps(c, lo);
            _mm256_storeu_ps(c.add(8), hi);
        }
    } else {
        let mut sums = [0.0f32; MR * NR];
        for (i, [lo, hi]) in acc.iter().enumerate() {
            _mm256_storeu_ps(sums.as_mut_ptr().add(i * NR), *lo);
            _mm256_storeu_ps(sums.as_mut_ptr().add(i * NR + 8), *hi);
        }
        tile.write_back(&sums, NR);
    }
}

/// Off x86-64 there is no micro-kernel: [`Isa::detect`] says None, so this is never called.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_avx512(_: *const f32, _: isize, _: isize, _: *const f32, _: usize, _: Tile) {
    unreachable!("Isa::detect finds no AVX-512 off x86-64")
}

/// Off x86-64 there is no micro-kernel: [`Isa::detect`] says None, so this is never called.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_avx2(_: *const f32, _: isize, _: isize, _: *const f32, _: usize, _: Tile) {
    unreachable!("Isa::detect finds no AVX2 off x86-64")
}
