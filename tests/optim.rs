//! Optimizers, schedule and clipping against values computed by hand; optimizer state round
//! trips.

use microlm::optim::{clip_grad_norm, AdamW, Decay, LrSchedule, Optimizer, Sgd};
use microlm::{Gradients, ParamId, Params, Tape, Tensor};
use std::collections::BTreeMap;

fn tensor(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_shape_vec(shape.to_vec(), data.to_vec()).unwrap()
}

/// Gradients with dL/dp = c for each (p, c), through the autograd: L = sum over pairs of sum(p * c).
fn grads_of(params: &Params, wanted: &[(ParamId, &[f32])]) -> Gradients {
    let mut tape = Tape::new();
    let mut loss = None;
    for &(id, c) in wanted {
        let p = tape.param(params, id);
        let c = tape.constant(tensor(params.value(id).shape(), c));
        let pc = tape.mul(p, c);
        let s = tape.sum_all(pc);
        loss = Some(match loss {
            None => s,
            Some(l) => tape.add(l, s),
        });
    }
    tape.backward(loss.unwrap())
}

fn values(params: &Params, id: ParamId) -> Vec<f32> {
    params.value(id).iter().copied().collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < tol, "got {got:?}, want {want:?}");
    }
}

#[test]
fn adamw_two_steps_match_hand_computed_values() {
    let mut params = Params::new();
    let w = params.add("w", tensor(&[1, 2], &[1.0, -2.0]));
    let mut opt = AdamW::new(&params, 0.1); // wd 0.01, betas 0.9, 0.999, eps 1e-8
    assert!(opt.decays(w));

    // Step 1, g = (0.5, -0.1): m = 0.1 g, v = 0.001 g^2, so m_hat = g, v_hat = g^2 and the update
    // is g / (|g| + eps), almost sign(g).
    //   p0 = 1.0  - 0.1 * (0.5 / (0.5 + 1e-8)   + 0.01 * 1.0)  = 0.899000002
    //   p1 = -2.0 - 0.1 * (-0.1 / (0.1 + 1e-8)  + 0.01 * -2.0) = -1.898000010
    let g = grads_of(&params, &[(w, &[0.5, -0.1])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, w), &[0.899000002, -1.898000010], 1e-6);

    // Step 2, g = (-0.25, 0.3); bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999.
    //   m0 = 0.9 * 0.05 + 0.1 * -0.25 = 0.02        m_hat0 = 0.02 / 0.19 = 0.1052631579
    //   v0 = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225   v_hat0 = 0.1562031016
    //   update0 = 0.1052631579 / (sqrt(0.1562031016) + 1e-8) = 0.2663370329
    //   p0 = 0.899000002 - 0.1 * (0.2663370329 + 0.01 * 0.899000002) = 0.8714672987
    //   m1 = 0.9 * -0.01 + 0.1 * 0.3 = 0.021        m_hat1 = 0.021 / 0.19 = 0.1105263158
    //   v1 = 0.999 * 0.00001 + 0.001 * 0.09 = 0.00009999     v_hat1 = 0.0500200100
    //   update1 = 0.1105263158 / (sqrt(0.0500200100) + 1e-8) = 0.4941898112
    //   p1 = -1.898000010 - 0.1 * (0.4941898112 + 0.01 * -1.898000010) = -1.9455209911
    let g = grads_of(&params, &[(w, &[-0.25, 0.3])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, w), &[0.8714672987, -1.9455209911], 1e-6);
    assert_eq!(opt.step, 2);
}

