//! The training loop every objective shares. Per update s = 0, 1, ..., steps - 1:
//!
//!   lr_s = schedule(s)                          (linear warmup, then cosine or linear decay)
//!   L, g = loss and gradients of one batch      (the objective's closure)
//!   g = g * min(1, clip / ||g||)                (global-norm clipping)
//!   params = optimizer(params, g, lr_s)
//!
//! Around it:
//! - a progress line every `log_every` updates: mean loss and gradient norm (before clipping)
//!   over the interval, learning rate, tokens/s, elapsed time and ETA;
//! - validation in evaluation mode before the first update, every `eval_every` updates and
//!   after the last;
//! - checkpoints every `checkpoint_every` updates, at the end, and on Ctrl-C;
//! - metrics to `metrics.csv` and `loss.svg` in the output directory.
//!
//! **Randomness and exact resume.** Update s draws everything random (its batch, its masks, its
//! dropout) from one generator seeded with (seed, s), see [`step_rng`]. The random state of a run
//! at update s is therefore the pair (seed, s), which every checkpoint stores. Together with
//! the parameters and the optimizer's moments (stored as f32, bit for bit), resuming from
//! update s repeats exactly what an uninterrupted run does from s onwards.

use crate::checkpoint::{self, Checkpoint};
use crate::metrics::{MetricsLog, Record};
use crate::optim::{clip_grad_norm, LrSchedule, Optimizer};
use crate::{CrossEntropy, Params, Tape};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
    /// Tokens one update sees, for tokens/s.
    pub tokens_per_step: usize,
    /// Print progress lines (tests turn them off).
    pub verbose: bool,
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
        Ok(())
    }

    /// The checkpoint file in `out_dir`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }
}

/// What a validation pass measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss in nats.
    pub loss: f64,
    /// Accuracy, if the objective has one (masked-token accuracy for MLM).
    pub accuracy: Option<f64>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Updates done, counting those before a resume.
    pub step: usize,
    /// The training loss of the last update, bit for bit.
    pub last_loss: f32,
    /// The last validation.
    pub last_eval: Option<Evaluation>,
    /// True if Ctrl-C stopped the run (after saving a checkpoint).
    pub interrupted: bool,
    /// Mean training tokens per second (evaluation excluded).
    pub tokens_per_s: f64,
    /// Wall time of the loop, evaluations included.
    pub elapsed_s: f64,
}

/// The generator for update `step` of a run seeded `seed`: a ChaCha key made of the two numbers,
/// so every update has its own stream and resuming needs no generator state beyond (seed, step).
pub fn step_rng(seed: u64, step: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(step as u64).to_le_bytes());
    StdRng::from_seed(key)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Route Ctrl-C to a flag the loop checks after each update (once per process).
fn catch_ctrl_c() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // If another handler is already installed, Ctrl-C keeps its default behaviour.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// Save parameters, optimizer state, step, seed and `metadata` (the model's config, the
/// tokenizer) atomically to `path`.
pub fn save_checkpoint(
    path: &Path,
    params: &Params,
    optimizer: &Optimizer,
    step: usize,
    seed: u64,
    metadata: &BTreeMap<String, String>,
) -> Result<(), String> {
    let mut all = params.clone(); // shares storage, copies nothing
    for (name, tensor) in optimizer.state(params) {
        all.add(name, tensor);
    }
    let mut meta = metadata.clone();
    meta.insert("train.step".into(), step.to_string());
    meta.insert("train.seed".into(), seed.to_string());
    meta.insert("train.optimizer".into(), optimizer.name().to_string());
    checkpoint::save(path, &all, &meta).map_err(|e| e.to_string())
}

