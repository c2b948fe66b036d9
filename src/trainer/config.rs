//! How to train: the trainer's settings, and every setting of a run as a checkpoint stores it.

use crate::optim::{LrSchedule, Optimizer};
use crate::params::Params;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How to train; [`TrainConfig::validate`] checks it.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Number of updates.
    pub steps: usize,
    /// Learning rate per update.
    pub schedule: LrSchedule,
    /// Clip the global gradient norm to this; `None` disables clipping.
    pub grad_clip: Option<f32>,
    /// Print a progress line every this many updates.
    pub log_every: usize,
    /// Validate every this many updates (and before the first and after the last).
    pub eval_every: usize,
    /// Save a checkpoint every this many updates (and after the last).
    pub checkpoint_every: usize,
    /// Seeds every update's random draws.
    pub seed: u64,
    /// Where `checkpoint.safetensors`, `metrics.csv` and `loss.svg` go.
    pub out_dir: PathBuf,
    /// Continue from this checkpoint instead of starting at update 0.
    pub resume: Option<PathBuf>,
    /// Tokens one update sees, for tokens/s.
    pub tokens_per_step: usize,
    /// Print progress lines (tests turn them off).
    pub verbose: bool,
    /// Parameters clamped into a range after every update (CLIP's temperature); usually none.
    pub bounds: Vec<Bound>,
}

/// A parameter kept within `[min, max]`: after every optimizer step each of its values is
/// clamped, outside autograd (the clamp has no gradient, it only edits the stored value).
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The parameter's name, e.g. `clip.log_scale`.
    pub param: String,
    /// Lowest value allowed.
    pub min: f32,
    /// Highest value allowed.
    pub max: f32,
}

impl Bound {
    /// θ = min(max(θ, min), max) for every value of the parameter. Error: no such parameter.
    pub fn apply(&self, params: &mut Params) -> Result<(), String> {
        let id = params
            .find(&self.param)
            .ok_or_else(|| format!("TrainConfig: bounds name '{}', which is not a parameter", self.param))?;
        params.value_mut(id).mapv_inplace(|t| t.clamp(self.min, self.max));
        Ok(())
    }
}

impl TrainConfig {
    /// Check every field; the error names it.
    pub fn validate(&self) -> Result<(), String> {
        self.schedule.validate()?;
        for (name, v) in [
            ("steps", self.steps),
            ("log_every", self.log_every),
            ("eval_every", self.eval_every),
            ("checkpoint_every", self.checkpoint_every),
        ] {
            if v == 0 {
                return Err(format!("TrainConfig: {name} must be at least 1"));
            }
        }
        if let Some(c) = self.grad_clip {
            if !(c > 0.0 && c.is_finite()) {
                return Err(format!("TrainConfig: grad_clip {c} must be positive and finite"));
            }
        }
        for b in &self.bounds {
            if b.min.is_nan() || b.max.is_nan() || b.min > b.max {
                return Err(format!(
                    "TrainConfig: the bound on '{}' has min {} above max {}",
                    b.param, b.min, b.max
                ));
            }
        }
        Ok(())
    }

    /// The checkpoint file in `out_dir`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }

    /// The settings that shape the updates (`train.*`): steps, seed, schedule, clipping and bounds.
    /// Logging, validation and checkpoint intervals do not change the run and are left out.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let s = &self.schedule;
        let clip = self.grad_clip.map_or("none".to_string(), |c| c.to_string());
        [
            ("train.steps", self.steps.to_string()),
            ("train.seed", self.seed.to_string()),
            ("train.lr", s.peak.to_string()),
            ("train.warmup", s.warmup.to_string()),
            ("train.schedule_total", s.total.to_string()),
            ("train.min_lr", s.floor.to_string()),
            ("train.decay", format!("{:?}", s.decay).to_lowercase()),
            ("train.grad_clip", clip),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(
            self.bounds
                .iter()
                .map(|b| (format!("train.bound.{}", b.param), format!("{}..{}", b.min, b.max))),
        )
        .collect()
    }
}

/// Every setting of a run, as checkpoints store it and resume compares it: `metadata` (the
/// model's config and objective settings, the tokenizer, the data settings) with the trainer's
/// and the optimizer's own.
pub fn run_settings(
    config: &TrainConfig,
    optimizer: &Optimizer,
    params: &Params,
    metadata: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = metadata.clone();
    all.extend(config.settings());
    all.extend(optimizer.settings(params));
    all
}
