//! The vectorised helpers against the plain std versions.

use microlm::kernels::vector::{dot, exp, max, sum};

/// Distance in units in the last place between two positive floats.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
fn fast_exp_is_within_a_few_ulp_of_std_exp() {
    let mut worst = 0;
    let mut x = -86.5f32;
    while x < 88.7 {
        let (ours, std) = (exp(x), x.exp());
        worst = worst.max(ulps(ours, std));
        x += 0.000_731; // about 240k points across the range
    }
    eprintln!("fast exp: worst error {worst} ulp");
    assert!(worst <= 4, "worst error {worst} ulp");
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(f32::NEG_INFINITY), 0.0, "masking relies on e^-inf = 0 exactly");
    assert_eq!(exp(-100.0), 0.0);
    assert_eq!(exp(89.0), f32::INFINITY);
    assert!(exp(f32::NAN).is_nan());
}

#[test]
fn vectorised_sum_dot_and_max_match_the_plain_loops() {
    for n in [0usize, 1, 7, 8, 9, 31, 128, 1000] {
        let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let y: Vec<f32> = (0..n).map(|i| ((i * 13 % 29) as f32 - 14.0) / 3.0).collect();
        let plain_sum: f64 = x.iter().map(|&v| v as f64).sum();
        let plain_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        let plain_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // Partial sums change the rounding, not the value: within n * u * sum|x|.
        let bound = |terms: f64| 1e-6 * (n as f64 + 1.0) * terms + 1e-6;
        let abs_sum: f64 = x.iter().map(|&v| v.abs() as f64).sum();
        let abs_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| (a * b).abs() as f64).sum();
        assert!((sum(&x) as f64 - plain_sum).abs() <= bound(abs_sum), "sum, n = {n}");
        assert!((dot(&x, &y) as f64 - plain_dot).abs() <= bound(abs_dot), "dot, n = {n}");
        assert_eq!(max(&x), plain_max, "max, n = {n}");
    }
}

/// A deterministic pseudo-random array.
fn arr(shape: &[usize], seed: u32) -> ndarray::ArrayD<f32> {
    let mut s = seed;
    ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(shape), |_| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    })
}

#[test]
fn elementwise_fast_paths_match_ndarray_on_large_tensors() {
    use microlm::kernels::elementwise::{map, zip_map};
    // Large enough for the parallel paths (>= 2^15 elements), with a ragged last chunk.
    let x = arr(&[3, 97, 129], 1);
    let same = arr(&[3, 97, 129], 2);
    let bias = arr(&[129], 3);
    let middle = arr(&[97, 1], 4); // broadcasts in the middle: the general path
    assert_eq!(map(x.view(), |v| v * 2.0 + 1.0), x.mapv(|v| v * 2.0 + 1.0));
    let xt = x.t(); // not row-major: the general path
    assert_eq!(map(xt.clone(), |v| -v), xt.mapv(|v| -v));
    assert_eq!(
        zip_map("t", x.view(), same.view(), |a, b| a * b - b),
        &x * &same - &same
    );
    assert_eq!(zip_map("t", x.view(), bias.view(), |a, b| a + b), &x + &bias);
    assert_eq!(zip_map("t", x.view(), middle.view(), |a, b| a - b), &x - &middle);
    // Broadcasting the other way round: the small operand first.
    assert_eq!(zip_map("t", bias.view(), x.view(), |a, b| a - b), &bias - &x);
}

#[test]
fn parallel_bias_gradient_sum_matches_the_sequential_sum() {
    use microlm::kernels::broadcast::sum_to_shape;
    let g = arr(&[4, 300, 64], 5); // 76,800 elements: the parallel path
    let expected = g.sum_axis(ndarray::Axis(0)).sum_axis(ndarray::Axis(0));
    for shape in [vec![64], vec![1, 64], vec![1, 1, 64]] {
        let got = sum_to_shape(g.clone(), &shape);
        assert_eq!(got.shape(), shape.as_slice());
        for (a, b) in got.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-4, "{shape:?}: {a} vs {b}");
        }
    }
    // A shape that is not a trailing block takes the general path and still sums right.
    let got = sum_to_shape(g.clone(), &[4, 1, 64]);
    let expected = g.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
    assert!(got.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
}

#[test]
fn head_interleaved_matmul_matches_the_plain_one_and_merges_without_a_copy() {
    use microlm::kernels::matmul::{matmul, matmul_heads_interleaved, t};
    let (a, b) = (arr(&[2, 3, 5, 4], 6), arr(&[2, 3, 6, 4], 7)); // [B, H, M, K], B^T of [B, H, K, N]
    let bt = t(b.view()); // [2, 3, 4, 6], a strided view
    let plain = matmul(a.view(), bt.clone());
    let interleaved = matmul_heads_interleaved(a.view(), bt);
    assert_eq!(interleaved.shape(), &[2, 3, 5, 6]);
    assert_eq!(interleaved, plain, "same values, bit for bit");
    // Swapping heads and positions back gives a row-major [B, M, H, N] array: merging heads
    // into [B, M, H*N] is then a reshape without a copy.
    let merged = interleaved.permuted_axes(vec![0, 2, 1, 3]);
    assert!(merged.is_standard_layout());
}
