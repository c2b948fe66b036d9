//! The training loop every objective shares. Per update s = 0, 1, ..., steps - 1 (the private function `update`):
//!
//!   lr_s = schedule(s)                          (linear warmup, then cosine or linear decay)
//!   L = loss of one batch                       (the objective's closure records it on a tape)
//!   g = dL/dθ                                   (the tape's backward, or the objective's own)
//!   g = g * min(1, clip / ||g||)                (global-norm clipping)
//!   θ = optimizer(θ, g, lr_s)
//!   θ = clamp(θ, min, max)                     (only parameters with a [`Bound`])
//!
//! Around it:
//! - a progress line every `log_every` updates: mean loss and gradient norm (before clipping)
//!   over the interval, learning rate, tokens/s, elapsed time and ETA;
//! - validation in evaluation mode before the first update, every `eval_every` updates and
//!   after the last;
//! - checkpoints every `checkpoint_every` updates, at the end, and on Ctrl-C or SIGTERM (the
//!   update in progress finishes, the run saves and returns `interrupted`);
//! - after the last update's checkpoint, until another run starts, Ctrl-C or SIGTERM ends the
//!   program at once (status 130): whatever a program does after training (its end-of-run
//!   analysis, pictures, samples) stops promptly, with the checkpoint already saved;
//! - with `resume`, the run continues from a checkpoint, which must have been made with exactly
//!   the same settings (the model's config, the tokenizer, the data and objective settings in
//!   `metadata`, and the trainer's and optimizer's own: see [`run_settings`]);
//! - metrics to `metrics.csv` and `loss.svg` in the output directory.
//!
//! **Randomness and exact resume.** Update s draws everything random (its batch, its masks, its
//! dropout) from one generator seeded with (seed, s), see [`step_rng`]. The random state of a run
//! at update s is therefore the pair (seed, s), which every checkpoint stores. Together with
//! the parameters and the optimizer's moments (stored as f32, bit for bit), resuming from
//! update s repeats exactly what an uninterrupted run does from s onwards. Validation must not
//! draw from a generator that lives across updates: its batches are a function of fixed seeds.

mod config;
mod evaluation;
mod signals;

pub use config::{run_settings, Bound, TrainConfig};
pub use evaluation::Evaluation;
pub use signals::request_stop;

