//! Whole training runs are deterministic on several threads: two runs of a masked LM with the
//! same seed (dropout on) write bit-identical checkpoints, and a run stopped at step N and
//! resumed to 2N writes the same checkpoint as a straight run to 2N.
//!
//! Each run is `install`ed in an explicit 2-thread rayon pool, which does all the parallel work:
//! the row-wise kernels' blocks and the parts of every large product (each part one sgemm).
//!
//! The model is big enough that the row-wise kernels split into several parallel blocks:
//! 8 sequences of 128 tokens are 1024 rows; at d_model 64 that is 65 536 elements, 4 blocks of
//! `rows_per_task(64)` = 256 rows (`TASK_ELEMENTS` = 2^14), and the feed-forward's 1024 x 256
//! and the attention's 8 x 4 x 128 rows of 128 split into 16 and 32 blocks; every linear layer's
//! 1024-row product is cut into one part per thread. One more run, in a
//! 1-thread rayon pool, must also give the same bits (block sizes never depend on the thread
//! count).

mod common;

use common::{fresh_dir, in_pool, no_eval, resume_run_config, tiny_tokenizer, TINY_VOCAB};
use microlm::checkpoint::{self, Checkpoint};
use microlm::data::Batch;
use microlm::nn::TransformerConfig;
use microlm::objectives::MaskedLm;
use microlm::optim::{AdamW, Optimizer};
use microlm::trainer::{request_stop, train, TrainConfig, TrainReport};
use microlm::{kernels, Params};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

const BATCH: usize = 8;
const SEQ: usize = 128;
const D_MODEL: usize = 64;

fn config() -> TransformerConfig {
    TransformerConfig {
        heads: 4,
        layers: 2,
        max_len: SEQ,
        dropout: 0.1,
        ..TransformerConfig::toy(TINY_VOCAB).with_d_model(D_MODEL)
    }
}

/// A learnable stream: each sequence counts up from a random start.
fn counting_batch(rng: &mut StdRng) -> Batch {
    let ids: Vec<usize> = (0..BATCH)
        .flat_map(|_| {
            let s = rng.random_range(0..19);
            (0..SEQ).map(move |i| 5 + (s + i) % 19)
        })
        .collect();
    Batch::new(ids, BATCH, SEQ)
}

/// One run of `steps` updates into `dir`, in a fresh model and optimizer, optionally resumed
/// from `resume` and optionally stopped (as Ctrl-C stops it) during update `stop_at`.
fn run(threads: usize, dir: &Path, steps: usize, resume: Option<PathBuf>, stop_at: Option<usize>) -> TrainReport {
    let dir = dir.to_path_buf();
    in_pool(threads, move || {
        let mut params = Params::new();
        let model = MaskedLm::new(
            &mut params,
            &config(),
            &tiny_tokenizer(),
            true,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
        let mut meta = model.metadata();
        meta.extend(tiny_tokenizer().to_metadata());
        let tc = TrainConfig {
            eval_every: 1000,
            seed: 1234,
            resume,
            tokens_per_step: BATCH * SEQ,
            ..resume_run_config(steps, dir)
        };
        let mut calls = 0;
        let loss_of_step = |tape: &mut microlm::Tape, params: &Params, rng: &mut StdRng| {
            calls += 1;
            if Some(calls) == stop_at {
                request_stop();
            }
            model.loss(tape, params, &counting_batch(rng), rng)
        };
        train(&tc, &mut params, &mut optimizer, &meta, loss_of_step, no_eval).unwrap()
    })
}

fn read(dir: &Path) -> Checkpoint {
    checkpoint::read(&dir.join("checkpoint.safetensors")).unwrap()
}

/// Every tensor bit for bit (parameters and AdamW's moments), and the metadata map.
fn assert_same_bits(a: &Checkpoint, b: &Checkpoint, what: &str) {
    assert_eq!(a.metadata, b.metadata, "{what}: metadata differs");
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>(),
        "{what}: tensor names differ"
    );
    for (name, ta) in &a.tensors {
        let tb = &b.tensors[name];
        assert_eq!(ta.shape(), tb.shape(), "{what}: shape of {name}");
        let differ = ta
            .iter()
            .zip(tb.iter())
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(differ, 0, "{what}: {differ} of {} values of {name} differ", ta.len());
    }
}

#[test]
fn the_model_is_big_enough_to_split_rows_into_parallel_blocks() {
    let rows = BATCH * SEQ;
    assert!(rows * D_MODEL > kernels::TASK_ELEMENTS);
    assert!(rows * D_MODEL >= kernels::PAR_MIN_ELEMENTS);
    assert!(rows / kernels::rows_per_task(D_MODEL) >= 4);
}

#[test]
fn two_runs_with_the_same_seed_write_bit_identical_checkpoints() {
    let steps = 6;
    let (a, b, c) = (fresh_dir("a"), fresh_dir("b"), fresh_dir("c"));
    let ra = run(2, &a, steps, None, None);
    let rb = run(2, &b, steps, None, None);
    assert_eq!(ra.step, steps);
    assert_eq!(ra.last_loss.to_bits(), rb.last_loss.to_bits());
    let ckpt_a = read(&a);
    assert_eq!(ckpt_a.metadata["train.step"], steps.to_string());
    assert!(
        ckpt_a.tensors.keys().any(|n| n.starts_with("adamw.")),
        "no optimizer state saved"
    );
    assert_same_bits(&ckpt_a, &read(&b), "two 2-thread runs");
    // A 1-thread rayon pool: the same blocks, the same bits.
    let rc = run(1, &c, steps, None, None);
    assert_eq!(ra.last_loss.to_bits(), rc.last_loss.to_bits());
    assert_same_bits(&ckpt_a, &read(&c), "a 2-thread and a 1-thread run");
}

#[test]
fn a_run_stopped_at_n_and_resumed_to_2n_equals_a_straight_run() {
    let n = 3;
    let (full, halves) = (fresh_dir("full"), fresh_dir("halves"));
    let straight = run(2, &full, 2 * n, None, None);
    let first = run(2, &halves, 2 * n, None, Some(n));
    assert!(first.interrupted, "request_stop must end the run");
    assert_eq!(first.step, n);
    assert_eq!(read(&halves).metadata["train.step"], n.to_string());
    let second = run(2, &halves, 2 * n, Some(halves.join("checkpoint.safetensors")), None);
    assert_eq!((second.start, second.step), (n, 2 * n));
    assert_eq!(second.last_loss.to_bits(), straight.last_loss.to_bits());
    assert_same_bits(
        &read(&full),
        &read(&halves),
        "stopped at N and resumed vs straight to 2N",
    );
}
