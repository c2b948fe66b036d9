//! CLIP (`objectives/clip.rs`) against `docs/objectives.md` §6b: the worked example and its
//! invariance to the rows' lengths, the loss against an f64 implementation written here, the
//! clamp of the log-scale (by itself and inside the trainer), the N >= 2 rule, gradcheck, the
//! gradient reaching both towers, and the perfectly aligned case.

mod common;

use common::{fresh_dir, no_eval, short_run_config, tiny_encoder_config};
use microlm::data::shapes::{self, Image};
use microlm::gradcheck::{gradcheck, GradcheckConfig};
use microlm::objectives::clip::{clip_loss, Clip, INITIAL_LOG_SCALE, MAX_LOG_SCALE};
use microlm::objectives::image_text::ImageTextBatch;
use microlm::optim::{Decay, LrSchedule, Optimizer, Sgd};
use microlm::tokenizer::{Tokenizer, WordTokenizer};
use microlm::trainer::{train, TrainConfig};
use microlm::{Params, Tape, Var};
use ndarray::{array, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// L from constant features and log-scale, on a fresh tape.
fn loss_of(i: ArrayD<f32>, t: ArrayD<f32>, log_scale: f32) -> Result<f32, String> {
    let mut tape = Tape::new();
    let (i, t) = (tape.constant(i), tape.constant(t));
    let ls = tape.constant(ArrayD::from_elem(IxDyn(&[1]), log_scale));
    let l = clip_loss(&mut tape, i, t, ls)?;
    Ok(tape.scalar(l))
}

/// The loss written out again in f64: normalise the rows (|x| + 1e-8, as the cosine does),
/// logits_ij = e^t Î_i·T̂_j, and the mean of the two row-wise cross-entropies with the diagonal
/// as targets.
fn clip_f64(i: &ArrayD<f32>, t: &ArrayD<f32>, log_scale: f64) -> f64 {
    let unit = |x: &ArrayD<f32>| -> Vec<Vec<f64>> {
        x.outer_iter()
            .map(|r| {
                let norm = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() + 1e-8;
                r.iter().map(|&v| v as f64 / norm).collect()
            })
            .collect()
    };
    let (a, b) = (unit(i), unit(t));
    let n = a.len();
    let s = log_scale.exp();
    let logit = |r: usize, c: usize| s * a[r].iter().zip(&b[c]).map(|(x, y)| x * y).sum::<f64>();
    let ce = |row: Vec<f64>, y: usize| {
        let top = row.iter().cloned().fold(f64::MIN, f64::max);
        top + row.iter().map(|v| (v - top).exp()).sum::<f64>().ln() - row[y]
    };
    let image_to_text: f64 = (0..n)
        .map(|r| ce((0..n).map(|c| logit(r, c)).collect(), r))
        .sum::<f64>()
        / n as f64;
    let text_to_image: f64 = (0..n)
        .map(|c| ce((0..n).map(|r| logit(r, c)).collect(), c))
        .sum::<f64>()
        / n as f64;
    0.5 * (image_to_text + text_to_image)
}

/// §6b: N = 2, s = 1/0.07, I = ((1,0),(0,1)), T = ((1,0),(1,0)). logits = [[s, s], [0, 0]]:
/// image to text costs ln 2 per row; the transpose [[s, 0], [s, 0]] costs ln(1 + e^-s) and
/// s + ln(1 + e^-s), mean s/2 + ln(1 + e^-s) = 7.1428578; L = 3.9180025. Rows rescaled by
/// positive factors give the same L.
#[test]
fn worked_example_and_scale_invariance() {
    let s = 1.0 / 0.07f64;
    let t2i = s / 2.0 + (-s).exp().ln_1p();
    assert!((t2i - 7.1428578).abs() < 1e-6, "{t2i}");
    let want = 0.5 * (std::f64::consts::LN_2 + t2i);
    assert!((want - 3.9180025).abs() < 1e-6, "{want}");
    let log_scale = (1.0 / 0.07f64).ln() as f32;
    let i = array![[1.0f32, 0.0], [0.0, 1.0]].into_dyn();
    let t = array![[1.0f32, 0.0], [1.0, 0.0]].into_dyn();
    let l = loss_of(i.clone(), t.clone(), log_scale).unwrap();
    assert!((l as f64 - want).abs() < 1e-5, "{l} vs {want}");
    let i2 = array![[3.0f32, 0.0], [0.0, 0.25]].into_dyn();
    let t2 = array![[0.5f32, 0.0], [7.0, 0.0]].into_dyn();
    let l2 = loss_of(i2, t2, log_scale).unwrap();
    assert!((l2 - l).abs() < 1e-5, "{l2} vs {l}");
    // The two directions differ: swapping I and T swaps them, and L is their mean.
    let swapped = loss_of(t, i, log_scale).unwrap();
    assert!((swapped - l).abs() < 1e-5);
}

/// On random features and several log-scales, L equals the f64 implementation above.
#[test]
fn loss_matches_an_independent_implementation() {
    let mut rng = StdRng::seed_from_u64(1);
    for (n, e, log_scale) in [(2, 3, 0.0f32), (3, 4, 1.0), (5, 6, 2.659_26), (4, 2, 4.6)] {
        let i = ArrayD::from_shape_fn(IxDyn(&[n, e]), |_| rng.random_range(-1.0f32..1.0));
        let t = ArrayD::from_shape_fn(IxDyn(&[n, e]), |_| rng.random_range(-1.0f32..1.0));
        let got = loss_of(i.clone(), t.clone(), log_scale).unwrap() as f64;
        let want = clip_f64(&i, &t, log_scale as f64);
        assert!(
            (got - want).abs() < 1e-5 * want.max(1.0),
            "N {n}, t {log_scale}: {got} vs {want}"
        );
    }
}

/// ln(1/0.07) and ln 100 in f64, rounded to f32, are the constants; the bound clamps t = 5 to
/// ln 100 = 4.6051702 and t = -1 to 0, and leaves 3 alone; a name that is not a parameter is an
/// error.
#[test]
fn the_clamp_of_the_log_scale() {
    let t0 = (1.0 / 0.07f64).ln();
    assert!(
        (INITIAL_LOG_SCALE as f64 - t0).abs() < 1e-6,
        "{INITIAL_LOG_SCALE} vs {t0}"
    );
    assert_eq!(MAX_LOG_SCALE, 100f64.ln() as f32);
    let bound = Clip::bound();
    assert_eq!(bound.param, "clip.log_scale");
    assert_eq!((bound.min, bound.max), (0.0, MAX_LOG_SCALE));
    let mut params = Params::new();
    let id = params.add(
        "clip.log_scale",
        ArrayD::from_shape_vec(IxDyn(&[3]), vec![5.0f32, -1.0, 3.0]).unwrap(),
    );
    let other = params.add("other", ArrayD::from_elem(IxDyn(&[1]), 7.0f32));
    bound.apply(&mut params).unwrap();
    let v: Vec<f32> = params.value(id).iter().copied().collect();
    assert_eq!(v, [MAX_LOG_SCALE, 0.0, 3.0]);
    assert!((v[0] - 4.6051702).abs() < 1e-6);
    assert_eq!(params.value(other)[[0]], 7.0, "the bound touched another parameter");
    assert!(Clip::bound().apply(&mut Params::new()).is_err());
}

/// Inside `train`: plain SGD at lr 0.1 on L = ∓10 t moves t by ±1 per step, so without the
/// clamp t would go 2.659, 3.659, 4.659, ... (or below 0). The values the loss sees at each
/// step show the clamp after every step: 2.659, 3.659, then ln 100 exactly from the third step
/// on; going down, 2.659, 1.659, 0.659, then 0.
#[test]
fn the_trainer_clamps_after_every_step() {
    for push in [-10.0f32, 10.0] {
        let mut params = Params::new();
        let id = params.add("clip.log_scale", ArrayD::from_elem(IxDyn(&[1]), INITIAL_LOG_SCALE));
        let mut sgd = Sgd::new(&params, 0.1);
        sgd.momentum = 0.0;
        let mut optimizer = Optimizer::Sgd(sgd);
        let (steps, dir) = (6, fresh_dir(&format!("clip-trainer-{push}")));
        let config = TrainConfig {
            schedule: LrSchedule {
                peak: 0.1,
                warmup: 0,
                total: steps,
                floor: 0.1,
                decay: Decay::Linear,
            },
            grad_clip: None,
            tokens_per_step: 1,
            bounds: vec![Clip::bound()],
            ..short_run_config(steps, dir.clone(), 1)
        };
        let mut seen = Vec::new();
        let loss = |tape: &mut Tape, params: &Params, _: &mut StdRng| -> Var {
            seen.push(params.value(id)[[0]]);
            let t = tape.param(params, id);
            tape.mul_scalar(t, push)
        };
        train(&config, &mut params, &mut optimizer, &BTreeMap::new(), loss, no_eval).unwrap();
        let last = params.value(id)[[0]];
        let t0 = INITIAL_LOG_SCALE;
        let want: Vec<f32> = if push < 0.0 {
            assert_eq!(last, MAX_LOG_SCALE);
            vec![t0, t0 + 1.0, MAX_LOG_SCALE, MAX_LOG_SCALE, MAX_LOG_SCALE, MAX_LOG_SCALE]
        } else {
            assert_eq!(last, 0.0);
            vec![t0, t0 - 1.0, t0 - 2.0, 0.0, 0.0, 0.0]
        };
        assert_eq!(seen.len(), steps);
        for (k, (got, want)) in seen.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() < 1e-5,
                "push {push}, step {k}: t = {got}, want {want} ({seen:?})"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A batch of one has nothing to contrast: an error naming the batch setting.
#[test]
fn a_batch_of_one_is_refused() {
    let e = loss_of(ArrayD::ones(IxDyn(&[1, 3])), ArrayD::ones(IxDyn(&[1, 3])), 1.0).unwrap_err();
    assert!(
        e.contains("--batch") && e.contains("at least 2") && e.contains("got 1"),
        "{e}"
    );
    assert!(loss_of(ArrayD::ones(IxDyn(&[2, 3])), ArrayD::ones(IxDyn(&[2, 3])), 1.0).is_ok());
}

/// Gradcheck of L with respect to I, T and t on random features (t = 1, s = e, keeps the
/// logits moderate for f32 differences), with gradients well above the tolerances' floor.
#[test]
fn clip_loss_passes_gradcheck() {
    let mut rng = StdRng::seed_from_u64(2);
    for (n, e, t) in [(3, 4, 1.0f32), (4, 3, 0.3)] {
        let i = ArrayD::from_shape_fn(IxDyn(&[n, e]), |_| rng.random_range(-1.0f32..1.0));
        let tt = ArrayD::from_shape_fn(IxDyn(&[n, e]), |_| rng.random_range(-1.0f32..1.0));
        let ls = ArrayD::from_elem(IxDyn(&[1]), t);
        let report = gradcheck(
            |tape, v| clip_loss(tape, v[0], v[1], v[2]).unwrap(),
            &[i.clone(), tt.clone(), ls],
            GradcheckConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.checked, 2 * n * e + 1);
        assert!(report.g_max > 0.05, "negligible gradients: {report}");
        // dL/dt alone, against a central difference of the f64 implementation.
        let mut tape = Tape::new();
        let (vi, vt) = (tape.constant(i.clone()), tape.constant(tt.clone()));
        let vs = tape.input(ArrayD::from_elem(IxDyn(&[1]), t));
        let l = clip_loss(&mut tape, vi, vt, vs).unwrap();
        let g = tape.backward(l);
        let h = 1e-5;
        let want = (clip_f64(&i, &tt, t as f64 + h) - clip_f64(&i, &tt, t as f64 - h)) / (2.0 * h);
        let got = g.wrt(vs).unwrap()[[0]] as f64;
        assert!(want.abs() > 1e-2, "dL/dt = {want} is too small to test");
        assert!((got - want).abs() < 1e-4 + 1e-3 * want.abs(), "dL/dt {got} vs {want}");
    }
}

/// A tiny CLIP on 4 shapes-world examples with distinct captions: L is finite, and backward
/// reaches t, the image tower's patches and projection, and the text tower's projection and
/// embeddings.
#[test]
fn clip_on_shapes_reaches_both_towers() {
    let tok = Tokenizer::Word(WordTokenizer::new(&shapes::vocabulary()));
    let config = tiny_encoder_config(tok.vocab_size());
    let mut params = Params::new();
    let clip = Clip::new(&mut params, &config, 32, 8, 6, &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(params.value(clip.log_scale)[[0]], INITIAL_LOG_SCALE);
    let ex = shapes::examples(4, 5);
    let captions: Vec<&str> = ex.iter().map(|e| e.caption.as_str()).collect();
    let images: Vec<&Image> = ex.iter().map(|e| &e.image).collect();
    for a in 0..4 {
        for b in 0..a {
            assert_ne!(captions[a], captions[b], "pick a seed with distinct captions");
        }
    }
    let batch = ImageTextBatch::new(&captions, &images, &tok, 16).unwrap();
    let mut tape = Tape::new();
    let l = clip
        .loss(&mut tape, &params, &batch, &mut StdRng::seed_from_u64(4))
        .unwrap();
    let value = tape.scalar(l);
    assert!(value.is_finite() && value > 0.0, "{value}");
    let g = tape.backward(l);
    for name in [
        "clip.log_scale",
        "image.patches.proj.weight",
        "image.patches.position_embedding",
        "image_proj.weight",
        "text_proj.weight",
        "text.token_embedding.weight",
    ] {
        let id = params.find(name).unwrap_or_else(|| panic!("no parameter {name}"));
        let grad = g.param(id).unwrap_or_else(|| panic!("no gradient for {name}"));
        assert!(grad.iter().all(|x| x.is_finite()), "{name}");
        let largest = grad.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(largest > 1e-7, "{name}: gradient {largest} at most");
    }
    // A batch of one image-caption pair is refused by the model too.
    let one = ImageTextBatch::new(&captions[..1], &images[..1], &tok, 16).unwrap();
    let e = clip
        .loss(&mut Tape::new(), &params, &one, &mut StdRng::seed_from_u64(4))
        .unwrap_err();
    assert!(e.contains("--batch"), "{e}");
}

/// Identical features with orthogonal rows: logits = s Id, every row of either direction costs
/// -s + ln(e^s + (N - 1)) = ln(1 + (N - 1) e^-s), and so does L. N = 3: at t = 1 (s = e) that is
/// ln(1 + 2 e^-e) = 0.1239648; at t = 0.5 and 2 likewise. At t_0 (s = 1/0.07) it is
/// ln(1 + 2 e^-14.29) = 1.25e-6, below what f32 resolves next to logits of 14 (the test only
/// asks for L < 1e-5 there). The rows are an orthonormal basis, rotated and rescaled, not the
/// identity.
#[test]
fn perfectly_aligned_features() {
    let (c, s) = (0.6f32, 0.8f32);
    // Rows of a rotation: (c, s, 0), (-s, c, 0), (0, 0, 1), each then scaled.
    let basis = array![[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]];
    let scale_i = array![[2.0f32], [0.5], [3.0]];
    let scale_t = array![[1.0f32], [4.0], [0.1]];
    let (i, t) = ((&basis * &scale_i).into_dyn(), (&basis * &scale_t).into_dyn());
    let aligned = |log_scale: f64| (1.0 + 2.0 * (-log_scale.exp()).exp()).ln();
    assert!((aligned(1.0) - 0.1239648).abs() < 1e-7, "{}", aligned(1.0));
    for log_scale in [0.5f64, 1.0, 2.0] {
        let want = aligned(log_scale);
        let got = loss_of(i.clone(), t.clone(), log_scale as f32).unwrap() as f64;
        assert!(
            (got - want).abs() < 1e-6 + 1e-4 * want,
            "t = {log_scale}: {got} vs {want}"
        );
    }
    let at_t0 = loss_of(i, t, INITIAL_LOG_SCALE).unwrap();
    assert!((0.0..1e-5).contains(&at_t0), "{at_t0}");
}
