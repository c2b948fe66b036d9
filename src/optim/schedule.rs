//! Learning-rate schedule: linear warmup, then cosine or linear decay to a floor.
//!
//! For the update with 0-based index `step`, out of `total` updates:
//!
//!   if step < warmup:  lr = peak * (step + 1) / warmup          (linear warmup)
//!   otherwise:         p  = min(1, (step - warmup) / max(1, total - 1 - warmup))
//!                      cosine: lr = floor + 0.5 (1 + cos(pi p)) (peak - floor)
//!                      linear: lr = floor + (1 - p) (peak - floor)
//!
//! So the first update already uses peak / warmup (not 0), the update at index `warmup` uses
//! `peak`, and the last update (index total - 1) uses exactly `floor`; later indices stay at
//! `floor`. Warmup with cosine decay is the schedule of Loshchilov & Hutter, 2017 ("SGDR",
//! without restarts) as used for GPT-3 (Brown et al., 2020, Appendix B); warmup with linear
//! decay is BERT's (Devlin et al., 2019, Appendix A.2). The formula is the project's PyTorch
//! reference script's, so the two produce the same numbers; it is computed in f64.

use std::f64::consts::PI;

/// The shape of the decay after warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decay {
    /// Half a cosine from `peak` down to `floor`.
    Cosine,
    /// A straight line from `peak` down to `floor`.
    Linear,
}

/// Warmup, then decay from `peak` to `floor` over the remaining updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// The learning rate reached at the end of warmup.
    pub peak: f32,
    /// Number of warmup updates (0 for none).
    pub warmup: usize,
    /// Total number of updates in the run.
    pub total: usize,
    /// The learning rate at the last update, and after it.
    pub floor: f32,
    /// Cosine or linear decay after warmup.
    pub decay: Decay,
}

impl LrSchedule {
    /// The learning rate for the update with 0-based index `step` (see the module docs).
    pub fn lr_at(&self, step: usize) -> f32 {
        let (peak, floor) = (self.peak as f64, self.floor as f64);
        if step < self.warmup {
            return (peak * (step + 1) as f64 / self.warmup as f64) as f32;
        }
        let span = (self.total as f64 - 1.0 - self.warmup as f64).max(1.0);
        let p = ((step - self.warmup) as f64 / span).min(1.0);
        let lr = match self.decay {
            Decay::Cosine => floor + 0.5 * (1.0 + (PI * p).cos()) * (peak - floor),
            Decay::Linear => floor + (1.0 - p) * (peak - floor),
        };
        lr as f32
    }

    /// Check the settings: `peak` positive and finite, `floor` in [0, peak], `total` at least 1.
    /// The error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.peak > 0.0 && self.peak.is_finite()) {
            return Err(format!("LrSchedule.peak = {} must be positive and finite", self.peak));
        }
        if !(self.floor >= 0.0 && self.floor <= self.peak) {
            return Err(format!(
                "LrSchedule.floor = {} must be in [0, peak = {}]",
                self.floor, self.peak
            ));
        }
        if self.total < 1 {
            return Err(format!("LrSchedule.total = {} must be at least 1", self.total));
        }
        Ok(())
    }
}
