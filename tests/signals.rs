//! SIGTERM (what `kill`, `timeout` and job schedulers send) stops a run as Ctrl-C does: the
//! update in progress finishes, a checkpoint is saved, and the report says `interrupted`. This is
//! a test binary of its own because a signal reaches the whole process, and would stop any other
//! run in it.

use microlm::checkpoint;
use microlm::data::Batch;
use microlm::nn::TransformerConfig;
use microlm::objectives::{CausalLm, Evaluation};
use microlm::optim::{AdamW, Decay, LrSchedule, Optimizer};
use microlm::trainer::{train, TrainConfig};
use microlm::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

#[test]
fn sigterm_saves_a_checkpoint_and_reports_an_interrupted_run() {
    let config = TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 1,
        d_ff: 32,
        max_len: 8,
        ..TransformerConfig::toy(11)
    };
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &config, &mut StdRng::seed_from_u64(0)).unwrap();
    let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
    let dir = std::env::temp_dir().join(format!("microlm_signals_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let train_config = TrainConfig {
        steps: 10,
        schedule: LrSchedule {
            peak: 1e-3,
            warmup: 1,
            total: 10,
            floor: 1e-4,
            decay: Decay::Cosine,
        },
        grad_clip: Some(1.0),
        log_every: 5,
        eval_every: 100,
        checkpoint_every: 100,
        seed: 1,
        out_dir: dir.clone(),
        resume: None,
        tokens_per_step: 16,
        verbose: false,
        bounds: Vec::new(),
    };
    let x = Batch::new((0..16).map(|i| i % 11).collect(), 2, 8);
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
    let no_eval = |_: &Params| Evaluation {
        loss: 1.0,
        accuracy: None,
        count: 0,
        extra: Vec::new(),
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
