//! Fast paths against their slow references, values and gradients, as properties:
//!
//! - `kernels::matmul::matmul` (matrixmultiply's sgemm, rayon across a batch) against
//!   `matmul_naive` (f64 triple loop), over 2-D, batched, broadcast-batch, stack-times-matrix
//!   shapes and transposed, strided and reversed operand views;
//! - the fused `layer_norm` against `layer_norm_reference` (built from primitive ops);
//! - the fused `cross_entropy` against `cross_entropy_reference`, including logits of +-100
//!   and batches big enough for the rayon paths, and the hand-computed example of the spec.
//!
//! `PROPTEST_CASES=n` overrides the case counts (the few big cases get n / 50 or n / 100, at
//! least 1).
//! `MICROLM_LOG_RATIOS=1 ... -- --nocapture` prints each comparison's worst |diff| / tolerance.

mod common;

use common::*;
use microlm::kernels::matmul::{matmul, matmul_naive};
use microlm::{Tape, Var};
use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// f32's unit roundoff, 2^-24: one rounding of x has error at most U |x|.
const U: f32 = f32::EPSILON / 2.0;

/// Compare `got` with `want` element by element, `tol(index)` the allowed |got - want|. On
/// failure the message names the worst element relative to its tolerance, both values and the
/// tolerance. Returns the worst ratio |diff| / tol.
fn compare(what: &str, got: &T, want: &T, tol: impl Fn(&[usize]) -> f32) -> Result<f32, TestCaseError> {
    prop_assert_eq!(got.shape(), want.shape(), "{}: shapes differ", what);
    let mut worst: Option<(f32, Vec<usize>, f32, f32, f32)> = None;
    for (idx, (&g, &w)) in ndarray::indices(want.raw_dim())
        .into_iter()
        .zip(got.iter().zip(want.iter()))
    {
        let idx = idx.slice().to_vec();
        let t = tol(&idx);
        let diff = (g - w).abs();
        let ratio = if diff == 0.0 {
            0.0
        } else if diff.is_nan() || t == 0.0 {
            f32::INFINITY
        } else {
            diff / t
        };
        if worst.as_ref().is_none_or(|w| ratio > w.0) {
            worst = Some((ratio, idx, g, w, t));
        }
    }
    let Some((ratio, idx, g, w, t)) = worst else {
        return Ok(0.0);
    };
    if std::env::var_os("MICROLM_LOG_RATIOS").is_some() {
        eprintln!("compare-ratio {ratio} {what}");
    }
    prop_assert!(
        ratio <= 1.0,
        "{}: worst element {:?}: fast {:e}, reference {:e}, |diff| {:e} > tolerance {:e} ({:.2} of it)",
        what,
        idx,
        g,
        w,
        (g - w).abs(),
        t,
        ratio
    );
    Ok(ratio)
}

/// The largest |x| of a tensor (0 for an empty one).
fn max_abs(x: &T) -> f32 {
    x.iter().fold(0.0f32, |m, &v| m.max(v.abs()))
}

/// A tensor of `shape` with elements uniform in [lo, hi), from a seed (for the big cases, whose
/// failures should print a seed rather than 40 000 numbers).
fn seeded(shape: &[usize], lo: f32, hi: f32, seed: u64) -> T {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(lo..hi))
}

// ---------------------------------------------------------------------------------------------
// matmul kernel vs the naive triple loop
// ---------------------------------------------------------------------------------------------

/// How an operand is laid out in memory; the kernel reads every one of them in place.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major.
    RowMajor,
    /// The last two axes swapped (column-major matrices): what `tape.transpose` gives.
    Transposed,
    /// Every other element of a twice-as-wide row-major array (column stride 2); the skipped
    /// elements are NaN, so reading one poisons the result.
    EveryOtherColumn,
    /// The rows in reverse order (a negative row stride).
    ReversedRows,
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::RowMajor),
        Just(Layout::Transposed),
        Just(Layout::EveryOtherColumn),
        Just(Layout::ReversedRows),
    ]
}

