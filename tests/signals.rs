//! SIGTERM (what `kill`, `timeout` and job schedulers send) stops a run as Ctrl-C does: the
//! update in progress finishes, a checkpoint is saved, and the report says `interrupted`. This is
//! a test binary of its own because a signal reaches the whole process, and would stop any other
//! run in it.

mod common;

use common::{fresh_dir, no_eval, short_run_config, tiny_encoder_config};
use microlm::checkpoint;
use microlm::data::Batch;
use microlm::nn::TransformerConfig;
use microlm::objectives::CausalLm;
use microlm::optim::{AdamW, Optimizer};
use microlm::trainer::{train, TrainConfig};
use microlm::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// A one-layer causal LM over 11 ids with its AdamW, the settings of a `steps`-update run into
/// a fresh directory `name` ([`short_run_config`]), and the batch every update reads: two rows
/// of 8 ids.
fn tiny_run(name: &str, steps: usize) -> (CausalLm, Params, Optimizer, TrainConfig, Batch) {
    let config = TransformerConfig {
        d_model: 16,
        layers: 1,
        d_ff: 32,
        max_len: 8,
        ..tiny_encoder_config(11)
    };
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &config, &mut StdRng::seed_from_u64(0)).unwrap();
    let optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
    let x = Batch::new((0..16).map(|i| i % 11).collect(), 2, 8);
    (
        model,
        params,
        optimizer,
        short_run_config(steps, fresh_dir(name), 16),
        x,
    )
}

#[test]
fn sigterm_saves_a_checkpoint_and_reports_an_interrupted_run() {
    let (model, mut params, mut optimizer, train_config, x) = tiny_run("signals", 10);
    let mut calls = 0;
    let loss = |tape: &mut _, params: &Params, rng: &mut StdRng| {
        calls += 1;
        if calls == 3 {
            // During update 3, this process receives SIGTERM, as from `kill <pid>`.
            let pid = std::process::id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
            assert!(sent.success(), "kill -TERM {pid} failed");
            std::thread::sleep(Duration::from_millis(300)); // the handler's thread sets the flag
        }
        model.loss(tape, params, &x, rng)
    };
    let report = train(
        &train_config,
        &mut params,
        &mut optimizer,
        &BTreeMap::new(),
        loss,
        no_eval,
    )
    .unwrap();
    assert!(report.interrupted, "SIGTERM must stop the run as Ctrl-C does");
    assert_eq!(report.step, 3, "the update in progress finishes, then the run stops");
    let saved = checkpoint::read(&train_config.checkpoint_path()).expect("a checkpoint was saved");
    assert_eq!(saved.metadata["train.step"], "3");
}

/// The environment variable that makes [`child_analysis_after_training`] run (in a child
/// process of [`a_signal_after_training_ends_the_program_promptly`]).
const CHILD: &str = "MICROLM_SIGNALS_CHILD";

/// In the child process only: a short run, then a long "end-of-run analysis" (5 s of sleeping)
/// during which the process sends itself SIGTERM. With the rule, the signal ends the process
/// with status 130 at once; without it, the handler would only set a flag nobody reads and the
/// analysis would run to its end (status 0).
#[test]
fn child_analysis_after_training() {
    if std::env::var(CHILD).is_err() {
        return; // run by the parent test below, in its own process
    }
    let (model, mut params, mut optimizer, train_config, x) = tiny_run("signals-after", 2);
    let report = train(
        &train_config,
        &mut params,
        &mut optimizer,
        &BTreeMap::new(),
        |tape: &mut _, p: &Params, rng: &mut StdRng| model.loss(tape, p, &x, rng),
        no_eval,
    )
    .unwrap();
    assert!(!report.interrupted);
    println!("analysis starts");
    let pid = std::process::id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100)); // the analysis
    }
    println!("analysis finished");
}

#[test]
fn a_signal_after_training_ends_the_program_promptly() {
    let exe = std::env::current_exe().unwrap();
    let t = std::time::Instant::now();
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_analysis_after_training",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("analysis starts"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("analysis finished"),
        "the analysis ran to its end after SIGTERM (status {:?})",
        out.status
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after training"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}
