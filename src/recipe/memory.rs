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
    /// [`Footprint::bytes`] of [`Recipe::footprint`].
    pub fn memory_estimate(&self, vocab: usize) -> f64 {
        self.footprint(vocab, self.seq_len, 0.0).bytes()
    }

    /// What one update of this recipe's model holds, for `positions` positions per sequence and
    /// `extra_parameters` beyond the toy model's ([`Recipe::parameter_estimate`]): a CLIP
    /// projection, say.
    pub fn footprint(&self, vocab: usize, positions: usize, extra_parameters: f64) -> Footprint {
        Footprint {
            parameters: self.parameter_estimate(vocab) + extra_parameters,
            batch: self.batch as f64,
            positions: positions as f64,
            d_model: self.d_model as f64,
            layers: self.layers as f64,
            heads: self.heads as f64,
            vocab: vocab as f64,
        }
    }

    /// Refuse a configuration whose [`Recipe::memory_estimate`] exceeds `total_bytes` (the
    /// machine's memory; `None`, when it is not known, skips the check). The error gives the
    /// estimate in GB and the flags that drive it.
    pub fn check_memory(&self, vocab: usize, total_bytes: Option<f64>) -> Result<(), String> {
        let sizes = format!("--seq-len {}", self.seq_len);
        self.check_memory_of(vocab, self.seq_len, &sizes, 0.0, total_bytes)
    }

    /// [`Recipe::check_memory`] for `positions` positions per sequence (set by `sizes`, in
    /// words: "--text-len 16 + 16 patches") and `extra_parameters`.
    pub fn check_memory_of(
        &self,
        vocab: usize,
        positions: usize,
        sizes: &str,
        extra_parameters: f64,
        total_bytes: Option<f64>,
    ) -> Result<(), String> {
        let drivers = format!(
            "--batch {} x {sizes} x --d-model {} x --layers {} for the activations, \
             the positions squared x --heads {} for attention",
            self.batch, self.d_model, self.layers, self.heads
        );
        self.footprint(vocab, positions, extra_parameters)
            .check(total_bytes, &drivers)
    }
}

/// The sizes that set how much memory one training update takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footprint {
    /// Parameters (each with a gradient and AdamW's two moments).
    pub parameters: f64,
    /// Sequences per update.
    pub batch: f64,
    /// Positions per sequence.
    pub positions: f64,
    /// Width.
    pub d_model: f64,
    /// Layers.
    pub layers: f64,
    /// Attention heads.
    pub heads: f64,
    /// Output classes per position (the vocabulary; a classifier's few classes).
    pub vocab: f64,
}

impl Footprint {
    /// The footprint of a model of `config` with `parameters` parameters, fed `batch` sequences
    /// of `positions` positions, with `outputs` output classes per position.
    pub fn of_config(
        config: &crate::nn::TransformerConfig,
        parameters: f64,
        batch: usize,
        positions: usize,
        outputs: usize,
    ) -> Footprint {
        Footprint {
            parameters,
            batch: batch as f64,
            positions: positions as f64,
            d_model: config.d_model as f64,
            layers: config.layers as f64,
            heads: config.heads as f64,
            vocab: outputs as f64,
        }
    }

    /// The bytes, roughly:
    ///
    /// ```text
    /// bytes = 4 * ( 4 P                                      weights, gradients, AdamW's m and v
    ///             + batch * positions * d_model * layers * ACTIVATION_FLOATS
    ///             + batch * heads * positions^2 * layers * ATTENTION_FLOATS
    ///             + batch * positions * vocab * LOGIT_FLOATS )
    /// ```
    ///
    /// Every value is an f32 (4 bytes). Computed in f64, so absurd sizes give a huge number
    /// rather than an overflow.
    pub fn bytes(&self) -> f64 {
        let (b, t) = (self.batch, self.positions);
        let weights = 4.0 * self.parameters;
        let activations = b * t * self.d_model * self.layers * ACTIVATION_FLOATS;
        let attention = b * self.heads * t * t * self.layers * ATTENTION_FLOATS;
        let logits = b * t * self.vocab * LOGIT_FLOATS;
        4.0 * (weights + activations + attention + logits)
    }

    /// Refuse a footprint over `total_bytes` (the machine's memory, [`memory_total`]; `None`
    /// skips the check), giving the estimate in GB and `drivers`, the flags behind it.
    pub fn check(&self, total_bytes: Option<f64>, drivers: &str) -> Result<(), String> {
        self.check_plus(0.0, total_bytes, drivers)
    }

    /// [`Footprint::check`] with `extra_bytes` held beside the update's tape (gradient
    /// caching's whole-batch embeddings and similarities, say).
    pub fn check_plus(&self, extra_bytes: f64, total_bytes: Option<f64>, drivers: &str) -> Result<(), String> {
        let Some(total) = total_bytes else {
            return Ok(());
        };
        let need = self.bytes() + extra_bytes;
        if need <= total {
            return Ok(());
        }
        Err(format!(
            "this configuration needs about {:.1} GB, more than this machine's {:.1} GB of memory \
             ({drivers}; see recipe::Footprint::bytes): lower the sizes",
            need / 1e9,
            total / 1e9,
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