/// Storage for a matrix (or stack) whose [`Operand::view`] has the logical values in `layout`.
struct Operand {
    store: T,
    layout: Layout,
}

impl Operand {
    fn new(logical: &T, layout: Layout) -> Operand {
        let n = logical.ndim();
        let (rows, cols) = (Axis(n - 2), Axis(n - 1));
        let store = match layout {
            Layout::RowMajor => logical.clone(),
            Layout::Transposed => {
                let mut v = logical.view();
                v.swap_axes(n - 2, n - 1);
                v.as_standard_layout().into_owned()
            }
            Layout::EveryOtherColumn => {
                let mut shape = logical.shape().to_vec();
                shape[n - 1] *= 2;
                let mut s = ArrayD::from_elem(IxDyn(&shape), f32::NAN);
                s.slice_axis_mut(cols, Slice::new(0, None, 2)).assign(logical);
                s
            }
            // (`to_owned` would keep the negative stride, and `view` would undo it.)
            Layout::ReversedRows => logical
                .slice_axis(rows, Slice::new(0, None, -1))
                .as_standard_layout()
                .into_owned(),
        };
        debug_assert!(store.is_standard_layout());
        Operand { store, layout }
    }

    fn view(&self) -> ArrayViewD<'_, f32> {
        let n = self.store.ndim();
        let (rows, cols) = (Axis(n - 2), Axis(n - 1));
        match self.layout {
            Layout::RowMajor => self.store.view(),
            Layout::Transposed => {
                let mut v = self.store.view();
                v.swap_axes(n - 2, n - 1);
                v
            }
            Layout::EveryOtherColumn => self.store.slice_axis(cols, Slice::new(0, None, 2)),
            Layout::ReversedRows => self.store.slice_axis(rows, Slice::new(0, None, -1)),
        }
    }
}

/// The kernel on `a` and `b` read through `la` and `lb`, against the naive loop on the plain
/// arrays.
///
/// Tolerance: any order of summing K products in f32 (sgemm's blocking, FMA or not) is within
/// gamma_K * (|A| |B|)_ij of the exact sum, gamma_K = K u / (1 - K u) ~ K u, and the naive
/// loop's f64 sum rounded to f32 is within u |C_ij| <= u (|A| |B|)_ij of it. So
/// |fast - naive| <= (K + 1) u (|A| |B|)_ij (to first order); we allow twice that. The bound
/// is per element and scale-free, unlike one built on max|A| max|B|.
fn check_matmul(a: &T, b: &T, la: Layout, lb: Layout) -> Result<f32, TestCaseError> {
    let (oa, ob) = (Operand::new(a, la), Operand::new(b, lb));
    for (o, x) in [(&oa, a), (&ob, b)] {
        let v = o.view();
        prop_assert_eq!(&v, &x.view());
        let (n, rows, cols) = (v.ndim(), v.shape()[v.ndim() - 2], v.shape()[v.ndim() - 1]);
        let (rs, cs) = (v.strides()[n - 2], v.strides()[n - 1]);
        let expected = match o.layout {
            Layout::RowMajor => cols == 1 || cs == 1,
            Layout::Transposed => rows == 1 || rs == 1,
            Layout::EveryOtherColumn => cols == 1 || cs == 2,
            Layout::ReversedRows => rows == 1 || rs < 0,
        };
        prop_assert!(expected, "{:?} view has strides {:?}", o.layout, v.strides());
    }
    let fast = matmul(oa.view(), ob.view());
    let naive = matmul_naive(a.view(), b.view());
    let k = a.shape()[a.ndim() - 1];
    let bound = matmul_naive(a.mapv(f32::abs).view(), b.mapv(f32::abs).view());
    let what = format!("matmul {:?} ({la:?}) x {:?} ({lb:?})", a.shape(), b.shape());
    compare(&what, &fast, &naive, |i| 2.0 * (k as f32 + 1.0) * U * bound[i])
}

