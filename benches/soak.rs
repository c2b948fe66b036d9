//! Soak test: train the masked-LM example's model for many steps and watch the resident memory.
//! A leak of even a few KB per step (a tape not freed, a cache that grows, a metrics buffer kept
//! forever) shows as RSS that keeps climbing long after the allocator's pools have warmed up.
//!
//!   cargo bench --bench soak                                  # toy MLM, 10,000 steps
//!   SOAK_STEPS=3000 SOAK_D_MODEL=64 SOAK_LAYERS=2 SOAK_BATCH=8 SOAK_SEQ=64 cargo bench --bench soak
//!
//! Environment (defaults are the `mlm` example's recipe): `SOAK_STEPS` (10000), `SOAK_D_MODEL`
//! (128), `SOAK_LAYERS` (4), `SOAK_HEADS` (4), `SOAK_BATCH` (32), `SOAK_SEQ` (128),
//! `SOAK_DROPOUT` (0.1, so dropout's masks are exercised too), `SOAK_EVAL_EVERY` (1000),
//! `SOAK_EVAL_BATCHES` (5), `SOAK_TOLERANCE_MB` (4), and `MICROLM_THREADS`. Validation runs
//! every `SOAK_EVAL_EVERY` steps and a checkpoint is written every 500, so those paths are
//! soaked as well. It prints VmRSS (from /proc/self/status) every 500 steps and a verdict:
//! the growth from step 1000 (or from the first sample after the first quarter of the run, if
//! shorter) to the end, flat if within `SOAK_TOLERANCE_MB`.

use microlm::objectives::MaskedLm;
use microlm::recipe::Recipe;
use microlm::trainer::train;
use microlm::Params;
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a valid value")),
        Err(_) => default,
    }
}

/// VmRSS in KB, from /proc/self/status (None where there is no procfs).
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; there are no other arguments.
    let threads = microlm::init_threads_from_env();
    // As the other benches and the examples do: on a worker of rayon's pool, so parallel loops
    // do not hand off.
    microlm::threads::on_pool(|| run(threads));
}

fn run(threads: usize) {
    let steps: usize = env("SOAK_STEPS", 10_000);
    let every = 500;
    let recipe = Recipe {
        steps,
        d_model: env("SOAK_D_MODEL", 128),
        layers: env("SOAK_LAYERS", 4),
        heads: env("SOAK_HEADS", 4),
        batch: env("SOAK_BATCH", 32),
        seq_len: env("SOAK_SEQ", 128),
        dropout: env("SOAK_DROPOUT", 0.1),
        eval_every: env("SOAK_EVAL_EVERY", 1000),
        eval_batches: env("SOAK_EVAL_BATCHES", 5),
        out: std::env::temp_dir().join(format!("microlm_soak_{}", std::process::id())),
        ..Recipe::default()
    };
    let tolerance_mb: f64 = env("SOAK_TOLERANCE_MB", 4.0);
    recipe.check().unwrap();
    let _ = std::fs::remove_dir_all(&recipe.out);

    let data = recipe.load_data().unwrap();
    let mut params = Params::new();
    let config = recipe.model_config(&data).unwrap();
    let model = MaskedLm::new(&mut params, &config, &data.tokenizer, true, &mut recipe.init_rng()).unwrap();
    let windows = data.train_windows().unwrap();
    let val = recipe.validation_set(&data).unwrap();
    let mut optimizer = recipe.optimizer(&params);
    let mut metadata = model.metadata();
    metadata.extend(recipe.data_settings(&data));
    let mut tc = recipe.train_config();
    tc.log_every = every;
    tc.verbose = false;
    println!(
        "soak: d_model {}, {} layers, {} heads, batch {} x {}, dropout {}, {} parameters, {steps} steps, {threads} threads",
        recipe.d_model,
        recipe.layers,
        recipe.heads,
        recipe.batch,
        recipe.seq_len,
        recipe.dropout,
        params.num_elements()
    );

    // (completed steps, RSS in KB), sampled as update `step + 1` begins.
    let mut samples: Vec<(usize, u64)> = Vec::new();
    let mut calls = 0usize;
    let t0 = Instant::now();
    let report = train(
        &tc,
        &mut params,
        &mut optimizer,
        &metadata,
        |tape, params, rng| {
            let done = calls;
            calls += 1;
            if done.is_multiple_of(every) {
                if let Some(kb) = rss_kb() {
                    println!(
                        "step {done:>6}  RSS {:>8.1} MB  ({:.0} s)",
                        mb(kb),
                        t0.elapsed().as_secs_f64()
                    );
                    samples.push((done, kb));
                }
            }
            model.loss(tape, params, &windows.batch(recipe.batch, rng), rng)
        },
        |params| model.evaluate(params, &val),
    )
    .unwrap();
    if let Some(kb) = rss_kb() {
        println!(
            "step {:>6}  RSS {:>8.1} MB  ({:.0} s, final loss {:.4})",
            report.step,
            mb(kb),
            t0.elapsed().as_secs_f64(),
            report.last_loss
        );
        samples.push((report.step, kb));
    }
    let _ = std::fs::remove_dir_all(&recipe.out);

    // The verdict: growth after the warm-up of the allocator's pools.
    let from_step = if steps >= 2000 { 1000 } else { steps / 4 };
    let (Some(&(s0, first)), Some(&(s1, last))) = (samples.iter().find(|(s, _)| *s >= from_step), samples.last())
    else {
        println!("verdict: no RSS samples (no /proc/self/status?)");
        return;
    };
    let growth = mb(last) - mb(first);
    let peak = samples.iter().map(|&(_, kb)| kb).max().unwrap_or(last);
    let per_1k = if s1 > s0 {
        growth * 1000.0 / (s1 - s0) as f64
    } else {
        0.0
    };
    let verdict = if growth.abs() <= tolerance_mb {
        "FLAT"
    } else {
        "GROWING"
    };
    println!(
        "verdict: {verdict}: RSS {:.1} MB at step {s0} -> {:.1} MB at step {s1}: {growth:+.1} MB \
         ({per_1k:+.2} MB per 1000 steps; peak {:.1} MB; tolerance {tolerance_mb} MB)",
        mb(first),
        mb(last),
        mb(peak)
    );
}
