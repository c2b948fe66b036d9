//! The trainer: exact resume after an interruption, refusing a checkpoint made with other
//! settings (naming each), stopping on a non-finite loss or gradient norm without touching the
//! last good checkpoint, and its metrics files.

mod common;

use common::{
    fresh_dir, no_eval, resume_run_config, rewrite_checkpoint, tiny_tokenizer, tiny_training_config, TINY_VOCAB,
};
use microlm::cli::Flags;
use microlm::data::Batch;
use microlm::objectives::{CausalLm, MaskedLm};
use microlm::optim::{AdamW, Decay, LrSchedule, Optimizer, Sgd};
use microlm::recipe::Recipe;
use microlm::trainer::{request_stop, step_rng, train, TrainConfig};
use microlm::{checkpoint, CrossEntropy, Params, Tape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A model, its optimizer and its metadata, built the same way every time.
fn setup(sgd: bool) -> (Params, MaskedLm, Optimizer, BTreeMap<String, String>) {
    let mut params = Params::new();
    let model = MaskedLm::new(
        &mut params,
        &tiny_training_config(TINY_VOCAB),
        &tiny_tokenizer(),
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let optimizer = if sgd {
        Optimizer::Sgd(Sgd::new(&params, 0.1))
    } else {
        Optimizer::AdamW(AdamW::new(&params, 1e-3))
    };
    let mut meta = model.metadata();
    meta.extend(tiny_tokenizer().to_metadata());
    (params, model, optimizer, meta)
}

/// A learnable stream: each of 4 sequences counts up from a random start.
fn counting_batch(rng: &mut StdRng) -> Batch {
    let ids: Vec<usize> = (0..4)
        .flat_map(|_| {
            let s = rng.random_range(0..19);
            (0..16).map(move |i| 5 + (s + i) % 19)
        })
        .collect();
    Batch::new(ids, 4, 16)
}

/// The MLM loss of a counting batch; with `stop_after`, asks the trainer to stop (as Ctrl-C
/// does) during that many-th call.
fn loss_of_step(
    model: &MaskedLm,
    stop_after: Option<usize>,
) -> impl FnMut(&mut Tape, &Params, &mut StdRng) -> CrossEntropy + '_ {
    let mut calls = 0;
    move |tape, params, rng| {
        calls += 1;
        if Some(calls) == stop_after {
            request_stop();
        }
        model.loss(tape, params, &counting_batch(rng), rng)
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
    let dir_full = fresh_dir(&format!("full_{sgd}"));
    let full = train(
        &resume_run_config(2 * n, dir_full.clone()),
        &mut p_full,
        &mut opt_full,
        &meta,
        loss_of_step(&model, None),
        no_eval,
    )
    .unwrap();
    assert!(!full.interrupted);

    // The same run stopped during update N as Ctrl-C stops it, then resumed in a fresh start.
    let (mut p_half, model_half, mut opt_half, meta) = setup(sgd);
    let dir = fresh_dir(&format!("halves_{sgd}"));
    let first = train(
        &resume_run_config(2 * n, dir.clone()),
        &mut p_half,
        &mut opt_half,
        &meta,
        loss_of_step(&model_half, Some(n)),
        no_eval,
    )
    .unwrap();
    assert!(first.interrupted, "the stop request must end the run");
    assert_eq!(first.step, n);
    let (mut p_resumed, model_resumed, mut opt_resumed, meta) = setup(sgd);
    let mut resumed = resume_run_config(2 * n, dir.clone());
    resumed.resume = Some(dir.join("checkpoint.safetensors"));
    let second = train(
        &resumed,
        &mut p_resumed,
        &mut opt_resumed,
        &meta,
        loss_of_step(&model_resumed, None),
        no_eval,
    )
    .unwrap();

    assert_eq!((second.start, second.step), (n, 2 * n));
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
    assert_eq!(steps_of(&csv), steps_of(&full_csv));
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
fn a_checkpoint_with_other_settings_is_refused_naming_each() {
    let (mut params, model, mut opt, meta) = setup(false);
    let dir = fresh_dir("mismatch");
    let path = dir.join("checkpoint.safetensors");
    train(
        &resume_run_config(4, dir.clone()),
        &mut params,
        &mut opt,
        &meta,
        loss_of_step(&model, Some(2)),
        no_eval,
    )
    .unwrap();
    let resume = |config: TrainConfig, sgd: bool, edit: &dyn Fn(&mut BTreeMap<String, String>)| {
        let (mut p, m, mut o, mut meta) = setup(sgd);
        edit(&mut meta);
        let config = TrainConfig {
            resume: Some(path.clone()),
            ..config
        };
        train(&config, &mut p, &mut o, &meta, loss_of_step(&m, None), no_eval).unwrap_err()
    };
    let same = resume_run_config(4, dir.clone());
    let e = resume(same.clone(), false, &|m| {
        m.insert("config.layers".into(), "3".into());
    });
    assert!(e.contains("config.layers is 2 there, 3 here"), "{e}");
    let e = resume(
        TrainConfig {
            seed: 7,
            ..same.clone()
        },
        false,
        &|_| {},
    );
    assert!(e.contains("train.seed is 42 there, 7 here"), "{e}");
    let e = resume(same.clone(), true, &|_| {});
    assert!(e.contains("optim.name is adamw there, sgd here"), "{e}");
    // Two differences at once are both named.
    let mut other = same.clone();
    other.schedule.peak = 5e-3;
    other.grad_clip = None;
    let e = resume(other, false, &|_| {});
    assert!(
        e.contains("train.lr is 0.003 there, 0.005 here") && e.contains("train.grad_clip is 1 there, none here"),
        "{e}"
    );
    // The unchanged settings resume, and a finished run is not run again.
    let (mut p, m, mut o, meta) = setup(false);
    let r = train(
        &TrainConfig {
            resume: Some(path.clone()),
            ..same.clone()
        },
        &mut p,
        &mut o,
        &meta,
        loss_of_step(&m, None),
        no_eval,
    )
    .unwrap();
    assert_eq!((r.start, r.step), (2, 4));
    let (mut p, m, mut o, meta) = setup(false);
    let e = train(
        &TrainConfig {
            resume: Some(path),
            ..same
        },
        &mut p,
        &mut o,
        &meta,
        loss_of_step(&m, None),
        no_eval,
    )
    .unwrap_err();
    assert!(e.contains("at step 4") && e.contains("already complete"), "{e}");
}

/// A run through the shared example recipe on a small corpus, with these flags.
fn recipe_run(dir: &std::path::Path, args: &[&str], stop_after: Option<usize>) -> Result<(), String> {
    let corpus = dir.join("corpus.txt");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&corpus, "To be, or not to be, that is the question.\n".repeat(40)).unwrap();
    let corpus = corpus.display().to_string();
    let out = dir.display().to_string();
    let base = [
        ("--steps", "4"),
        ("--d-model", "16"),
        ("--heads", "2"),
        ("--layers", "1"),
        ("--seq-len", "16"),
        ("--batch", "2"),
        ("--eval-batches", "1"),
        ("--warmup", "1"),
        ("--corpus", &corpus),
        ("--out", &out),
    ];
    // The base flags, each unless `args` gives it, then `args`.
    let mut all: Vec<String> = Vec::new();
    for (flag, value) in base {
        if !args.contains(&flag) {
            all.extend([flag.to_string(), value.to_string()]);
        }
    }
    all.extend(args.iter().map(|s| s.to_string()));
    let mut flags = Flags::parse(all)?;
    let recipe = Recipe::read(&mut flags, Recipe::default())?;
    flags.finish()?;
    let data = recipe.load_data()?;
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &recipe.model_config(&data)?, &mut recipe.init_rng())?;
    let (train, val) = (data.train_windows()?, recipe.validation_set(&data)?);
    let mut calls = 0;
    let loss = |tape: &mut Tape, params: &Params, rng: &mut StdRng| {
        calls += 1;
        if Some(calls) == stop_after {
            request_stop();
        }
        model.loss(tape, params, &train.batch(recipe.batch, rng), rng)
    };
    recipe.train(&data, &mut params, &model.metadata(), loss, |p| model.evaluate(p, &val))?;
    Ok(())
}

#[test]
fn a_resume_with_a_changed_lr_or_batch_flag_is_refused_naming_it() {
    let dir = fresh_dir("recipe");
    recipe_run(&dir, &[], Some(2)).unwrap(); // stopped at step 2 of 4
    let ckpt = dir.join("checkpoint.safetensors").display().to_string();
    let e = recipe_run(&dir, &["--resume", &ckpt, "--lr", "5e-3"], None).unwrap_err();
    assert!(e.contains("train.lr is 0.001 there, 0.005 here"), "{e}");
    let e = recipe_run(&dir, &["--resume", &ckpt, "--batch", "8"], None).unwrap_err();
    assert!(e.contains("data.batch is 2 there, 8 here"), "{e}");
    assert!(!e.contains("train.lr"), "only the changed setting is named: {e}");
    let e = recipe_run(&dir, &["--resume", &ckpt, "--steps", "6"], None).unwrap_err();
    assert!(e.contains("train.steps is 4 there, 6 here"), "{e}");
    recipe_run(&dir, &["--resume", &ckpt], None).unwrap(); // the same flags continue
}

#[test]
fn a_nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint() {
    let (mut params, model, mut opt, meta) = setup(false);
    let dir = fresh_dir("nan");
    let mut cfg = resume_run_config(8, dir.clone());
    cfg.checkpoint_every = 2;
    let mut inner = loss_of_step(&model, None);
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
    let e = train(&cfg, &mut params, &mut opt, &meta, poisoned, no_eval).unwrap_err();
    assert!(e.contains("loss is NaN at step 5"), "{e}");
    // The checkpoint of step 4 is intact, holds the parameters as they were, and resumes.
    let (mut p2, _, mut opt2, _) = setup(false);
    let settings = microlm::trainer::run_settings(&cfg, &opt2, &p2, &meta);
    let step = checkpoint::load_training(&path, &mut p2, &mut opt2, &settings).unwrap();
    assert_eq!(step, 4);
    assert_eq!(
        bits(&p2),
        bits(&params),
        "the failed step must not have changed the parameters"
    );
}

#[test]
fn an_infinite_gradient_with_a_finite_loss_stops_before_the_update() {
    // L = sum sqrt(w) at w = 0: L = 0 is finite, dL/dw = 1 / (2 sqrt(0)) is infinite.
    let mut params = Params::new();
    let w = params.add("w", ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[3])).into_shared());
    let mut opt = Optimizer::AdamW(AdamW::new(&params, 1e-3));
    let before = bits(&params);
    let loss = |tape: &mut Tape, params: &Params, _: &mut StdRng| {
        let w = tape.param(params, w);
        let r = tape.sqrt(w);
        let l = tape.sum_all(r);
        CrossEntropy {
            mean: l,
            sum: l,
            count: 1,
        }
    };
    let mut cfg = resume_run_config(3, fresh_dir("inf_grad"));
    cfg.grad_clip = None;
    let e = train(&cfg, &mut params, &mut opt, &BTreeMap::new(), loss, no_eval).unwrap_err();
    assert!(e.contains("gradient norm is inf at step 1"), "{e}");
    assert_eq!(bits(&params), before, "no update may reach the parameters");
    assert!(!cfg.checkpoint_path().exists(), "nothing is saved");
}

