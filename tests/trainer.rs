//! The trainer: exact resume, refusing a mismatched checkpoint, stopping on a non-finite loss
//! without touching the last good checkpoint, and its metrics files.

use microlm::nn::{Tokens, TransformerConfig};
use microlm::objectives::{mask_tokens, MaskedLm, MlmConfig, MlmVocab};
use microlm::optim::{AdamW, Decay, LrSchedule, Optimizer, Sgd};
use microlm::tokenizer::{CLS, MASK, PAD, SEP};
use microlm::trainer::{load_checkpoint, step_rng, train, Evaluation, TrainConfig};
use microlm::{CrossEntropy, Params, Tape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;

const VOCAB: usize = 24;

fn config() -> TransformerConfig {
    TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 2,
        d_ff: 32,
        max_len: 16,
        dropout: 0.1, // dropout on: resume must replay its draws too
        ..TransformerConfig::toy(VOCAB)
    }
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microlm_trainer_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `steps` updates of a schedule planned for `total` (a run may stop before its schedule ends,
/// as an interrupted one does).
fn train_config_of(steps: usize, total: usize, dir: PathBuf) -> TrainConfig {
    TrainConfig {
        steps,
        schedule: LrSchedule {
            peak: 3e-3,
            warmup: 2,
            total,
            floor: 1e-4,
            decay: Decay::Cosine,
        },
        grad_clip: Some(1.0),
        log_every: 2,
        eval_every: 3,
        checkpoint_every: 1000,
        seed: 42,
        out_dir: dir,
        tokens_per_step: 4 * 16,
        verbose: false,
    }
}

/// A model, its optimizer and its metadata, built the same way every time.
fn setup(sgd: bool) -> (Params, MaskedLm, Optimizer, BTreeMap<String, String>) {
    let mut params = Params::new();
    let model = MaskedLm::new(&mut params, &config(), &mut StdRng::seed_from_u64(0)).unwrap();
    let optimizer = if sgd {
        Optimizer::Sgd(Sgd::new(&params, 0.1))
    } else {
        Optimizer::AdamW(AdamW::new(&params, 1e-3))
    };
    (params, model, optimizer, config().to_metadata())
}

fn loss_of_step(model: &MaskedLm) -> impl FnMut(&mut Tape, &Params, &mut StdRng) -> CrossEntropy + '_ {
    let vocab = MlmVocab {
        size: VOCAB,
        mask: MASK,
        specials: vec![PAD, CLS, SEP, MASK],
    };
    move |tape, params, rng| {
        // A learnable stream: each sequence counts up from a random start.
        let ids: Vec<usize> = (0..4)
            .flat_map(|_| {
                let s = rng.random_range(0..19);
                (0..16).map(move |i| 5 + (s + i) % 19)
            })
            .collect();
        let batch = mask_tokens(&Tokens::new(ids, 4, 16), &vocab, &MlmConfig::default(), rng);
        model.loss(tape, params, &batch, rng)
    }
}

fn train_config(steps: usize, dir: PathBuf) -> TrainConfig {
    train_config_of(steps, steps, dir)
}

fn no_eval(_: &Params) -> Evaluation {
    Evaluation {
        loss: 1.0,
        accuracy: None,
    }
}

fn bits(params: &Params) -> Vec<u32> {
    params
        .ids()
        .flat_map(|id| params.value(id).iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .collect()
}

fn resume_is_exact(sgd: bool) {
    let n = 5;
    // 2N steps in one run.
    let (mut p_full, model, mut opt_full, meta) = setup(sgd);
    let dir_full = out_dir(&format!("full_{sgd}"));
    let full = train(
        &train_config(2 * n, dir_full.clone()),
        0,
        &mut p_full,
        &mut opt_full,
        &meta,
        loss_of_step(&model),
        no_eval,
    )
    .unwrap();

    // N steps, then a fresh process-like start from the checkpoint, then N more.
    let (mut p_half, model_half, mut opt_half, meta) = setup(sgd);
    let dir = out_dir(&format!("halves_{sgd}"));
    let first = train(
        &train_config_of(n, 2 * n, dir.clone()),
        0,
        &mut p_half,
        &mut opt_half,
        &meta,
        loss_of_step(&model_half),
        no_eval,
    )
    .unwrap();
    assert_eq!(first.step, n);
    let (mut p_resumed, model_resumed, mut opt_resumed, meta) = setup(sgd);
    let (start, _) = load_checkpoint(
        &dir.join("checkpoint.safetensors"),
        &mut p_resumed,
        &mut opt_resumed,
        &meta,
        42,
    )
    .unwrap();
    assert_eq!(start, n);
    let second = train(
        &train_config(2 * n, dir.clone()),
        start,
        &mut p_resumed,
        &mut opt_resumed,
        &meta,
        loss_of_step(&model_resumed),
        no_eval,
    )
    .unwrap();

    assert_eq!(second.step, 2 * n);
    assert_eq!(
        second.last_loss.to_bits(),
        full.last_loss.to_bits(),
        "final loss {} vs {}",
        second.last_loss,
        full.last_loss
    );
    assert_eq!(bits(&p_resumed), bits(&p_full), "parameters differ after resume");
    // The resumed run's metrics continue the first half's.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let full_csv = std::fs::read_to_string(dir_full.join("metrics.csv")).unwrap();
    let steps_of = |s: &str| {
        s.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // The same rows, plus the one the first half logged and validated at its last step.
    let mut split_steps = steps_of(&csv);
    assert!(split_steps.contains(&n.to_string()));
    split_steps.retain(|s| *s != n.to_string());
    assert_eq!(split_steps, steps_of(&full_csv));
    assert!(std::fs::read_to_string(dir.join("loss.svg"))
        .unwrap()
        .contains("<polyline"));
}

#[test]
fn resume_with_adamw_matches_an_uninterrupted_run_bit_for_bit() {
    resume_is_exact(false);
}

#[test]
fn resume_with_sgd_matches_an_uninterrupted_run_bit_for_bit() {
    resume_is_exact(true);
}

#[test]
fn step_rngs_differ_by_step_and_seed_and_repeat() {
    let draw = |seed, step| step_rng(seed, step).random::<u64>();
    assert_eq!(draw(1, 5), draw(1, 5));
    assert_ne!(draw(1, 5), draw(1, 6));
    assert_ne!(draw(1, 5), draw(2, 5));
}

#[test]
fn a_checkpoint_with_another_config_is_refused_by_name() {
    let (mut params, model, mut opt, meta) = setup(false);
    let dir = out_dir("mismatch");
    train(
        &train_config(2, dir.clone()),
        0,
        &mut params,
        &mut opt,
        &meta,
        loss_of_step(&model),
        no_eval,
    )
    .unwrap();
    let (mut p2, _, mut opt2, mut other) = setup(false);
    other.insert("config.layers".into(), "3".into());
    let e = load_checkpoint(&dir.join("checkpoint.safetensors"), &mut p2, &mut opt2, &other, 42).unwrap_err();
    assert!(e.contains("config.layers is 2 there, 3 here"), "{e}");
    let (mut p4, _, mut opt4, meta) = setup(false);
    let e = load_checkpoint(&dir.join("checkpoint.safetensors"), &mut p4, &mut opt4, &meta, 7).unwrap_err();
    assert!(e.contains("train.seed is 42 there, 7 here"), "{e}");
    let (mut p3, _, mut sgd, meta) = setup(true);
    let e = load_checkpoint(&dir.join("checkpoint.safetensors"), &mut p3, &mut sgd, &meta, 42).unwrap_err();
    assert!(e.contains("adamw") && e.contains("sgd"), "{e}");
}

#[test]
fn a_nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint() {
    let (mut params, model, mut opt, meta) = setup(false);
    let dir = out_dir("nan");
    let mut cfg = train_config(8, dir.clone());
    cfg.checkpoint_every = 2;
    let mut inner = loss_of_step(&model);
    let mut calls = 0;
    let poisoned = |tape: &mut Tape, params: &Params, rng: &mut StdRng| {
        calls += 1;
        let ce = inner(tape, params, rng);
        if calls == 5 {
            let nan = tape.mul_scalar(ce.mean, f32::NAN);
            return CrossEntropy { mean: nan, ..ce };
        }
        ce
    };
    let path = dir.join("checkpoint.safetensors");
    let e = train(&cfg, 0, &mut params, &mut opt, &meta, poisoned, no_eval).unwrap_err();
    assert!(e.contains("at step 5"), "{e}");
    // The checkpoint of step 4 is intact and loads.
    let (mut p2, _, mut opt2, meta) = setup(false);
    let (step, _) = load_checkpoint(&path, &mut p2, &mut opt2, &meta, 42).unwrap();
    assert_eq!(step, 4);
    assert_eq!(
        bits(&p2),
        bits(&params),
        "the failed step must not have changed the parameters"
    );
}

#[test]
fn a_trained_checkpoint_loads_for_inference_with_the_same_predictions() {
    let (mut params, model, mut opt, _) = setup(false);
    let dir = out_dir("inference");
    let mut meta = model.metadata();
    let tokenizer =
        microlm::tokenizer::Tokenizer::Char(microlm::tokenizer::CharTokenizer::from_text("abcdefghijklmnopqrs"));
    meta.extend(tokenizer.to_metadata());
    train(
        &train_config(3, dir.clone()),
        0,
        &mut params,
        &mut opt,
        &meta,
        loss_of_step(&model),
        no_eval,
    )
    .unwrap();
    let (loaded, loaded_params, loaded_tokenizer) = MaskedLm::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(loaded_tokenizer, tokenizer);
    let x = Tokens::new((5..21).collect(), 1, 16);
    let want = model.probabilities(&params, &x, &[2, 9]);
    let got = loaded.probabilities(&loaded_params, &x, &[2, 9]);
    assert_eq!(want, got);
}