/// A matrix size: mostly small, sometimes above 64 so that sgemm's blocking (and, with the
/// other sizes large too, its packing of several panels) is exercised.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=9, 1 => 60usize..=72]
}

/// (a, b) with the given batch shapes and matrix sizes, elements uniform in [-1, 1).
fn matmul_operands(ba: Vec<usize>, bb: Vec<usize>, m: usize, k: usize, n: usize) -> impl Strategy<Value = (T, T)> {
    let sa = [&ba[..], &[m, k]].concat();
    let sb = [&bb[..], &[k, n]].concat();
    (tensor(sa, -1.0, 1.0), tensor(sb, -1.0, 1.0))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul_kernel_2d(
        (a, b) in (dim(), dim(), dim()).prop_flat_map(|(m, k, n)| matmul_operands(vec![], vec![], m, k, n)),
        la in layout(),
        lb in layout(),
    ) {
        check_matmul(&a, &b, la, lb)?;
    }

    /// Batch axes that broadcast (size-1 axes or fewer leading axes on either side).
    #[test]
    fn matmul_kernel_broadcast_batch(
        (a, b) in (shape(1..=2), 1usize..=9, 1usize..=9, 1usize..=9)
            .prop_flat_map(|(full, m, k, n)| {
                (broadcast_operand(full.clone()), broadcast_operand(full), Just((m, k, n)))
            })
            .prop_flat_map(|(ba, bb, (m, k, n))| matmul_operands(ba, bb, m, k, n)),
        la in layout(),
        lb in layout(),
    ) {
        check_matmul(&a, &b, la, lb)?;
    }

    /// [B.., M, K] x [K, N] (folded into one tall product) and [M, K] x [B.., K, N].
    #[test]
    fn matmul_kernel_stack_and_matrix(
        (a, b) in (shape(1..=2), any::<bool>(), 1usize..=20, 1usize..=20, 1usize..=20)
            .prop_flat_map(|(batch, stack_first, m, k, n)| {
                let (ba, bb) = if stack_first { (batch, vec![]) } else { (vec![], batch) };
                matmul_operands(ba, bb, m, k, n)
            }),
        la in layout(),
        lb in layout(),
    ) {
        check_matmul(&a, &b, la, lb)?;
    }
}

/// 8 products of 64x32 by 32x64: small enough for one sgemm thread each, so the kernel spreads
/// the batch over rayon's threads. `b` is one matrix broadcast over the batch when `shared_b`.
#[test]
fn matmul_kernel_batch_across_rayon() {
    let strategy = (any::<u64>(), any::<bool>(), layout(), layout());
    run_scaled(
        "matmul_kernel_batch_across_rayon",
        2,
        50,
        strategy,
        |(seed, shared_b, la, lb)| {
            let a = seeded(&[8, 64, 32], -1.0, 1.0, seed);
            let b = seeded(if shared_b { &[1, 32, 64] } else { &[8, 32, 64] }, -1.0, 1.0, seed ^ 1);
            check_matmul(&a, &b, la, lb).map(|_| ())
        },
    );
}

/// One 200x200x200 product: m*k + k*n = 80 000 is past the threading threshold, so with 2 or more
/// rayon threads (default: the cores) it is cut into one sgemm per thread.
/// The naive reference takes most of the time here (~0.6 s a case), hence one case.
#[test]
fn matmul_kernel_one_big_product() {
    let strategy = (any::<u64>(), layout(), layout());
    run_scaled("matmul_kernel_one_big_product", 1, 100, strategy, |(seed, la, lb)| {
        let a = seeded(&[200, 200], -1.0, 1.0, seed);
        let b = seeded(&[200, 200], -1.0, 1.0, seed ^ 1);
        check_matmul(&a, &b, la, lb).map(|_| ())
    });
}

// ---------------------------------------------------------------------------------------------
// Fused ops vs references: values and gradients
// ---------------------------------------------------------------------------------------------

