//! Loops the compiler can vectorise: e^x for f32, and sums, maxima and dot products.
//!
//! The C library's `expf` is a function call per element, so a loop over it cannot use SIMD.
//! This one is branch-free arithmetic the compiler turns into vector instructions (Cephes'
//! `expf` method):
//!
//!   e^x = 2^n * e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2],
//!   e^r ~ 1 + r + r^2 (1/2 + r/6 + ...) (a degree-7 polynomial, coefficients from Cephes),
//!   2^n built directly in the float's exponent bits.
//!
//! Relative error is within a few ulp of f32 over the whole range (`tests/kernels.rs`
//! checks it against `f32::exp`). Results below about 2.5e-38 (x < -86.6) are flushed to 0, so
//! e^-inf = 0 exactly, which masking relies on; x above 88.72 gives infinity.

/// e^x; see the module docs.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n * LN2_HI is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-86.6, 88.73);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND; // round(x / ln 2), as a float
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e_r = p * r * r + r + 1.0;
    // n as an integer, from t's low bits. 2^n is built as 2^(n-1) * 2, because n reaches 128
    // just below ln(f32::MAX), and 2^128 itself is not a float.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n_minus_1 = f32::from_bits(n_int.wrapping_add(126) << 23); // (n - 1) + 127 in the exponent field
    let y = e_r * two_n_minus_1 * 2.0;
    if x < -86.6 {
        0.0
    } else {
        y
    }
}

/// sum_i x_i, with 8 running partial sums so the loop vectorises (the order of additions is
/// fixed, so the result is deterministic).
#[inline]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// max_i x_i (-inf for an empty slice), vectorised like [`sum`].
#[inline]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().fold(rest, |m, &v| if v > m { v } else { m })
}

/// sum_i x_i y_i, vectorised like [`sum`].
#[inline]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot: lengths differ");
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let rest: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}