#[test]
fn adamw_exempts_1d_and_embedding_params_from_decay() {
    let mut params = Params::new();
    let w = params.add("layer.weight", tensor(&[1, 2], &[1.0, -2.0]));
    let b = params.add("layer.bias", tensor(&[2], &[1.0, -2.0]));
    let gain = params.add("norm.weight", tensor(&[2], &[1.0, -2.0]));
    let emb = params.add("encoder.token_embedding.weight", tensor(&[1, 2], &[1.0, -2.0]));
    let mut opt = AdamW::new(&params, 0.1);
    assert!(opt.decays(w));
    for id in [b, gain, emb] {
        assert!(!opt.decays(id), "{} should be exempt", params.name(id));
    }

    // A zero gradient makes m = v = 0, so the only change left is the decay lr * wd * p.
    let zero: &[f32] = &[0.0, 0.0];
    let g = grads_of(&params, &[(w, zero), (b, zero), (gain, zero), (emb, zero)]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, w), &[1.0 - 0.1 * 0.01, -2.0 + 0.1 * 0.01 * 2.0], 1e-7);
    for id in [b, gain, emb] {
        assert_eq!(values(&params, id), vec![1.0, -2.0], "{} was decayed", params.name(id));
    }

    opt.set_decay(b, true);
    opt.exempt_from_decay(w);
    assert!(opt.decays(b) && !opt.decays(w));
    opt.decay_all();
    assert!(params.ids().all(|id| opt.decays(id)));
}

#[test]
fn sgd_momentum_two_steps_match_hand_computed_values() {
    let mut params = Params::new();
    let p = params.add("p", tensor(&[2], &[1.0, -2.0]));
    let mut opt = Sgd::new(&params, 0.1); // momentum 0.9, no weight decay
                                          // Step 1: v = g = (0.5, -0.1); p = (1 - 0.1 * 0.5, -2 + 0.1 * 0.1) = (0.95, -1.99).
    let g = grads_of(&params, &[(p, &[0.5, -0.1])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, p), &[0.95, -1.99], 1e-6);
    // Step 2, g = (-0.25, 0.3): v = (0.9 * 0.5 - 0.25, 0.9 * -0.1 + 0.3) = (0.2, 0.21);
    // p = (0.95 - 0.02, -1.99 - 0.021) = (0.93, -2.011).
    let g = grads_of(&params, &[(p, &[-0.25, 0.3])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, p), &[0.93, -2.011], 1e-6);
    assert_eq!(opt.step, 2);
}

#[test]
fn sgd_weight_decay_is_added_to_the_gradient() {
    let mut params = Params::new();
    let p = params.add("p", tensor(&[2], &[1.0, -2.0]));
    let mut opt = Sgd::new(&params, 0.1);
    opt.weight_decay = 0.1;
    // Step 1: g + wd p = (0.5 + 0.1, -0.1 - 0.2) = (0.6, -0.3) = v; p = (0.94, -1.97).
    let g = grads_of(&params, &[(p, &[0.5, -0.1])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, p), &[0.94, -1.97], 1e-6);
    // Step 2: g + wd p = (-0.25 + 0.094, 0.3 - 0.197) = (-0.156, 0.103);
    // v = (0.9 * 0.6 - 0.156, 0.9 * -0.3 + 0.103) = (0.384, -0.167); p = (0.9016, -1.9533).
    let g = grads_of(&params, &[(p, &[-0.25, 0.3])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, p), &[0.9016, -1.9533], 1e-6);

    // Without momentum: p = p - lr (g + wd p) = 1 - 0.1 * (0.5 + 0.1) = 0.94.
    let mut params = Params::new();
    let p = params.add("p", tensor(&[1], &[1.0]));
    let mut opt = Sgd::new(&params, 0.1);
    (opt.momentum, opt.weight_decay) = (0.0, 0.1);
    let g = grads_of(&params, &[(p, &[0.5])]);
    opt.step(&mut params, &g);
    assert_close(&values(&params, p), &[0.94], 1e-6);
    assert!(opt.state(&params).is_empty(), "no momentum, so no buffer");
}

fn schedule(decay: Decay) -> LrSchedule {
    LrSchedule {
        peak: 1.0,
        warmup: 10,
        total: 31,
        floor: 0.1,
        decay,
    }
}