#[test]
fn a_trained_checkpoint_loads_for_inference_with_the_same_predictions() {
    let (mut params, model, mut opt, meta) = setup(false);
    let dir = fresh_dir("inference");
    train(
        &resume_run_config(3, dir.clone()),
        &mut params,
        &mut opt,
        &meta,
        loss_of_step(&model, None),
        no_eval,
    )
    .unwrap();
    let (loaded, loaded_params, loaded_tokenizer) = MaskedLm::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(loaded_tokenizer, tiny_tokenizer());
    let x = Batch::new((5..21).collect(), 1, 16);
    let want = model.probabilities(&params, &x, &[2, 9]);
    let got = loaded.probabilities(&loaded_params, &x, &[2, 9]);
    assert_eq!(want, got);
}

/// A run of 2 updates with a checkpoint, and the settings a resume of it compares.
fn trained_checkpoint(name: &str, sgd: bool) -> (PathBuf, TrainConfig, BTreeMap<String, String>) {
    let (mut params, model, mut opt, meta) = setup(sgd);
    let dir = fresh_dir(name);
    let cfg = resume_run_config(2, dir.clone());
    train(&cfg, &mut params, &mut opt, &meta, loss_of_step(&model, None), no_eval).unwrap();
    let (p, _, o, _) = setup(sgd);
    let settings = microlm::trainer::run_settings(&cfg, &o, &p, &meta);
    (dir.join("checkpoint.safetensors"), cfg, settings)
}

