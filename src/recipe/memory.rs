//! How much memory a run of a recipe needs, estimated before anything is built, so that a
//! configuration too large for the machine is refused with the estimate instead of aborting on
//! an allocation.

use super::Recipe;

/// f32 values the autograd tape keeps per token, per layer and per unit of width during one
/// update (LayerNorm, Q/K/V, the attention output, the feed-forward's 4 d-wide hidden layer
/// before and after its activation, the residuals, and their gradients). Chosen so that the
/// estimate sits a little above the peak memory measured for the clm example at batch 48 x 128
/// (estimate 406 MB, peak resident 374 MB).
pub const ACTIVATION_FLOATS: f64 = 16.0;
/// f32 values per attention score per head and layer (the scores, their softmax, and both
/// gradients).
pub const ATTENTION_FLOATS: f64 = 4.0;
/// f32 values per output logit (the logits, their softmax, and both gradients).
pub const LOGIT_FLOATS: f64 = 4.0;

impl Recipe {
    /// Approximately how many parameters the toy model of this shape has, for a vocabulary of
    /// `vocab`: per layer 12 d^2 + 13 d (Q, K, V and output projections with biases, the
    /// feed-forward's d x 4d and 4d x d with biases, two LayerNorms), the final LayerNorm (2 d),
    /// the token embedding (vocab x d), an untied output projection (vocab x d) and its bias
    /// (vocab). Exact for the clm example's model; the mlm head adds d^2 + 3 d more.
    pub fn parameter_estimate(&self, vocab: usize) -> f64 {
        let (d, v) = (self.d_model as f64, vocab as f64);
        let per_layer = 12.0 * d * d + 13.0 * d;
        let output = if self.tie { 0.0 } else { v * d };
        self.layers as f64 * per_layer + 2.0 * d + v * d + output + v
    }

    /// The bytes one training run of this recipe needs, roughly, for a vocabulary of `vocab`:
    ///
    /// ```text
    /// bytes = 4 * ( 4 P                                    weights, gradients, AdamW's m and v
    ///             + batch * seq_len * d_model * layers * ACTIVATION_FLOATS
    ///             + batch * heads * seq_len^2 * layers * ATTENTION_FLOATS
    ///             + batch * seq_len * vocab * LOGIT_FLOATS )
    /// ```
    ///
    /// with P from [`Recipe::parameter_estimate`]; every value is an f32 (4 bytes). Computed in
    /// f64, so absurd flags give a huge number rather than an overflow.
    pub fn memory_estimate(&self, vocab: usize) -> f64 {
        let (b, t) = (self.batch as f64, self.seq_len as f64);
        let (d, layers) = (self.d_model as f64, self.layers as f64);
        let weights = 4.0 * self.parameter_estimate(vocab);
        let activations = b * t * d * layers * ACTIVATION_FLOATS;
        let attention = b * self.heads as f64 * t * t * layers * ATTENTION_FLOATS;
        let logits = b * t * vocab as f64 * LOGIT_FLOATS;
        4.0 * (weights + activations + attention + logits)
    }

    /// Refuse a configuration whose [`Recipe::memory_estimate`] exceeds `total_bytes` (the
    /// machine's memory; `None`, when it is not known, skips the check). The error gives the
    /// estimate in GB and the flags that drive it.
    pub fn check_memory(&self, vocab: usize, total_bytes: Option<f64>) -> Result<(), String> {
        let Some(total) = total_bytes else {
            return Ok(());
        };
        let need = self.memory_estimate(vocab);
        if need <= total {
            return Ok(());
        }
        let gb = |bytes: f64| bytes / 1e9;
        Err(format!(
            "this configuration needs about {:.1} GB, more than this machine's {:.1} GB of memory \
             (--batch {} x --seq-len {} x --d-model {} x --layers {} for the activations, \
             --seq-len squared x --heads {} for attention; see Recipe::memory_estimate): \
             lower --batch or --seq-len",
            gb(need),
            gb(total),
            self.batch,
            self.seq_len,
            self.d_model,
            self.layers,
            self.heads
        ))
    }
}

/// The machine's memory in bytes: `MemTotal` in `/proc/meminfo` (Linux), or `None` if it cannot
/// be read.
pub fn memory_total() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}