/// Restore a checkpoint written by [`save_checkpoint`] into `params` and `optimizer`, after
/// checking that every entry of `expected` (the config the caller built its model from) agrees
/// with the checkpoint's, and that it was trained with `seed` (the draws of update s come from
/// (seed, s), so only the same seed continues the run exactly); the error lists every
/// difference. Returns the step to continue from and the checkpoint's metadata.
pub fn load_checkpoint(
    path: &Path,
    params: &mut Params,
    optimizer: &mut Optimizer,
    expected: &BTreeMap<String, String>,
    seed: u64,
) -> Result<(usize, BTreeMap<String, String>), String> {
    let ckpt = checkpoint::read(path).map_err(|e| e.to_string())?;
    let mut expected = expected.clone();
    expected.insert("train.seed".into(), seed.to_string());
    check_metadata(path, &ckpt.metadata, &expected)?;
    let field = |k: &str| -> Result<String, String> {
        ckpt.metadata
            .get(k)
            .cloned()
            .ok_or_else(|| format!("checkpoint {}: no '{k}' in its metadata", path.display()))
    };
    let step: usize = field("train.step")?
        .parse()
        .map_err(|e| format!("checkpoint {}: train.step: {e}", path.display()))?;
    let saved_optimizer = field("train.optimizer")?;
    if saved_optimizer != optimizer.name() {
        return Err(format!(
            "checkpoint {}: it was trained with {saved_optimizer}, this run uses {}",
            path.display(),
            optimizer.name()
        ));
    }
    // Model tensors are the ones the parameter store names; the rest are optimizer state.
    let (model, state): (BTreeMap<_, _>, BTreeMap<_, _>) = ckpt
        .tensors
        .into_iter()
        .partition(|(name, _)| params.find(name).is_some());
    let model = Checkpoint {
        tensors: model,
        metadata: ckpt.metadata,
    };
    let metadata = checkpoint::assign(path, model, params).map_err(|e| e.to_string())?;
    optimizer
        .load_state(params, step as u64, &state)
        .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
    Ok((step, metadata))
}

/// Refuse a checkpoint whose metadata disagrees with `expected` on any key; the error lists
/// every difference.
pub fn check_metadata(
    path: &Path,
    found: &BTreeMap<String, String>,
    expected: &BTreeMap<String, String>,
) -> Result<(), String> {
    let differences: Vec<String> = expected
        .iter()
        .filter(|(key, want)| found.get(*key) != Some(*want))
        .map(|(key, want)| match found.get(key) {
            Some(have) => format!("{key} is {have} there, {want} here"),
            None => format!("{key} is missing there, {want} here"),
        })
        .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "checkpoint {} was made with another configuration than this run asks for: {}",
            path.display(),
            differences.join("; ")
        ))
    }
}