#[test]
fn schedule_warmup_then_decay_to_the_floor_at_the_last_step() {
    for decay in [Decay::Cosine, Decay::Linear] {
        let s = schedule(decay);
        s.validate().unwrap();
        assert_eq!(s.lr_at(0), 0.1); // peak * 1 / 10
        assert_eq!(s.lr_at(9), 1.0); // peak * 10 / 10
        assert_eq!(s.lr_at(10), 1.0); // p = 0
                                      // Midpoint: p = (20 - 10) / (31 - 1 - 10) = 0.5; both give 0.1 + 0.5 * 0.9.
        assert!((s.lr_at(20) - 0.55).abs() < 1e-6, "{decay:?}: {}", s.lr_at(20));
        assert_eq!(s.lr_at(30), 0.1, "{decay:?}: the last step is at the floor");
        assert_eq!(s.lr_at(1000), 0.1, "{decay:?}: past the end stays at the floor");
    }
    // A quarter of the way, p = 0.25, the two differ:
    //   cosine 0.1 + 0.5 (1 + cos(pi / 4)) 0.9 = 0.8681980515; linear 0.1 + 0.75 * 0.9 = 0.775.
    assert!((schedule(Decay::Cosine).lr_at(15) - 0.868_198_05).abs() < 1e-6);
    assert!((schedule(Decay::Linear).lr_at(15) - 0.775).abs() < 1e-6);
    // No warmup: the first step is at the peak.
    let s = LrSchedule {
        warmup: 0,
        ..schedule(Decay::Linear)
    };
    assert_eq!(s.lr_at(0), 1.0);
    assert_eq!(s.lr_at(30), 0.1);
}

#[test]
fn schedule_validate_names_the_bad_field() {
    let bad = |s: LrSchedule, field: &str| {
        let e = s.validate().unwrap_err();
        assert!(e.contains(field), "{e}");
    };
    let s = schedule(Decay::Cosine);
    bad(LrSchedule { peak: 0.0, ..s }, "peak");
    bad(LrSchedule { peak: f32::NAN, ..s }, "peak");
    bad(
        LrSchedule {
            peak: f32::INFINITY,
            ..s
        },
        "peak",
    );
    bad(LrSchedule { floor: -0.1, ..s }, "floor");
    bad(LrSchedule { floor: 2.0, ..s }, "floor");
    bad(LrSchedule { total: 0, ..s }, "total");
    LrSchedule { floor: 0.0, ..s }.validate().unwrap();
}

#[test]
fn clipping_scales_to_max_norm_and_returns_the_norm_before() {
    let mut params = Params::new();
    let a = params.add("a", tensor(&[1], &[0.0]));
    let b = params.add("b", tensor(&[1], &[0.0]));
    // Global norm over both parameters: sqrt(3^2 + 4^2) = 5.
    let mut g = grads_of(&params, &[(a, &[3.0]), (b, &[4.0])]);
    assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
    assert!((g.global_norm() - 1.0).abs() < 1e-6, "{}", g.global_norm());
    assert!((g.param(a).unwrap()[[0]] - 0.6).abs() < 1e-6);
    assert!((g.param(b).unwrap()[[0]] - 0.8).abs() < 1e-6);

    // At or below the cap, nothing changes, bit for bit.
    for max_norm in [5.0, 10.0] {
        let mut g = grads_of(&params, &[(a, &[3.0]), (b, &[4.0])]);
        assert_eq!(clip_grad_norm(&mut g, max_norm), 5.0);
        assert_eq!(g.param(a).unwrap()[[0]].to_bits(), 3.0f32.to_bits());
        assert_eq!(g.param(b).unwrap()[[0]].to_bits(), 4.0f32.to_bits());
    }
}

/// Params w [2, 3] (decays), b [3] (exempt) and `unused` (never gets a gradient).
fn three_params() -> (Params, [ParamId; 3]) {
    let mut params = Params::new();
    let w = params.add("w", tensor(&[2, 3], &[0.1, -0.2, 0.3, -0.4, 0.5, -0.6]));
    let b = params.add("b", tensor(&[3], &[0.0, 0.1, -0.1]));
    let unused = params.add("unused", tensor(&[2], &[1.0, 1.0]));
    (params, [w, b, unused])
}

fn grads_at(params: &Params, ids: [ParamId; 3], k: f32) -> Gradients {
    let gw = [1.0, -0.5, 0.25, 2.0, -1.0, 0.1].map(|x| x * (1.0 + k));
    let gb = [0.3, -0.7, 0.2].map(|x| x - 0.1 * k);
    grads_of(params, &[(ids[0], &gw), (ids[1], &gb)])
}

