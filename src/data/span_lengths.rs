//! The span lengths of BART's text infilling (docs/objectives.md §5a): Poisson(λ), cut off at
//! [`MAX_SPAN`] and renormalised, drawn until they meet a budget. `bart_noise.rs` places the
//! spans; this file only says how long they are.

use rand::Rng;

/// The longest span text infilling draws. fairseq's table of Poisson(λ) probabilities ends at the
/// first one below 10⁻⁷, which for λ = 3 is k = 17; we keep 17 for every λ.
pub const MAX_SPAN: usize = 17;

/// The span lengths' distribution: Poisson(λ), p_k = e^-λ λ^k / k!, kept for k = 0 to
/// [`MAX_SPAN`] and renormalised. The factor e^-λ cancels in the renormalisation, so the weights
/// are w_0 = 1 and w_k = w_(k-1)·λ/k.
pub fn span_length_pmf(lambda: f64) -> Vec<f64> {
    let mut weights = vec![1.0];
    for k in 1..=MAX_SPAN {
        weights.push(weights[k - 1] * lambda / k as f64);
    }
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// One draw from `pmf` by the inverse CDF: the first k whose cumulative probability passes a
/// uniform u in [0, 1).
fn draw(pmf: &[f64], rng: &mut impl Rng) -> usize {
    let u: f64 = rng.random();
    let mut cumulative = 0.0;
    for (k, p) in pmf.iter().enumerate() {
        cumulative += p;
        if u < cumulative {
            return k;
        }
    }
    pmf.len() - 1 // u landed in the rounding gap just below 1
}

/// Span lengths drawn from [`span_length_pmf`] until they add up to at least `budget`, the last
/// one then shortened so that they add up to exactly `budget` (so it is never 0). Empty when
/// `budget` is 0. A tiny λ makes almost every draw 0, and the loop long.
pub fn span_lengths(budget: usize, lambda: f64, rng: &mut impl Rng) -> Vec<usize> {
    let pmf = span_length_pmf(lambda);
    let mut lengths = Vec::new();
    let mut total = 0;
    while total < budget {
        let length = draw(&pmf, rng);
        lengths.push(length);
        total += length;
    }
    if let Some(last) = lengths.last_mut() {
        *last -= total - budget;
    }
    lengths
}

/// ⌈share·n⌉, the number of items a share of n covers, rounding up as fairseq does. A product
/// within 10⁻⁹ of a whole number counts as that number, so that float noise adds no item.
pub fn share_count(share: f64, n: usize) -> usize {
    let x = share * n as f64;
    let nearest = x.round();
    let count = if (x - nearest).abs() < 1e-9 { nearest } else { x.ceil() };
    (count.max(0.0) as usize).min(n)
}