use crate::checkpoint;
use crate::gradients::Gradients;
use crate::metrics::{MetricsLog, Record};
use crate::optim::{clip_grad_norm, Optimizer};
use crate::params::Params;
use crate::profile;
use crate::tape::{Tape, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::time::Instant;

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Updates done, counting those before a resume.
    pub step: usize,
    /// The update the run started from (0, or the checkpoint's).
    pub start: usize,
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

/// What one update measured.
struct Update {
    loss: f32,
    grad_norm: f32,
    lr: f32,
}

/// Update `step`, in the order of the formula at the top of this file. A non-finite loss or
/// gradient norm is an error naming the update, raised before any parameter changes.
fn update(
    config: &TrainConfig,
    step: usize,
    params: &mut Params,
    optimizer: &mut Optimizer,
    gradients_of_step: &mut impl FnMut(&Params, &mut StdRng) -> Result<(f32, Gradients), String>,
) -> Result<Update, String> {
    let lr = config.schedule.lr_at(step); // lr_s = schedule(s)
    optimizer.set_lr(lr);
    let (loss, mut grads) = gradients_of_step(params, &mut step_rng(config.seed, step))?; // L, g = dL/dθ
    let kept = "stopped without saving, so the last good checkpoint is kept";
    if !loss.is_finite() {
        return Err(format!("the training loss is {loss} at step {}; {kept}", step + 1));
    }
    let clock = Instant::now(); // for the profile, if it is on
    let grad_norm = match config.grad_clip {
        Some(c) => clip_grad_norm(&mut grads, c), // g = g min(1, c / ||g||)
        None => grads.global_norm(),
    };
    let clipped = Instant::now();
    if !grad_norm.is_finite() {
        return Err(format!("the gradient norm is {grad_norm} at step {}; {kept}", step + 1));
    }
    optimizer.step(params, &grads); // θ = optimizer(θ, g, lr_s)
    for bound in &config.bounds {
        bound.apply(params)?; // θ = clamp(θ, min, max)
    }
    if profile::enabled() {
        profile::add_forward("clip", clipped - clock, 0.0, 0);
        profile::add_forward("optimizer", clipped.elapsed(), 0.0, 0);
    }
    check_finite_params(params, step + 1)?;
    Ok(Update { loss, grad_norm, lr })
}

/// Every parameter holds only finite values after update `step` (1-based); otherwise an error
/// naming the first bad parameter and the update. The loop calls it after each update and
/// before each save, so a checkpoint never holds NaN or an infinity.
fn check_finite_params(params: &Params, step: usize) -> Result<(), String> {
    for id in params.ids() {
        if let Some(x) = params.value(id).iter().find(|x| !x.is_finite()) {
            return Err(format!(
                "parameter '{}' holds {x} after the update of step {step}; stopped without saving, so the last good checkpoint is kept",
                params.name(id)
            ));
        }
    }
    Ok(())
}

/// Validate at `step`, log the result and refuse a non-finite validation loss (the parameters
/// are finite but so large that the model's outputs overflow), naming the step.
fn validate_at(
    config: &TrainConfig,
    step: usize,
    log: &mut MetricsLog,
    t0: Instant,
    evaluate: &mut impl FnMut(&Params) -> Evaluation,
    params: &Params,
) -> Result<Evaluation, String> {
    let e = evaluate(params);
    record_eval(log, step, &e, t0.elapsed().as_secs_f64());
    if config.verbose {
        println!("validation at step {step}: {}", describe(&e));
    }
    log.write()?;
    if !e.loss.is_finite() {
        return Err(format!(
            "the validation loss is {} at step {step}; stopped without saving, so the last good checkpoint is kept",
            e.loss
        ));
    }
    Ok(e)
}

/// Train to `config.steps`, from update 0 or from `config.resume`.
///
/// - `loss_of_step(tape, params, rng)` draws one batch from `rng` and records its loss on `tape`.
/// - `evaluate(params)` measures the validation set in evaluation mode.
/// - `metadata` holds the model's config and objective settings, the tokenizer and the data
///   settings; each checkpoint stores it with the trainer's and optimizer's settings
///   ([`run_settings`]), and a resume refuses a checkpoint whose settings differ in any entry.
///
/// A non-finite loss or gradient norm stops the run with an error naming the update, before
/// anything is changed or saved, so the last good checkpoint stays as it was. So does a
/// non-finite parameter after an update (naming the parameter) and a non-finite validation
/// loss: validation at a step runs before that step's save.
pub fn train<L: Into<Var>>(
    config: &TrainConfig,
    params: &mut Params,
    optimizer: &mut Optimizer,
    metadata: &BTreeMap<String, String>,
    mut loss_of_step: impl FnMut(&mut Tape, &Params, &mut StdRng) -> L,
    evaluate: impl FnMut(&Params) -> Evaluation,
) -> Result<TrainReport, String> {
    let gradients_of_step = |params: &Params, rng: &mut StdRng| {
        let mut tape = Tape::new();
        let l: Var = loss_of_step(&mut tape, params, rng).into(); // L
        let loss = tape.scalar(l);
        // A non-finite L is refused by the update, so its backward is not worth running.
        let grads = if loss.is_finite() {
            tape.backward(l)
        } else {
            Gradients::default()
        };
        Ok((loss, grads)) // g = dL/dθ
    };
    train_by_gradients(config, params, optimizer, metadata, gradients_of_step, evaluate)
}

/// [`train`] for an objective that computes its gradients itself rather than with one tape's
/// backward: `gradients_of_step(params, rng)` returns L and g = dL/dθ for one batch drawn from
/// `rng` (gradient caching, `objectives/grad_cache.rs`, runs one backward per chunk of the
/// batch). An error it returns stops the run before anything changes.
pub fn train_by_gradients(
    config: &TrainConfig,
    params: &mut Params,
    optimizer: &mut Optimizer,
    metadata: &BTreeMap<String, String>,
    mut gradients_of_step: impl FnMut(&Params, &mut StdRng) -> Result<(f32, Gradients), String>,
    mut evaluate: impl FnMut(&Params) -> Evaluation,
) -> Result<TrainReport, String> {
    config.validate()?;
    if let Some(b) = config.bounds.iter().find(|b| params.find(&b.param).is_none()) {
        return Err(format!(
            "TrainConfig: bounds name '{}', which is not a parameter",
            b.param
        ));
    }
    let settings = run_settings(config, optimizer, params, metadata);
    let start = start_step(config, params, optimizer, &settings)?; // 0, or the checkpoint's
    std::fs::create_dir_all(&config.out_dir)
        .map_err(|e| format!("cannot create output directory {}: {e}", config.out_dir.display()))?;
    let title = format!("training loss, {}", config.out_dir.display());
    let mut log = MetricsLog::resume(&config.out_dir, &title, start)?;
    signals::run_starts(); // Ctrl-C and SIGTERM now stop the run after the current update

    let t0 = Instant::now();
    let (mut train_s, mut interval_s) = (0.0f64, 0.0f64);
    let mut interval: Vec<Update> = Vec::new();
    let mut last_loss = f32::NAN;
    let mut last_eval = None;
    let mut step = start;
    let save = |params: &Params, optimizer: &Optimizer, step: usize| {
        check_finite_params(params, step)?;
        checkpoint::save_training(&config.checkpoint_path(), params, optimizer, step, &settings)
    };
    if step % config.eval_every == 0 {
        last_eval = Some(validate_at(config, step, &mut log, t0, &mut evaluate, params)?);
    }
    while step < config.steps {
        let ts = Instant::now();
        let u = update(config, step, params, optimizer, &mut gradients_of_step)?;
        step += 1;
        last_loss = u.loss;
        if profile::enabled() {
            profile::add_step(ts.elapsed());
        }
        let dt = ts.elapsed().as_secs_f64();
        train_s += dt;
        interval_s += dt;
        interval.push(u);
        if step % config.log_every == 0 || step == config.steps {
            let elapsed = t0.elapsed().as_secs_f64();
            log.push(progress(config, step, start, &interval, interval_s, elapsed));
            interval.clear();
            interval_s = 0.0;
        }
        let interrupted = signals::stop_requested();
        // Validation comes before the save, so a run whose outputs overflow saves nothing; an
        // interrupted run validates this step when it resumes instead.
        if !interrupted && (step % config.eval_every == 0 || step == config.steps) {
            last_eval = Some(validate_at(config, step, &mut log, t0, &mut evaluate, params)?);
        }
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
    signals::run_ended(); // a signal from here on ends the program
    Ok(report(step, start, last_loss, last_eval, false, train_s, config, t0))
}

/// 0 for a new run; with `config.resume`, the checkpoint's step after restoring the parameters
/// and the optimizer's state, if its settings equal `settings` and the run is not complete.
fn start_step(
    config: &TrainConfig,
    params: &mut Params,
    optimizer: &mut Optimizer,
    settings: &BTreeMap<String, String>,
) -> Result<usize, String> {
    let Some(path) = &config.resume else { return Ok(0) };
    let start = checkpoint::load_training(path, params, optimizer, settings)?;
    if start >= config.steps {
        return Err(format!(
            "the checkpoint is at step {start}: this {}-step run is already complete",
            config.steps
        ));
    }
    if config.verbose {
        println!("resumed at step {start}");
    }
    Ok(start)
}

/// "loss 2.0404 | accuracy 0.4320", as the progress lines print a validation.
fn describe(e: &Evaluation) -> String {
    let acc = e.accuracy.map_or(String::new(), |a| format!(" | accuracy {a:.4}"));
    let extra: String = e.extra.iter().map(|(name, v)| format!(" | {name} {v:.4}")).collect();
    format!("loss {:.4}{acc}{extra}", e.loss)
}

/// The progress line over the updates of the last interval (printed if `verbose`), as a
/// metrics record.
fn progress(
    config: &TrainConfig,
    step: usize,
    start: usize,
    interval: &[Update],
    seconds: f64,
    elapsed: f64,
) -> Record {
    let n = interval.len() as f64;
    let mean = interval.iter().map(|u| u.loss as f64).sum::<f64>() / n;
    let norm = interval.iter().map(|u| u.grad_norm as f64).sum::<f64>() / n;
    let lr = interval.last().map_or(0.0, |u| u.lr);
    let tokens_per_s = n * config.tokens_per_step as f64 / seconds;
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
    Record {
        step,
        train_loss: Some(mean),
        lr: Some(lr as f64),
        tokens_per_s: Some(tokens_per_s),
        elapsed_s: Some(elapsed),
        ..Record::default()
    }
}

/// Add a validation result to the log, on the row of the same step if there is one.
fn record_eval(log: &mut MetricsLog, step: usize, e: &Evaluation, elapsed_s: f64) {
    let row = Record {
        step,
        val_loss: Some(e.loss),
        val_accuracy: e.accuracy,
        elapsed_s: Some(elapsed_s),
        extra: e.extra.clone(),
        ..Record::default()
    };
    match log.last_mut() {
        Some(last) if last.step == step => {
            last.val_loss = row.val_loss;
            last.val_accuracy = row.val_accuracy;
            last.extra = row.extra;
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
        start,
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