fn bits(params: &Params) -> Vec<u32> {
    params
        .ids()
        .flat_map(|id| values(params, id))
        .map(f32::to_bits)
        .collect()
}

#[test]
fn optimizer_state_round_trip_continues_bit_identically() {
    let fresh = |params: &Params, adamw: bool| {
        if adamw {
            Optimizer::AdamW(AdamW::new(params, 0.01))
        } else {
            Optimizer::Sgd(Sgd::new(params, 0.01))
        }
    };
    for adamw in [true, false] {
        let (mut params, ids) = three_params();
        let mut opt = fresh(&params, adamw);
        for k in 0..3 {
            let g = grads_at(&params, ids, k as f32);
            opt.step(&mut params, &g);
        }
        let saved: BTreeMap<String, Tensor> = opt.state(&params).into_iter().collect();
        let prefix = opt.name();
        let want: Vec<String> = match adamw {
            true => ["adamw.m.b", "adamw.m.w", "adamw.v.b", "adamw.v.w"]
                .map(String::from)
                .to_vec(),
            false => ["sgd.momentum.b", "sgd.momentum.w"].map(String::from).to_vec(),
        };
        assert_eq!(saved.keys().cloned().collect::<Vec<_>>(), want, "{prefix}");

        let mut resumed_params = params.clone();
        let mut resumed = fresh(&params, adamw);
        resumed.load_state(&params, opt.steps_taken(), &saved).unwrap();
        assert_eq!(resumed.steps_taken(), 3);
        let mut cold_params = params.clone();
        let mut cold = fresh(&params, adamw); // no state loaded: must end up elsewhere

        let g = grads_at(&params, ids, 3.0);
        opt.step(&mut params, &g);
        resumed.step(&mut resumed_params, &g);
        cold.step(&mut cold_params, &g);
        assert_eq!(bits(&params), bits(&resumed_params), "{prefix}: resumed run diverged");
        assert_ne!(
            bits(&params),
            bits(&cold_params),
            "{prefix}: the state made no difference"
        );
    }
}

#[test]
fn load_state_errors_name_the_tensor() {
    let (params, _) = three_params();
    let load = |entries: &[(&str, &[usize])]| {
        let map: BTreeMap<String, Tensor> = entries
            .iter()
            .map(|&(k, shape)| (k.to_string(), Tensor::zeros(shape.to_vec())))
            .collect();
        let mut adamw = AdamW::new(&params, 0.01);
        let before = adamw.step;
        let result = adamw.load_state(&params, 7, &map);
        if result.is_err() {
            assert_eq!(adamw.step, before, "a failed load changed the step count");
        }
        result
    };
    let e = load(&[("adamw.m.w", &[3, 2]), ("adamw.v.w", &[2, 3])]).unwrap_err();
    assert!(e.contains("'adamw.m.w'") && e.contains("[3, 2]"), "{e}");
    let e = load(&[("adamw.m.nope", &[2]), ("adamw.v.nope", &[2])]).unwrap_err();
    assert!(e.contains("'adamw.m.nope'"), "{e}");
    let e = load(&[("adamw.m.b", &[3])]).unwrap_err();
    assert!(e.contains("adamw.m.b") && e.contains("adamw.v.b"), "{e}");
    // Other tensors (the parameters themselves, another optimizer's) are ignored.
    load(&[
        ("w", &[9]),
        ("sgd.momentum.w", &[9]),
        ("adamw.m.b", &[3]),
        ("adamw.v.b", &[3]),
    ])
    .unwrap();

    let map = BTreeMap::from([("sgd.momentum.b".to_string(), Tensor::zeros(vec![4]))]);
    let e = Sgd::new(&params, 0.1).load_state(&params, 1, &map).unwrap_err();
    assert!(e.contains("'sgd.momentum.b'"), "{e}");
}

#[test]
fn optimizer_enum_dispatches() {
    let (params, _) = three_params();
    let mut opt = Optimizer::Sgd(Sgd::new(&params, 0.5));
    assert_eq!((opt.name(), opt.lr(), opt.steps_taken()), ("sgd", 0.5, 0));
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    let opt = Optimizer::AdamW(AdamW::new(&params, 0.5));
    assert_eq!(opt.name(), "adamw");
}
