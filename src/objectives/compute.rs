//! Training compute, counted as the profiler counts it (`src/profile.rs`): the products only,
//! 2 m k n FLOPs for an [m, k] x [k, n] product, and a backward pass twice its forward pass, so
//! one update costs 3 x its forward products. Embedding lookups, LayerNorm, GELU, softmax and
//! the adds are left out (a few operations per element, against 2 d per element of a product).
//!
//! Per sequence of T tokens, for a stack of width d, feed-forward width d_ff and N layers:
//!
//!   stack = N T (2 d 3d + 2 d d + 2 2 d d_ff) + N 4 T^2 d
//!           (Q, K, V and output projections; the two feed-forward products; S = Q K^T and
//!            O = P V, each 2 T^2 d over all heads)
//!   masked LM = stack(D) + k 2 d V                   (plain head at the k masked positions)
//!   ELECTRA   = stack(D) + T (2 d d + 2 d)            (D's head at every position)
//!             + T 2 d d_g + stack(G)                  (G's embedding projection and stack)
//!             + k (2 d_g d + 2 d V)                   (G's head at the k masked positions)
//!
//! so ELECTRA costs the masked LM's compute plus its generator's; at d_g = d/4 the generator's
//! stack is about 1/12 of the discriminator's (NOTES.md §11.9 has the figures).

use super::electra::Electra;
use super::mlm::MaskedLm;
use crate::nn::TransformerConfig;

/// Forward products of one sequence of `t` tokens through the layers of `c`.
pub fn stack_flops(c: &TransformerConfig, t: usize) -> f64 {
    let (d, d_ff, t, n) = (c.d_model as f64, c.d_ff as f64, t as f64, c.layers as f64);
    n * t * (2.0 * d * 3.0 * d + 2.0 * d * d + 4.0 * d * d_ff) + n * 4.0 * t * t * d
}

/// Training FLOPs (forward and backward) of one sequence of `t` tokens with `k` masked
/// positions through the masked LM.
pub fn masked_lm_flops(model: &MaskedLm, t: usize, k: usize) -> f64 {
    let c = &model.encoder.config;
    let (d, v) = (c.d_model as f64, c.vocab_size as f64);
    let transform = if model.head.transform.is_some() {
        2.0 * d * d
    } else {
        0.0
    };
    3.0 * (stack_flops(c, t) + k as f64 * (transform + 2.0 * d * v))
}

/// Training FLOPs of one sequence of `t` tokens with `k` masked positions through ELECTRA:
/// (generator, discriminator), each with its head (the embedding projection is the generator's).
pub fn electra_flops(model: &Electra, t: usize, k: usize) -> (f64, f64) {
    let (c, g) = (&model.discriminator.config, &model.generator.config);
    let (d, dg, v) = (c.d_model as f64, g.d_model as f64, c.vocab_size as f64);
    let (tf, kf) = (t as f64, k as f64);
    let discriminator = stack_flops(c, t) + tf * (2.0 * d * d + 2.0 * d);
    let generator = tf * 2.0 * d * dg + stack_flops(g, t) + kf * (2.0 * dg * d + 2.0 * d * v);
    (3.0 * generator, 3.0 * discriminator)
}

/// A few lines comparing the training compute of `updates` updates of `batch` sequences of `t`
/// tokens through `electra` with `mlm_updates` updates of the same batches through `mlm`, each
/// with its own count of masked positions per sequence.
pub fn equal_compute_report(
    electra: (&Electra, usize, usize),
    mlm: (&MaskedLm, usize, usize),
    batch: usize,
    t: usize,
) -> String {
    let ((e, e_k, e_updates), (m, m_k, m_updates)) = (electra, mlm);
    let (g, d) = electra_flops(e, t, e_k);
    let per_mlm = masked_lm_flops(m, t, m_k);
    let b = batch as f64;
    let (total_e, total_m) = ((g + d) * b * e_updates as f64, per_mlm * b * m_updates as f64);
    format!(
        "compute (products, forward + backward, per sequence of {t} tokens): generator {:.3} GFLOP + \
         discriminator {:.3} = {:.3} GFLOP, {:.3}x the masked LM's {:.3}.\n\
         {e_updates} updates x {batch} sequences = {:.1} TFLOP; the mlm example's {m_updates} updates: \
         {:.1} TFLOP (ratio {:.3})",
        g / 1e9,
        d / 1e9,
        (g + d) / 1e9,
        (g + d) / per_mlm,
        per_mlm / 1e9,
        total_e / 1e12,
        total_m / 1e12,
        total_e / total_m
    )
}