/// Run `f` on a fresh tape with `inputs` as inputs and L = sum(f(..) * w); return the value of
/// f's output and dL/d(input) for every input.
fn value_and_grads(inputs: &[T], w: &T, f: impl Fn(&mut Tape, &[Var]) -> Var) -> (T, Vec<T>) {
    let mut tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.input(x.clone())).collect();
    let y = f(&mut tape, &vars);
    let value = tape.value(y).to_owned();
    let loss = weighted_sum(&mut tape, y, w);
    let grads = tape.backward(loss);
    let grads = vars
        .iter()
        .zip(inputs)
        .map(|(&v, x)| grads.wrt(v).cloned().unwrap_or_else(|| ArrayD::zeros(x.raw_dim())))
        .collect();
    (value, grads)
}

/// Fused `layer_norm` against `layer_norm_reference`: the output and dL/dx, dL/dgamma,
/// dL/dbeta for L = sum(y * w).
///
/// Tolerances. The two compute the same formulas in a different order (the fused one sums each
/// row left to right and multiplies by rstd; the reference sums with ndarray's unrolled sum and
/// divides by std). With rows spread so that std >= ~step/2 and |x| <= ~6, the error in
/// mean and xhat is a few u * D * max|x| / std, about 1e-5 at D = 64 (max|x| ~ 5, std ~ 1.8);
/// y = xhat gamma + beta and dx scale it by |gamma| <= 2 and rstd. dgamma and dbeta add up one
/// term per row (up to 600 rows here) in different orders, worst case rows * u relative to the
/// sum of |terms|. So: values and dx within 3e-5 of their tensor's largest magnitude (at least
/// 1), dgamma and dbeta within (rows + 16) * 4u of it.
fn check_layer_norm(x: &T, gamma: &T, beta: &T, w: &T) -> Result<(), TestCaseError> {
    let inputs = [x.clone(), gamma.clone(), beta.clone()];
    let (y_fast, g_fast) = value_and_grads(&inputs, w, |t, v| t.layer_norm(v[0], v[1], v[2], 1e-5));
    let (y_ref, g_ref) = value_and_grads(&inputs, w, |t, v| t.layer_norm_reference(v[0], v[1], v[2], 1e-5));
    let rows = x.len() / gamma.len().max(1);
    let rel = |r: &T, tol: f32| tol * max_abs(r).max(1.0);
    let shape = format!("{:?}", x.shape());
    let t = rel(&y_ref, 3e-5);
    compare(&format!("layer_norm value {shape}"), &y_fast, &y_ref, |_| t)?;
    let t = rel(&g_ref[0], 3e-5);
    compare(&format!("layer_norm dx {shape}"), &g_fast[0], &g_ref[0], |_| t)?;
    let per_row = (rows as f32 + 16.0) * 4.0 * U;
    let t = rel(&g_ref[1], per_row);
    compare(&format!("layer_norm dgamma {shape}"), &g_fast[1], &g_ref[1], |_| t)?;
    let t = rel(&g_ref[2], per_row);
    compare(&format!("layer_norm dbeta {shape}"), &g_fast[2], &g_ref[2], |_| t)?;
    Ok(())
}

