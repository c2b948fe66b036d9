//! The thin-product kernel (`kernels::thin_gemm`) against two references: the fused
//! multiply-add chain its doc promises, C[i, j] = fma(A[i, K-1], B[K-1, j], ... fma(A[i, 0],
//! B[0, j], 0)), bit for bit; and the naive f64 triple loop, within rounding. Every micro-kernel
//! this CPU has is run, on shapes whose rows and columns leave partial tiles, with A and B read
//! through transposed strides, and with C accumulated into.

use microlm::kernels::matmul::{gemm_into, matmul_naive};
use microlm::kernels::thin_gemm::{gemm_with, Isa, Strided, MAX_K};
use ndarray::{Array2, ArrayView2, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-2.0f32..2.0))
}

/// C0 + the fma chain over k, in f32, one element at a time.
fn fma_chain(a: ArrayView2<f32>, b: ArrayView2<f32>, c0: Option<&Array2<f32>>) -> Array2<f32> {
    let (m, k) = a.dim();
    let n = b.dim().1;
    Array2::from_shape_fn((m, n), |(i, j)| {
        let sum = (0..k).fold(0.0f32, |acc, p| a[[i, p]].mul_add(b[[p, j]], acc));
        c0.map_or(sum, |c| c[[i, j]] + sum)
    })
}

/// Shapes around the tiles (MR 6 and 8, NR 16 and 32): partial row blocks, partial panels, K = 1.
const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (5, 3, 7),
    (8, 32, 32),
    (13, 17, 40),
    (25, 64, 33),
    (6, 128, 16),
    (50, 200, 70),
];

#[test]
fn every_micro_kernel_gives_the_fma_chain_bit_for_bit() {
    let isas = Isa::all_here();
    if isas.is_empty() {
        eprintln!("no AVX2/AVX-512 on this CPU: matmul uses sgemm alone, nothing to test here");
        return;
    }
    for isa in isas {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let seed = 10 * s as u64;
            // A as stored [m, k], and as the transpose of a stored [k, m]; B likewise.
            let (a_rm, a_t) = (random(m, k, seed), random(k, m, seed + 1));
            let (b_rm, b_t) = (random(k, n, seed + 2), random(n, k, seed + 3));
            let c0 = random(m, n, seed + 4);
            for (a, b) in [(a_rm.view(), b_rm.view()), (a_t.t(), b_t.t()), (a_rm.view(), b_t.t())] {
                for accumulate in [false, true] {
                    let mut c = if accumulate {
                        c0.clone()
                    } else {
                        Array2::from_elem((m, n), f32::NAN)
                    };
                    // SAFETY: the views cover A and B; C is a fresh contiguous [m, n].
                    unsafe {
                        gemm_with(
                            isa,
                            (m, k, n),
                            Strided::of(a),
                            Strided::of(b),
                            accumulate,
                            c.as_mut_ptr(),
                            n as isize,
                        )
                    };
                    let want = fma_chain(a, b, accumulate.then_some(&c0));
                    let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{isa:?} {m}x{k}x{n} accumulate={accumulate}: not the fma chain's bits"
                    );
                }
            }
        }
    }
}

/// Through the public path (`gemm_into`, which picks the kernel or sgemm): a slice of a wider C
/// (rows further apart than n), C += A B, and a K above MAX_K that goes to sgemm, all within
/// f32 rounding of the naive f64 loop.
#[test]
fn gemm_into_matches_the_naive_loop_on_either_path() {
    for (m, k, n) in [(37, 24, 45), (9, MAX_K + 3, 20)] {
        let (a, b) = (random(m, k, 1), random(k, n, 2));
        let mut wide = random(m, n + 7, 3);
        let before = wide.clone();
        gemm_into(1.0, a.view(), b.view(), 1.0, wide.slice_mut(ndarray::s![.., 2..n + 2]));
        let ab = matmul_naive(a.view().into_dyn(), b.view().into_dyn());
        for i in 0..m {
            for j in 0..n + 7 {
                let want = if (2..n + 2).contains(&j) {
                    before[[i, j]] + ab[IxDyn(&[i, j - 2])]
                } else {
                    before[[i, j]]
                };
                // |terms| < 4, K < 520 of them: rounding stays far below 1e-3.
                assert!(
                    (wide[[i, j]] - want).abs() < 1e-3,
                    "{m}x{k}x{n} at ({i}, {j}): {} against {want}",
                    wide[[i, j]]
                );
            }
        }
    }
}

/// `gemm_into_then` hands every row of C to its epilogue exactly once, after the row is summed:
/// C is `gemm_into`'s bits, then the epilogue's change (here: row i scaled by i + 1, and its
/// index logged). Inside thin_gemm's tiles (K = 40), after sgemm (K past MAX_K), with
/// accumulation (beta = 1), and for rows of no columns (the epilogue still sees each row).
#[test]
fn gemm_into_then_applies_the_epilogue_to_every_finished_row_once() {
    use microlm::kernels::gemm_then::gemm_into_then;
    use std::sync::Mutex;
    for (m, k, n, beta) in [
        (19, 40, 37, 0.0),
        (9, MAX_K + 20, 12, 0.0),
        (11, 24, 70, 1.0),
        (5, 8, 0, 0.0),
    ] {
        let (a, b) = (random(m, k, 1), random(k, n, 2));
        let c0 = random(m, n, 3);
        let mut want = c0.clone();
        gemm_into(1.0, a.view(), b.view(), beta, want.view_mut());
        for (i, mut row) in want.rows_mut().into_iter().enumerate() {
            row.mapv_inplace(|v| v * (i + 1) as f32);
        }
        let seen = Mutex::new(vec![0usize; m]);
        let mut got = c0.clone();
        let epilogue = |i: usize, row: &mut [f32]| {
            assert_eq!(row.len(), n);
            row.iter_mut().for_each(|v| *v *= (i + 1) as f32);
            seen.lock().unwrap()[i] += 1;
        };
        gemm_into_then(a.view(), b.view(), beta, got.view_mut(), &epilogue);
        assert_eq!(seen.into_inner().unwrap(), vec![1; m], "({m}, {k}, {n}): each row once");
        let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "({m}, {k}, {n}, beta {beta})");
    }
}