/// `load_training` of `path` into a fresh model and optimizer: its error.
fn resume_err(path: &std::path::Path, sgd: bool, settings: &BTreeMap<String, String>) -> String {
    let (mut p, _, mut o, _) = setup(sgd);
    checkpoint::load_training(path, &mut p, &mut o, settings).unwrap_err()
}

#[test]
fn a_nan_moment_stops_the_run_naming_the_parameter_and_keeps_the_last_good_checkpoint() {
    let (path, cfg, _) = trained_checkpoint("nan_moment", false);
    let good = std::fs::read(&path).unwrap();
    // A fresh run into the same folder, with a NaN planted in one first moment.
    let (mut params, model, mut opt, meta) = setup(false);
    let name = "encoder.layers.1.feed_forward.linear1.weight";
    let shape = params.value(params.find(name).unwrap()).shape().to_vec();
    let mut state = BTreeMap::new();
    state.insert(
        format!("adamw.m.{name}"),
        microlm::Tensor::from_elem(shape.clone(), f32::NAN),
    );
    state.insert(format!("adamw.v.{name}"), microlm::Tensor::from_elem(shape, 0.0));
    opt.load_state(&params, 0, &state).unwrap();
    let mut cfg = TrainConfig { steps: 4, ..cfg };
    cfg.checkpoint_every = 1;
    let e = train(&cfg, &mut params, &mut opt, &meta, loss_of_step(&model, None), no_eval).unwrap_err();
    assert!(
        e.contains(&format!("parameter '{name}' holds NaN")) && e.contains("step 1"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the last good checkpoint must stay"
    );
}

#[test]
fn an_overflowing_learning_rate_ends_in_an_error_not_a_nan_validation() {
    let (mut params, model, mut opt, meta) = setup(false);
    let mut cfg = resume_run_config(1, fresh_dir("huge_lr"));
    cfg.schedule = LrSchedule {
        peak: 3e38,
        warmup: 1,
        total: 1,
        floor: 0.0,
        decay: Decay::Cosine,
    };
    let val = vec![counting_batch(&mut StdRng::seed_from_u64(7))];
    let e = train(
        &cfg,
        &mut params,
        &mut opt,
        &meta,
        loss_of_step(&model, None),
        |p: &Params| model.evaluate(p, &val),
    )
    .expect_err("lr = 3e38 must not end in success");
    assert!(e.contains("step 1"), "{e}");
    assert!(!cfg.checkpoint_path().exists(), "nothing may be saved: {e}");
}

#[test]
fn load_training_refuses_a_nan_tensor_or_an_unknown_tensor_naming_it() {
    let (path, _, settings) = trained_checkpoint("load_training_strict", false);
    let good = std::fs::read(&path).unwrap();
    for name in [
        "encoder.layers.0.self_attn.v_proj.bias",
        "adamw.v.encoder.layers.0.self_attn.v_proj.bias",
    ] {
        std::fs::write(&path, &good).unwrap();
        rewrite_checkpoint(&path, |c| {
            *c.tensors.get_mut(name).unwrap().iter_mut().next().unwrap() = f32::NAN;
        });
        let e = resume_err(&path, false, &settings);
        assert!(e.contains(&format!("'{name}' holds NaN")), "{e}");
    }
    std::fs::write(&path, &good).unwrap();
    rewrite_checkpoint(&path, |c| {
        c.tensors
            .insert("evil.extra.weight".into(), microlm::Tensor::from_elem(vec![2], 1.0));
    });
    let e = resume_err(&path, false, &settings);
    assert!(e.contains("'evil.extra.weight' is neither"), "{e}");
}

#[test]
fn a_resume_with_missing_optimizer_state_is_refused_naming_the_tensor() {
    let name = "encoder.layers.1.self_attn.out_proj.weight";
    for (sgd, missing) in [
        (false, format!("adamw.m.{name}")),
        (false, format!("adamw.v.{name}")),
        (true, format!("sgd.momentum.{name}")),
    ] {
        let (path, _, settings) = trained_checkpoint("missing_state", sgd);
        // Complete, it resumes.
        let (mut p, _, mut o, _) = setup(sgd);
        checkpoint::load_training(&path, &mut p, &mut o, &settings).unwrap();
        rewrite_checkpoint(&path, |c| {
            c.tensors.remove(&missing).unwrap();
        });
        let e = resume_err(&path, sgd, &settings);
        assert!(
            e.contains("is missing") && e.contains(&missing[..missing.len() - name.len()]),
            "{e}"
        );
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn a_parameter_that_never_had_a_gradient_resumes_without_state() {
    // Two parameters, only `used` in the loss: `unused` has no moments, legitimately.
    let mut params = Params::new();
    let used = params.add("used", microlm::Tensor::from_elem(vec![3], 1.0));
    params.add("unused", microlm::Tensor::from_elem(vec![3], 1.0));
    let mut opt = Optimizer::AdamW(AdamW::new(&params, 1e-2));
    let loss = |tape: &mut Tape, params: &Params, _: &mut StdRng| {
        let w = tape.param(params, used);
        let sq = tape.mul(w, w);
        let l = tape.sum_all(sq);
        CrossEntropy {
            mean: l,
            sum: l,
            count: 1,
        }
    };
    let cfg = resume_run_config(2, fresh_dir("unused_param"));
    train(&cfg, &mut params, &mut opt, &BTreeMap::new(), loss, no_eval).unwrap();
    let settings = microlm::trainer::run_settings(&cfg, &opt, &params, &BTreeMap::new());
    let ckpt = checkpoint::read(&cfg.checkpoint_path()).unwrap();
    assert_eq!(ckpt.metadata["optim.without_state"], "unused");
    assert!(!ckpt.tensors.contains_key("adamw.m.unused"));
    let mut p2 = params.clone();
    let mut o2 = Optimizer::AdamW(AdamW::new(&params, 1e-2));
    assert_eq!(
        checkpoint::load_training(&cfg.checkpoint_path(), &mut p2, &mut o2, &settings),
        Ok(2)
    );
}