fn layer_norm_case() -> impl Strategy<Value = (T, T, T, T)> {
    (vec(1usize..=4, 0..=2), prop_oneof![2 => 1usize..=8, 1 => 30usize..=64]).prop_flat_map(|(lead, d)| {
        let mut s = lead;
        s.push(d);
        (
            spread_rows(s.clone(), 4.0 / d as f32),
            tensor(vec![d], -2.0, 2.0),
            tensor(vec![d], -2.0, 2.0),
            weights(s),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn layer_norm_fused_matches_reference((x, gamma, beta, w) in layer_norm_case()) {
        check_layer_norm(&x, &gamma, &beta, &w)?;
    }
}

/// [600, 64] = 38 400 elements: the fused version runs in three blocks of 256 rows (the last
/// one partial) on rayon's threads, and the reference's elementwise ops take their rayon paths.
#[test]
fn layer_norm_fused_matches_reference_in_parallel() {
    run_scaled(
        "layer_norm_fused_matches_reference_in_parallel",
        2,
        50,
        any::<u64>(),
        |seed| {
            let (rows, d) = (600, 64);
            let mut rng = StdRng::seed_from_u64(seed);
            // Row r is a random permutation of an evenly spaced grid plus a row offset: std ~ 1.8.
            let mut x = Vec::with_capacity(rows * d);
            for _ in 0..rows {
                let offset = rng.random_range(-2.0f32..2.0);
                let mut grid: Vec<f32> = (0..d).map(|j| (j as f32 - d as f32 / 2.0) * 0.1).collect();
                for j in (1..d).rev() {
                    grid.swap(j, rng.random_range(0..=j));
                }
                x.extend(grid.iter().map(|g| g + offset + rng.random_range(-0.02f32..0.02)));
            }
            let x = ArrayD::from_shape_vec(IxDyn(&[rows, d]), x).unwrap();
            let gamma = seeded(&[d], -2.0, 2.0, seed ^ 1);
            let beta = seeded(&[d], -2.0, 2.0, seed ^ 2);
            let w = seeded(&[rows, d], -1.0, 1.0, seed ^ 3);
            check_layer_norm(&x, &gamma, &beta, &w)
        },
    );
}

/// Fused `cross_entropy` against `cross_entropy_reference`: the mean, the sum (= mean * count),
/// the count, and dL/dz for L = mean * c.
///
/// Tolerances. Both compute each counted row's CE = lse - z_y from the same f32 steps up to
/// the order of a sum of V exponentials, so a row's terms differ by a few u (max|z| + ln V).
/// The fused sum accumulates in f64; the reference sums P (= positions) f32 terms, worst case
/// P u * sum|terms|. So |mean_fast - mean_ref| <= 8u (max|z| + ln V + 1) + P u mean|CE|,
/// for which we take 8u (P + 4) (max|z| + ln V + 1) with the mean of the terms bounded by
/// its largest. The gradient entries are (softmax - onehot) * c / count from the same
/// exponentials: within 64u of the largest entry (a few roundings of values <= 1).
fn check_cross_entropy(z: &T, targets: &[Option<usize>], c: f32) -> Result<(), TestCaseError> {
    let v = *z.shape().last().unwrap();
    let p = targets.len();
    let count = targets.iter().filter(|t| t.is_some()).count();
    let w = ArrayD::from_elem(IxDyn(&[]), c);
    let inputs = [z.clone()];
    let (m_fast, g_fast) = value_and_grads(&inputs, &w, |t, vars| t.cross_entropy(vars[0], targets).mean);
    let (fused_sum, fused_count) = {
        let mut tape = Tape::no_grad();
        let zv = tape.constant(z.clone());
        let ce = tape.cross_entropy(zv, targets);
        (tape.scalar(ce.sum), ce.count)
    };
    let (m_ref, g_ref) = value_and_grads(&inputs, &w, |t, vars| t.cross_entropy_reference(vars[0], targets));
    prop_assert_eq!(fused_count, count);
    let scale = max_abs(z) + (v as f32).ln() + 1.0;
    let t_mean = 8.0 * U * (p as f32 + 4.0) * scale;
    let what = format!("cross_entropy mean {:?}, count {count}", z.shape());
    compare(&what, &m_fast, &m_ref, |_| t_mean)?;
    let sum_ref = m_ref.map(|&m| m * count as f32);
    let t_sum = t_mean * count.max(1) as f32;
    let what = format!("cross_entropy sum {:?}, count {count}", z.shape());
    compare(&what, &ArrayD::from_elem(IxDyn(&[]), fused_sum), &sum_ref, |_| t_sum)?;
    let t_grad = 64.0 * U * max_abs(&g_ref[0]).max(c.abs() / count.max(1) as f32);
    let what = format!("cross_entropy dz {:?}, count {count}", z.shape());
    compare(&what, &g_fast[0], &g_ref[0], |_| t_grad)?;
    Ok(())
}

/// Logits [.., V] at one of three scales (|z| up to 3, 30 or 100: e^100 overflows f32, so a
/// formula without the max subtracted would give inf), targets with about a third None.
fn cross_entropy_case() -> impl Strategy<Value = (T, Vec<Option<usize>>)> {
    (
        vec(1usize..=4, 0..=2),
        prop_oneof![1usize..=8, 30usize..=50],
        prop_oneof![Just(3.0f32), Just(30.0), Just(100.0)],
    )
        .prop_flat_map(|(lead, v, scale)| {
            let positions: usize = lead.iter().product();
            let mut s = lead;
            s.push(v);
            (
                tensor(s, -scale, scale),
                vec(proptest::option::weighted(0.67, 0..v), positions),
            )
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cross_entropy_fused_matches_reference((z, targets) in cross_entropy_case(), c in -2.0f32..2.0) {
        check_cross_entropy(&z, &targets, c)?;
    }
}

/// 700 positions of V = 64 (44 800 elements): the fused forward and backward split the rows
/// over rayon's threads (at least 256 per task), the reference's log_softmax runs in three
/// blocks of 256 rows. Logits up to +-80.
#[test]
fn cross_entropy_fused_matches_reference_in_parallel() {
    let strategy = (any::<u64>(), -2.0f32..2.0);
    run_scaled(
        "cross_entropy_fused_matches_reference_in_parallel",
        2,
        50,
        strategy,
        |(seed, c)| {
            let (p, v) = (700, 64);
            let z = seeded(&[7, 100, v], -80.0, 80.0, seed);
            let mut rng = StdRng::seed_from_u64(seed ^ 1);
            let targets: Vec<Option<usize>> = (0..p)
                .map(|_| rng.random_bool(0.7).then(|| rng.random_range(0..v)))
                .collect();
            check_cross_entropy(&z, &targets, c)
        },
    );
}

/// The worked example of the spec: V = 4, four positions, targets [None, 0, None, 3].
#[test]
fn cross_entropy_hand_computed_example() {
    #[rustfmt::skip]
    let z = ArrayD::from_shape_vec(IxDyn(&[4, 4]), vec![
        5.0, -3.0, 0.5, 7.0,  // ignored: arbitrary
        2.0, 0.0, 0.0, 0.0,   // target 0
        -1.0, 4.0, 2.5, 0.0,  // ignored: arbitrary
        0.0, 0.0, 0.0, 0.0,   // target 3
    ]).unwrap();
    let targets = [None, Some(0), None, Some(3)];
    let mut tape = Tape::new();
    let zv = tape.input(z.clone());
    let ce = tape.cross_entropy(zv, &targets);
    assert_eq!(ce.count, 2);
    let (mean, sum) = (tape.scalar(ce.mean), tape.scalar(ce.sum));
    assert!((mean - 0.8635237).abs() < 1e-6, "mean {mean}");
    assert!((sum - 1.7270473).abs() < 1e-6, "sum {sum}");
    let grads = tape.backward(ce.mean);
    let g = grads.wrt(zv).unwrap();
    let expected: [[f32; 4]; 4] = [
        [0.0; 4],
        [-0.1443827, 0.0481276, 0.0481276, 0.0481276],
        [0.0; 4],
        [0.125, 0.125, 0.125, -0.375],
    ];
    for (r, row) in expected.iter().enumerate() {
        for (j, &e) in row.iter().enumerate() {
            let got = g[[r, j]];
            if r == 0 || r == 2 {
                assert_eq!(got, 0.0, "ignored row {r} must get exactly zero gradient");
            } else {
                assert!((got - e).abs() < 1e-6, "dL/dz[{r}, {j}] = {got}, expected {e}");
            }
        }
    }
    // The reference agrees.
    let mut tape = Tape::no_grad();
    let zv = tape.constant(z);
    let m = tape.cross_entropy_reference(zv, &targets);
    assert!((tape.scalar(m) - 0.8635237).abs() < 1e-6);
}