/// Train from update `start` (0, or the step a checkpoint returned) to `config.steps`.
///
/// - `loss_of_step(tape, params, rng)` draws one batch from `rng` and records its loss on `tape`.
/// - `evaluate(params)` measures the validation set in evaluation mode.
/// - `metadata` is saved in every checkpoint (the model's config and its tokenizer).
///
/// A non-finite loss or gradient norm stops the run with an error naming the update, before
/// anything is changed or saved, so the last good checkpoint stays as it was.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &TrainConfig,
    start: usize,
    params: &mut Params,
    optimizer: &mut Optimizer,
    metadata: &BTreeMap<String, String>,
    mut loss_of_step: impl FnMut(&mut Tape, &Params, &mut StdRng) -> CrossEntropy,
    mut evaluate: impl FnMut(&Params) -> Evaluation,
) -> Result<TrainReport, String> {
    config.validate()?;
    if start > config.steps {
        return Err(format!("cannot start at step {start} of a {}-step run", config.steps));
    }
    std::fs::create_dir_all(&config.out_dir)
        .map_err(|e| format!("cannot create output directory {}: {e}", config.out_dir.display()))?;
    let title = format!("training loss, {}", config.out_dir.display());
    let mut log = MetricsLog::resume(&config.out_dir, &title, start)?;
    catch_ctrl_c();
    INTERRUPTED.store(false, Ordering::SeqCst);

    let t0 = Instant::now();
    let (mut train_s, mut interval_s) = (0.0f64, 0.0f64);
    let mut interval_losses: Vec<f32> = Vec::new();
    let mut interval_norms: Vec<f32> = Vec::new();
    let mut last_loss = f32::NAN;
    let mut last_eval = None;
    let mut step = start;
    let save = |params: &Params, optimizer: &Optimizer, step: usize| {
        save_checkpoint(
            &config.checkpoint_path(),
            params,
            optimizer,
            step,
            config.seed,
            metadata,
        )
    };
    loop {
        if step % config.eval_every == 0 || step == config.steps {
            let e = evaluate(params);
            record_eval(&mut log, step, e, t0.elapsed().as_secs_f64());
            if config.verbose {
                let acc = e.accuracy.map_or(String::new(), |a| format!(" | accuracy {a:.4}"));
                println!("validation at step {step}: loss {:.4}{acc}", e.loss);
            }
            last_eval = Some(e);
            log.write()?;
        }
        if step == config.steps {
            break;
        }
        // One update.
        let ts = Instant::now();
        let lr = config.schedule.lr_at(step);
        optimizer.set_lr(lr);
        let mut tape = Tape::new();
        let mut rng = step_rng(config.seed, step);
        let ce = loss_of_step(&mut tape, params, &mut rng);
        let loss = tape.scalar(ce.mean);
        if !loss.is_finite() {
            return Err(format!(
                "the training loss is {loss} at step {}; stopped without saving, so the last good checkpoint is kept",
                step + 1
            ));
        }
        let mut grads = tape.backward(ce.mean);
        let norm = match config.grad_clip {
            Some(c) => clip_grad_norm(&mut grads, c),
            None => grads.global_norm(),
        };
        if !norm.is_finite() {
            return Err(format!(
                "the gradient norm is {norm} at step {}; stopped without saving, so the last good checkpoint is kept",
                step + 1
            ));
        }
        optimizer.step(params, &grads);
        step += 1;
        last_loss = loss;
        interval_losses.push(loss);
        interval_norms.push(norm);
        let dt = ts.elapsed().as_secs_f64();
        train_s += dt;
        interval_s += dt;

        if step % config.log_every == 0 || step == config.steps {
            let elapsed = t0.elapsed().as_secs_f64();
            let mean = interval_losses.iter().map(|&l| l as f64).sum::<f64>() / interval_losses.len() as f64;
            let tokens_per_s = (interval_losses.len() * config.tokens_per_step) as f64 / interval_s;
            let norm = interval_norms.iter().sum::<f32>() / interval_norms.len() as f32;
            let eta = elapsed / (step - start) as f64 * (config.steps - step) as f64;
            if config.verbose {
                println!(
                    "step {step:>5}/{} | loss {mean:.4} | lr {lr:.2e} | grad norm {norm:.2} | {:.1}k tok/s | {} elapsed | ETA {}",
                    config.steps,
                    tokens_per_s / 1e3,
                    clock(elapsed),
                    clock(eta)
                );
            }
            log.push(Record {
                step,
                train_loss: Some(mean),
                lr: Some(lr as f64),
                tokens_per_s: Some(tokens_per_s),
                elapsed_s: Some(elapsed),
                ..Record::default()
            });
            interval_losses.clear();
            interval_norms.clear();
            interval_s = 0.0;
        }
        let interrupted = INTERRUPTED.load(Ordering::SeqCst);
        if step % config.checkpoint_every == 0 || step == config.steps || interrupted {
            save(params, optimizer, step)?;
        }
        if interrupted {
            log.write()?;
            println!(
                "interrupted: saved step {step} to {} (continue with --resume)",
                config.checkpoint_path().display()
            );
            return Ok(report(step, start, last_loss, last_eval, true, train_s, config, t0));
        }
    }
    log.write()?;
    Ok(report(step, start, last_loss, last_eval, false, train_s, config, t0))
}

/// Add a validation result to the log, on the row of the same step if there is one.
fn record_eval(log: &mut MetricsLog, step: usize, e: Evaluation, elapsed_s: f64) {
    let row = Record {
        step,
        val_loss: Some(e.loss),
        val_accuracy: e.accuracy,
        elapsed_s: Some(elapsed_s),
        ..Record::default()
    };
    match log.last_mut() {
        Some(last) if last.step == step => {
            last.val_loss = row.val_loss;
            last.val_accuracy = row.val_accuracy;
        }
        _ => log.push(row),
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    step: usize,
    start: usize,
    last_loss: f32,
    last_eval: Option<Evaluation>,
    interrupted: bool,
    train_s: f64,
    config: &TrainConfig,
    t0: Instant,
) -> TrainReport {
    TrainReport {
        step,
        last_loss,
        last_eval,
        interrupted,
        tokens_per_s: ((step - start) * config.tokens_per_step) as f64 / train_s.max(1e-9),
        elapsed_s: t0.elapsed().as_secs_f64(),
    }
}

/// Seconds as m:ss (or h:mm:ss).
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
