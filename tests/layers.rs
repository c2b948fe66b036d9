//! The Transformer's layers: gradients, masks, invariants, and that no gradient is cut.

use microlm::data::Batch;
use microlm::gradcheck::{gradcheck, gradcheck_params, GradcheckConfig};
use microlm::nn::config::Activation;
use microlm::nn::positional::sinusoidal_table;
use microlm::nn::{
    Decoder, DecoderLayer, Encoder, EncoderDecoder, EncoderLayer, FeedForward, LayerNorm, MultiHeadAttention,
    NormPlacement, OutputProjection, TransformerConfig,
};
use microlm::{AttentionMask, Params, Tape, Tensor, Var};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Values uniform in [-1, 1), from a seed.
fn uniform(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random::<f32>() * 2.0 - 1.0)
}

/// A small config for tests: d_model 8, 2 heads, 2 layers, d_ff 16, no dropout.
fn small(norm: NormPlacement) -> TransformerConfig {
    TransformerConfig {
        vocab_size: 11,
        d_model: 8,
        heads: 2,
        layers: 2,
        d_ff: 16,
        max_len: 16,
        dropout: 0.0,
        norm,
        ..TransformerConfig::toy(11)
    }
}

/// L = sum(out * w) for a fixed random w: every output element matters.
fn weighted_sum(tape: &mut Tape, out: Var, seed: u64) -> Var {
    let w = tape.constant(uniform(tape.shape(out), seed));
    let p = tape.mul(out, w);
    tape.sum_all(p)
}

fn assert_ok(what: &str, r: Result<microlm::gradcheck::GradcheckReport, String>) {
    match r {
        Ok(rep) => assert!(rep.checked > 0, "{what}: nothing checked"),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn masks() -> Vec<(&'static str, AttentionMask)> {
    vec![
        ("none", AttentionMask::none()),
        ("padding", AttentionMask::padding(vec![3, 1])),
        ("causal", AttentionMask::causal()),
        (
            "causal+padding",
            AttentionMask {
                causal: true,
                key_lengths: Some(vec![2, 3]),
            },
        ),
    ]
}

#[test]
fn fused_attention_gradcheck_with_each_mask() {
    for (name, mask) in masks() {
        let (q, k, v) = (
            uniform(&[2, 2, 3, 4], 1),
            uniform(&[2, 2, 3, 4], 2),
            uniform(&[2, 2, 3, 5], 3),
        );
        let f = |t: &mut Tape, x: &[Var]| {
            let o = t.attention(x[0], x[1], x[2], &mask, 0.5);
            weighted_sum(t, o, 4)
        };
        assert_ok(
            &format!("attention, mask {name}"),
            gradcheck(f, &[q, k, v], GradcheckConfig::default()),
        );
    }
}

#[test]
fn fused_attention_matches_the_composite_reference() {
    // Self-shaped (Tq = Tk) with every mask, and cross-shaped (Tq = 2, Tk = 3) with padding.
    let mut cases: Vec<(AttentionMask, usize)> = masks().into_iter().map(|(_, m)| (m, 3)).collect();
    cases.push((AttentionMask::padding(vec![3, 1]), 2));
    for (mask, tq) in cases {
        let (q, k, v) = (
            uniform(&[2, 2, tq, 4], 5),
            uniform(&[2, 2, 3, 4], 6),
            uniform(&[2, 2, 3, 4], 7),
        );
        let run = |fused: bool| {
            let mut tape = Tape::new();
            let (qv, kv, vv) = (tape.input(q.clone()), tape.input(k.clone()), tape.input(v.clone()));
            let o = if fused {
                tape.attention(qv, kv, vv, &mask, 0.5)
            } else {
                tape.attention_reference(qv, kv, vv, &mask, 0.5)
            };
            let out = tape.value(o).to_owned();
            let l = weighted_sum(&mut tape, o, 8);
            let g = tape.backward(l);
            (out, [qv, kv, vv].map(|x| g.wrt(x).unwrap().clone()))
        };
        let ((o1, g1), (o2, g2)) = (run(true), run(false));
        let close = |a: &ArrayD<f32>, b: &ArrayD<f32>| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&o1, &o2), "values differ for {mask:?}");
        for (a, b) in g1.iter().zip(&g2) {
            assert!(close(a, b), "gradients differ for {mask:?}");
        }
    }
}

/// Values and gradients of `attention_blocked` against the composite reference, within 1e-5.
fn check_blocked_against_reference(mask: &AttentionMask, tq: usize, tk: usize, block_rows: usize) {
    let (q, k, v) = (
        uniform(&[2, 2, tq, 4], 11),
        uniform(&[2, 2, tk, 4], 12),
        uniform(&[2, 2, tk, 3], 13),
    );
    let run = |fused: bool| {
        let mut tape = Tape::new();
        let (qv, kv, vv) = (tape.input(q.clone()), tape.input(k.clone()), tape.input(v.clone()));
        let o = if fused {
            tape.attention_blocked(qv, kv, vv, mask, 0.7, block_rows)
        } else {
            tape.attention_reference(qv, kv, vv, mask, 0.7)
        };
        let out = tape.value(o).to_owned();
        let l = weighted_sum(&mut tape, o, 14);
        let g = tape.backward(l);
        (out, [qv, kv, vv].map(|x| g.wrt(x).unwrap().clone()))
    };
    let ((o1, g1), (o2, g2)) = (run(true), run(false));
    let worst = |a: &ArrayD<f32>, b: &ArrayD<f32>| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let what = format!("{mask:?}, Tq {tq}, Tk {tk}, blocks of {block_rows} rows");
    assert!(
        worst(&o1, &o2) < 1e-5,
        "values differ by {} for {what}",
        worst(&o1, &o2)
    );
    for (name, (a, b)) in ["dQ", "dK", "dV"].iter().zip(g1.iter().zip(&g2)) {
        assert!(worst(a, b) < 1e-5, "{name} differs by {} for {what}", worst(a, b));
    }
}

#[test]
fn attention_in_row_blocks_matches_the_reference_for_any_block_size() {
    // Blocks of 1, 2 and 3 rows cut 7 queries unevenly; 7 and 16 rows are one block. A padding
    // length of 0 gives rows that see nothing (all-zero output and gradients in both).
    let mut cases: Vec<AttentionMask> = masks().into_iter().map(|(_, m)| m).collect();
    cases.push(AttentionMask::padding(vec![0, 5]));
    cases.push(AttentionMask {
        causal: true,
        key_lengths: Some(vec![7, 4]),
    });
    for mask in &cases {
        for block_rows in [1, 2, 3, 7, 16] {
            check_blocked_against_reference(mask, 7, 7, block_rows);
        }
    }
    // Cross-shaped: 5 queries over 7 keys (no causal mask: query i would not be key i).
    for block_rows in [2, 5] {
        check_blocked_against_reference(&AttentionMask::padding(vec![7, 3]), 5, 7, block_rows);
    }
}

#[test]
fn attention_in_row_blocks_gradcheck() {
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![5, 3]),
    };
    let (q, k, v) = (
        uniform(&[2, 2, 5, 4], 21),
        uniform(&[2, 2, 5, 4], 22),
        uniform(&[2, 2, 5, 3], 23),
    );
    let f = |t: &mut Tape, x: &[Var]| {
        let o = t.attention_blocked(x[0], x[1], x[2], &mask, 0.5, 2);
        weighted_sum(t, o, 24)
    };
    assert_ok(
        "attention in blocks of 2 rows",
        gradcheck(f, &[q, k, v], GradcheckConfig::default()),
    );
}

#[test]
fn packed_attention_equals_attention_on_the_three_parts() {
    // qkv [B, T, 3 * H * Dh] holds Q, K, V side by side; its gradient must be dQ, dK, dV side
    // by side, each as the separate op computes it.
    let (b, t, h, dh) = (2, 6, 2, 3);
    let qkv = uniform(&[b, t, 3 * h * dh], 31);
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![6, 4]),
    };
    let mut tape = Tape::new();
    let x = tape.input(qkv.clone());
    let o_packed = tape.attention_packed(x, 2, &mask, 0.6);
    let o_packed_value = tape.value(o_packed).to_owned();
    let l = weighted_sum(&mut tape, o_packed, 32);
    let g_packed = tape.backward(l).wrt(x).unwrap().clone();

    let mut tape = Tape::new();
    let parts: Vec<Var> = (0..3)
        .map(|j| {
            let part = qkv.slice(ndarray::s![.., .., j * h * dh..(j + 1) * h * dh]).to_owned();
            tape.input(
                part.into_shape_with_order(vec![b, t, h, dh])
                    .unwrap()
                    .permuted_axes(vec![0, 2, 1, 3]),
            )
        })
        .collect();
    let o = tape.attention(parts[0], parts[1], parts[2], &mask, 0.6);
    let o_separate = tape.value(o).to_owned();
    let l = weighted_sum(&mut tape, o, 32);
    let grads = tape.backward(l);
    let worst = |a: &ArrayD<f32>, b: &ArrayD<f32>| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(worst(&o_packed_value, &o_separate) < 1e-6, "values differ");
    for (j, &p) in parts.iter().enumerate() {
        let g = grads.wrt(p).unwrap().clone().permuted_axes(vec![0, 2, 1, 3]); // [B, T, H, Dh]
        let packed = g_packed
            .slice(ndarray::s![.., .., j * h * dh..(j + 1) * h * dh])
            .to_owned()
            .into_shape_with_order(vec![b, t, h, dh])
            .unwrap();
        assert!(worst(&g.to_owned(), &packed) < 1e-6, "part {j}: gradients differ");
    }
}

#[test]
fn attention_weights_are_zero_on_hidden_keys_and_sum_to_one() {
    let mut params = Params::new();
    let mha = MultiHeadAttention::new(&mut params, "attn", 8, 2, &mut StdRng::seed_from_u64(0));
    let mut tape = Tape::no_grad();
    let x = tape.constant(uniform(&[2, 4, 8], 1));
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![4, 2]),
    };
    let weights = mha.weights(&mut tape, &params, x, x, &mask);
    let w = tape.value(weights);
    assert_eq!(w.shape(), &[2, 2, 4, 4]);
    for ((b, h, i, j), &p) in w.view().into_dimensionality::<ndarray::Ix4>().unwrap().indexed_iter() {
        if mask.is_masked(b, i, j) {
            assert_eq!(p, 0.0, "hidden key ({b}, {h}, {i}, {j}) has weight {p}");
        }
    }
    for row in w.lanes(ndarray::Axis(3)) {
        assert!((row.sum() - 1.0).abs() < 1e-6);
    }
}

/// Check a layer's gradient with respect to its input (parameters fixed) and to every
/// parameter (input fixed).
fn check_layer(what: &str, params: &Params, x: ArrayD<f32>, forward: impl Fn(&mut Tape, &Params, Var) -> Var) {
    let out_seed = 99;
    let fx = |t: &mut Tape, v: &[Var]| {
        let y = forward(t, params, v[0]);
        weighted_sum(t, y, out_seed)
    };
    assert_ok(
        &format!("{what}, input"),
        gradcheck(fx, std::slice::from_ref(&x), GradcheckConfig::default()),
    );
    let fp = |t: &mut Tape, p: &Params| {
        let xv = t.constant(x.clone());
        let y = forward(t, p, xv);
        weighted_sum(t, y, out_seed)
    };
    assert_ok(
        &format!("{what}, parameters"),
        gradcheck_params(fp, params, GradcheckConfig::default()),
    );
}

#[test]
fn multi_head_self_and_cross_attention_gradcheck() {
    let mut params = Params::new();
    let mha = MultiHeadAttention::new(&mut params, "attn", 8, 2, &mut StdRng::seed_from_u64(1));
    // Larger weights than the 0.02 init, so the attention pattern is far from uniform.
    for id in params.ids().collect::<Vec<_>>() {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from(uniform(&shape, id.index() as u64 + 10) * 0.7);
    }
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![3, 2]),
    };
    check_layer("self-attention", &params, uniform(&[2, 3, 8], 2), |t, p, x| {
        mha.forward(t, p, x, x, &mask, None)
    });
    let memory = uniform(&[2, 4, 8], 3);
    let cross_mask = AttentionMask::padding(vec![4, 2]);
    check_layer(
        "cross-attention (queries)",
        &params,
        uniform(&[2, 3, 8], 4),
        |t, p, x| {
            let m = t.constant(memory.clone());
            mha.forward(t, p, x, m, &cross_mask, None)
        },
    );
    let queries = uniform(&[2, 3, 8], 5);
    check_layer("cross-attention (memory)", &params, memory.clone(), |t, p, m| {
        let q = t.constant(queries.clone());
        mha.forward(t, p, q, m, &cross_mask, None)
    });
}

#[test]
fn layer_norm_and_feed_forward_gradcheck() {
    let mut params = Params::new();
    let ln = LayerNorm::new(&mut params, "ln", 8, 1e-5);
    *params.value_mut(ln.weight) = Tensor::from(uniform(&[8], 1) + 1.0);
    *params.value_mut(ln.bias) = Tensor::from(uniform(&[8], 2));
    check_layer("layer norm", &params, uniform(&[2, 3, 8], 3), |t, p, x| {
        ln.forward(t, p, x)
    });

    for activation in [Activation::Gelu, Activation::GeluTanh, Activation::Relu] {
        let mut params = Params::new();
        let mut rng = StdRng::seed_from_u64(4);
        let ff = FeedForward::new(&mut params, "ff", 8, 16, activation, 0.0, &mut rng);
        for id in params.ids().collect::<Vec<_>>() {
            let shape = params.value(id).shape().to_vec();
            *params.value_mut(id) = Tensor::from(uniform(&shape, id.index() as u64 + 20) * 0.5);
        }
        // A +-eps step (eps = 1e-2) moves a pre-activation by at most 1e-2 * |x| <= 1e-2 for a
        // weight, 1e-2 * |W_1| <= 5e-3 for an input: for ReLU every pre-activation must be
        // farther from the kink at 0 than that, or the finite difference straddles it. So take
        // the first input (from seed 5 on) whose pre-activations all keep 0.02 away.
        let distance_to_kink = |x: &ArrayD<f32>| {
            let mut tape = Tape::no_grad();
            let xv = tape.constant(x.clone());
            let h = ff.linear1.forward(&mut tape, &params, xv);
            tape.value(h).iter().fold(f32::INFINITY, |m, &v| m.min(v.abs()))
        };
        let x = (5..100)
            .map(|seed| uniform(&[2, 3, 8], seed))
            .find(|x| activation != Activation::Relu || distance_to_kink(x) > 0.02)
            .expect("an input away from ReLU's kink");
        check_layer(&format!("feed-forward ({activation:?})"), &params, x, |t, p, x| {
            ff.forward(t, p, x, &mut rng.clone())
        });
    }
}

/// Scale every weight up from the 0.02 init so that each sub-layer visibly changes its input.
fn enlarge(params: &mut Params) {
    for id in params.ids().collect::<Vec<_>>() {
        let name = params.name(id).to_string();
        let shape = params.value(id).shape().to_vec();
        let r = uniform(&shape, id.index() as u64 + 100);
        let v = if name.contains("norm") && name.ends_with("weight") {
            r * 0.3 + 1.0
        } else {
            r * 0.5
        };
        *params.value_mut(id) = Tensor::from(v);
    }
}

#[test]
fn encoder_layer_gradcheck_in_both_norm_placements() {
    for norm in [NormPlacement::Post, NormPlacement::Pre] {
        let mut params = Params::new();
        let mut rng = StdRng::seed_from_u64(5);
        let layer = EncoderLayer::new(&mut params, "layer", &small(norm), &mut rng);
        enlarge(&mut params);
        let mask = AttentionMask::padding(vec![3, 2]);
        check_layer(
            &format!("encoder layer {norm:?}"),
            &params,
            uniform(&[2, 3, 8], 6),
            |t, p, x| layer.forward(t, p, x, &mask, None, &mut rng.clone()),
        );
    }
}

#[test]
fn decoder_layer_gradcheck_in_both_norm_placements() {
    for norm in [NormPlacement::Post, NormPlacement::Pre] {
        let mut params = Params::new();
        let mut rng = StdRng::seed_from_u64(7);
        let layer = DecoderLayer::new(&mut params, "layer", &small(norm), &mut rng);
        enlarge(&mut params);
        let memory = uniform(&[2, 4, 8], 8);
        let self_mask = AttentionMask {
            causal: true,
            key_lengths: Some(vec![3, 2]),
        };
        let memory_mask = AttentionMask::padding(vec![4, 3]);
        check_layer(
            &format!("decoder layer {norm:?}"),
            &params,
            uniform(&[2, 3, 8], 9),
            |t, p, x| {
                let m = t.constant(memory.clone());
                layer.forward(t, p, x, m, &self_mask, &memory_mask, None, &mut rng.clone())
            },
        );
    }
}

#[test]
fn causal_output_ignores_the_future_bitwise_and_its_gradient_is_zero() {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(11);
    let config = small(NormPlacement::Pre);
    let model = Decoder::new(&mut params, "decoder", &config, &mut rng).unwrap();
    let t_cut = 3;
    let a: Vec<usize> = vec![1, 4, 2, 7, 3, 9, 5, 6];
    let mut b = a.clone();
    for id in &mut b[t_cut + 1..] {
        *id = (*id + 5) % 11; // change every token after t
    }
    let logits = |ids: &[usize]| {
        let mut tape = Tape::no_grad();
        let y = model.forward(&mut tape, &params, &Batch::new(ids.to_vec(), 1, 8), &mut rng.clone());
        tape.value(y).to_owned()
    };
    let (la, lb) = (logits(&a), logits(&b));
    for t in 0..8 {
        let (ra, rb) = (la.index_axis(ndarray::Axis(1), t), lb.index_axis(ndarray::Axis(1), t));
        if t <= t_cut {
            assert_eq!(ra, rb, "position {t} changed when only later tokens did");
        } else {
            assert_ne!(ra, rb, "position {t} should depend on its own token");
        }
    }
    // Gradient of position t's output with respect to the layers' input: exactly zero after t.
    let layers = &model.stack.layers;
    let mut tape = Tape::new();
    let x = tape.input(uniform(&[1, 8, 8], 12));
    let mut h = x;
    for layer in layers {
        h = layer.forward(&mut tape, &params, h, &AttentionMask::causal(), None, &mut rng.clone());
    }
    let mut seed = ArrayD::<f32>::zeros(IxDyn(&[1, 8, 8]));
    seed.index_axis_mut(ndarray::Axis(1), t_cut).fill(1.0);
    let g = tape.backward_from(h, seed);
    let gx = g.wrt(x).unwrap();
    for t in 0..8 {
        let row = gx.index_axis(ndarray::Axis(1), t);
        if t > t_cut {
            assert!(
                row.iter().all(|&v| v == 0.0),
                "gradient leaks from position {t_cut} to later position {t}"
            );
        } else {
            assert!(
                row.iter().any(|&v| v != 0.0),
                "position {t} should influence position {t_cut}"
            );
        }
    }
}

#[test]
fn padding_tokens_do_not_change_real_positions() {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(13);
    let model = Encoder::new(&mut params, "encoder", &small(NormPlacement::Post), &mut rng).unwrap();
    let lengths = vec![6, 3];
    let a: Vec<usize> = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0];
    let mut b = a.clone();
    b[9..12].copy_from_slice(&[10, 4, 7]); // change the padding of sequence 1
    let hidden = |ids: &[usize]| {
        let mut tape = Tape::no_grad();
        let tokens = Batch::new(ids.to_vec(), 2, 6).with_lengths(lengths.clone());
        let h = model.forward(&mut tape, &params, &tokens, &mut rng.clone());
        tape.value(h).to_owned()
    };
    let (ha, hb) = (hidden(&a), hidden(&b));
    assert_eq!(ha.index_axis(ndarray::Axis(0), 0), hb.index_axis(ndarray::Axis(0), 0));
    for t in 0..3 {
        let (ra, rb) = (ha.slice(ndarray::s![1, t, ..]), hb.slice(ndarray::s![1, t, ..]));
        assert_eq!(ra, rb, "real position {t} changed when padding did");
    }
}

#[test]
fn without_positions_the_encoder_layers_are_permutation_equivariant() {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(17);
    let config = small(NormPlacement::Pre);
    let model = Encoder::new(&mut params, "encoder", &config, &mut rng).unwrap();
    enlarge(&mut params);
    let perm = [3, 0, 4, 1, 2];
    let x = uniform(&[1, 5, 8], 18);
    let x_perm = ArrayD::from_shape_fn(IxDyn(&[1, 5, 8]), |ix| x[[0, perm[ix[1]], ix[2]]]);
    let run = |x: ArrayD<f32>| {
        let mut tape = Tape::no_grad();
        let mut h = tape.constant(x);
        for layer in &model.layers {
            h = layer.forward(&mut tape, &params, h, &AttentionMask::none(), None, &mut rng.clone());
        }
        tape.value(h).to_owned()
    };
    let (y, y_perm) = (run(x), run(x_perm));
    for t in 0..5 {
        for c in 0..8 {
            let (a, b) = (y_perm[[0, t, c]], y[[0, perm[t], c]]);
            assert!((a - b).abs() < 1e-5, "f(P x) != P f(x) at ({t}, {c}): {a} vs {b}");
        }
    }
}

#[test]
fn positional_encoding_matches_the_formula_at_chosen_points() {
    // PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...). Values from a calculator.
    let pe = sinusoidal_table(3, 4);
    assert_eq!(pe[[0, 0]], 0.0);
    assert_eq!(pe[[0, 1]], 1.0);
    assert!((pe[[1, 0]] - 0.841_470_98).abs() < 1e-7); // sin(1)
    assert!((pe[[1, 1]] - 0.540_302_3).abs() < 1e-7); // cos(1)
    assert!((pe[[2, 2]] - 0.019_998_667).abs() < 1e-8); // sin(2 / 10000^(2/4)) = sin(0.02)
    let pe = sinusoidal_table(100_001, 8);
    assert!((pe[[1000, 4]] - -0.544_021_1).abs() < 1e-6); // sin(1000 / 10000^(4/8)) = sin(10)
    assert!((pe[[1000, 5]] - -0.839_071_5).abs() < 1e-6); // cos(10)
    assert!((pe[[100_000, 0]] - 0.035_748_8).abs() < 1e-6); // sin(100000)
    assert!((pe[[100_000, 3]] - -0.952_155_4).abs() < 1e-6); // cos(100000 / 10000^(2/8)) = cos(10000)
}

#[test]
fn split_and_merge_heads_round_trip() {
    let x = uniform(&[2, 5, 12], 19);
    let mut tape = Tape::new();
    let xv = tape.input(x.clone());
    let heads = tape.split_heads(xv, 3);
    assert_eq!(tape.shape(heads), &[2, 3, 5, 4]);
    // Head h of position t holds channels h*4 .. h*4+4.
    assert_eq!(tape.value(heads)[[1, 2, 3, 1]], x[[1, 3, 2 * 4 + 1]]);
    let back = tape.merge_heads(heads);
    assert_eq!(tape.value(back), &x.clone().into_shared());
    let l = weighted_sum(&mut tape, back, 20);
    let g = tape.backward(l);
    assert_eq!(
        g.wrt(xv).unwrap(),
        &uniform(&[2, 5, 12], 20),
        "the gradient round-trips too"
    );
}

fn assert_every_parameter_has_a_gradient(params: &Params, grads: &microlm::Gradients, what: &str) {
    for id in params.ids() {
        let g = grads
            .param(id)
            .unwrap_or_else(|| panic!("{what}: {} received no gradient", params.name(id)));
        assert!(
            g.iter().any(|&v| v != 0.0),
            "{what}: {} has an all-zero gradient",
            params.name(id)
        );
    }
}

#[test]
fn one_training_step_reaches_every_parameter_of_every_stack() {
    for norm in [NormPlacement::Post, NormPlacement::Pre] {
        for tie in [true, false] {
            let mut config = small(norm);
            config.tie_embeddings = tie;
            config.dropout = 0.1;
            let mut rng = StdRng::seed_from_u64(21);
            let ids: Vec<usize> = (0..12).map(|i| (i * 7 + 3) % 11).collect();
            let targets: Vec<Option<usize>> = (0..12).map(|i| Some((i * 5 + 1) % 11)).collect();

            // Encoder with segments, plus an output projection.
            let mut params = Params::new();
            let mut seg_config = config.clone();
            seg_config.type_vocab_size = 2;
            let enc = Encoder::new(&mut params, "encoder", &seg_config, &mut rng).unwrap();
            let head = OutputProjection::new(&mut params, "head", &enc.embed.token, tie, &mut rng);
            let tokens = Batch::new(ids.clone(), 2, 6)
                .with_lengths(vec![6, 5])
                .with_segments(vec![0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]);
            let mut tape = Tape::new();
            let h = enc.forward(&mut tape, &params, &tokens, &mut rng);
            let logits = head.forward(&mut tape, &params, h);
            let loss = tape.cross_entropy(logits, &targets).mean;
            let grads = tape.backward(loss);
            assert_every_parameter_has_a_gradient(&params, &grads, &format!("encoder {norm:?} tie={tie}"));

            // Decoder-only.
            let mut params = Params::new();
            let dec = Decoder::new(&mut params, "decoder", &config, &mut rng).unwrap();
            let mut tape = Tape::new();
            let logits = dec.forward(&mut tape, &params, &Batch::new(ids.clone(), 2, 6), &mut rng);
            let loss = tape.cross_entropy(logits, &targets).mean;
            let grads = tape.backward(loss);
            assert_every_parameter_has_a_gradient(&params, &grads, &format!("decoder {norm:?} tie={tie}"));

            // Encoder-decoder.
            let mut params = Params::new();
            let model = EncoderDecoder::new(&mut params, &config, &mut rng).unwrap();
            let source = Batch::new(ids.iter().map(|i| (i + 1) % 11).collect(), 2, 6).with_lengths(vec![6, 4]);
            let mut tape = Tape::new();
            let logits = model.forward(&mut tape, &params, &source, &Batch::new(ids.clone(), 2, 6), &mut rng);
            let loss = tape.cross_entropy(logits, &targets).mean;
            let grads = tape.backward(loss);
            assert_every_parameter_has_a_gradient(&params, &grads, &format!("encoder-decoder {norm:?} tie={tie}"));
        }
    }
}

#[test]
fn invalid_configs_are_refused_naming_the_field() {
    let mut c = TransformerConfig::toy(50);
    assert!(c.validate().is_ok());
    c.d_model = 130;
    let e = c.validate().unwrap_err();
    assert!(
        e.contains("d_model") && e.contains("130 is not divisible by heads = 4"),
        "{e}"
    );
    let mut c = TransformerConfig::toy(50);
    c.dropout = 1.0;
    assert!(c.validate().unwrap_err().contains("dropout"));
    let mut c = TransformerConfig::toy(0);
    c.layers = 3;
    assert!(c.validate().unwrap_err().contains("vocab_size"));
    let mut params = Params::new();
    let mut c = TransformerConfig::toy(50);
    c.heads = 0;
    let e = Encoder::new(&mut params, "encoder", &c, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("heads"), "{e}");
}

/// The toy config's parameter count, from the shape of every tensor by hand: d_model D = 128,
/// d_ff F = 512, N = 4 layers, pre-LN (so a final LayerNorm), tied output embedding, no
/// segments, for a vocabulary of V = 67.
#[test]
fn toy_config_parameter_count_matches_the_count_by_hand() {
    let (v, d, f, n) = (67, 128, 512, 4);
    let attention = 4 * (d * d + d); // W_Q, W_K, W_V, W_O [D, D] and their biases [D]
    let layer_norms = 2 * (2 * d); // norm1, norm2: gain and bias [D] each
    let feed_forward = (d * f + f) + (f * d + d); // W_1 [F, D], b_1 [F], W_2 [D, F], b_2 [D]
    let layer = attention + layer_norms + feed_forward;
    let encoder = v * d + n * layer + 2 * d; // token embedding [V, D], layers, final LayerNorm
    assert_eq!(encoder, 801_920);
    let decoder = encoder + v; // the tied output projection adds only its bias [V]

    let config = TransformerConfig::toy(v);
    let mut params = Params::new();
    Encoder::new(&mut params, "encoder", &config, &mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(params.num_elements(), encoder);
    let mut params = Params::new();
    Decoder::new(&mut params, "decoder", &config, &mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(params.num_elements(), decoder);
}

/// `config.activation` in checkpoint metadata: every value round-trips, a checkpoint without
/// the key (written before it existed, when every model used exact GELU) reads as GELU, and an
/// unknown value is refused naming the key and the value.
#[test]
fn activation_in_checkpoint_metadata() {
    for (activation, stored) in [
        (Activation::Gelu, "gelu"),
        (Activation::GeluTanh, "gelu_tanh"),
        (Activation::Relu, "relu"),
    ] {
        let config = TransformerConfig {
            activation,
            ..TransformerConfig::toy(50)
        };
        let m = config.to_metadata();
        assert_eq!(m["config.activation"], stored);
        assert_eq!(TransformerConfig::from_metadata(&m).unwrap(), config);
    }
    let relu = TransformerConfig {
        activation: Activation::Relu,
        ..TransformerConfig::toy(50)
    };
    let mut m = relu.to_metadata();
    m.remove("config.activation");
    assert_eq!(
        TransformerConfig::from_metadata(&m).unwrap().activation,
        Activation::Gelu
    );
    m.insert("config.activation".into(), "swish".into());
    let e = TransformerConfig::from_metadata(&m).unwrap_err();
    assert!(e.contains("config.activation") && e.contains("swish"), "{e}");
}

#[test]
fn fused_linear_matches_the_reference_and_passes_gradcheck() {
    // Stacked input [2, 3, 4] x W [5, 4]^T + b [5], and a large one for the parallel bias paths.
    for (shape, seed) in [(vec![2, 3, 4], 30u64), (vec![70, 130, 4], 31)] {
        let (x, w, b) = (
            uniform(&shape, seed),
            uniform(&[5, 4], seed + 1),
            uniform(&[5], seed + 2),
        );
        for with_bias in [true, false] {
            let run = |fused: bool| {
                let mut tape = Tape::new();
                let (xv, wv, bv) = (tape.input(x.clone()), tape.input(w.clone()), tape.input(b.clone()));
                let bias = with_bias.then_some(bv);
                let y = if fused {
                    tape.linear(xv, wv, bias)
                } else {
                    tape.linear_reference(xv, wv, bias)
                };
                let out = tape.value(y).to_owned();
                let l = weighted_sum(&mut tape, y, seed + 3);
                let g = tape.backward(l);
                let grads: Vec<Option<ArrayD<f32>>> = [xv, wv, bv].iter().map(|&v| g.wrt(v).cloned()).collect();
                (out, grads)
            };
            let ((o1, g1), (o2, g2)) = (run(true), run(false));
            let close = |a: &ArrayD<f32>, b: &ArrayD<f32>, tol: f32| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol);
            assert!(close(&o1, &o2, 1e-5), "values differ for {shape:?}");
            for (a, b) in g1.iter().zip(&g2) {
                match (a, b) {
                    (Some(a), Some(b)) => assert!(close(a, b, 1e-3), "gradients differ for {shape:?}"),
                    (None, None) => {}
                    _ => panic!("one version produced a gradient the other did not"),
                }
            }
        }
    }
    let (x, w, b) = (uniform(&[2, 3, 4], 40), uniform(&[5, 4], 41), uniform(&[5], 42));
    let f = |t: &mut Tape, v: &[Var]| {
        let y = t.linear(v[0], v[1], Some(v[2]));
        weighted_sum(t, y, 43)
    };
    assert_ok("linear", gradcheck(f, &[x, w, b], GradcheckConfig::default()));
}

#[test]
#[should_panic(expected = "linear: input [2, 3] does not fit weight [5, 4]")]
fn linear_shape_error_names_both_shapes() {
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::zeros(IxDyn(&[2, 3])));
    let w = tape.constant(Tensor::zeros(IxDyn(&[5, 4])));
    tape.linear(x, w, None);
}

/// Tied, the encoder-decoder has one token table for both stacks and the output (the paper's
/// section 3.4): no `decoder.token_embedding.weight`, 2 V D fewer parameters than untied (the
/// decoder's table and the output weight), and the shared table gets gradient from both sides.
#[test]
fn a_tied_encoder_decoder_shares_one_token_table() {
    let (v, d) = (13, 8);
    let config = |tie| TransformerConfig {
        d_model: d,
        heads: 2,
        layers: 1,
        d_ff: 16,
        max_len: 8,
        tie_embeddings: tie,
        ..TransformerConfig::toy(v)
    };
    let count = |tie| {
        let mut params = Params::new();
        EncoderDecoder::new(&mut params, &config(tie), &mut StdRng::seed_from_u64(0)).unwrap();
        params
    };
    let (tied, untied) = (count(true), count(false));
    assert_eq!(untied.num_elements() - tied.num_elements(), 2 * v * d);
    assert!(tied.find("decoder.token_embedding.weight").is_none());
    assert!(untied.find("decoder.token_embedding.weight").is_some());
    // A token only the decoder reads (11) and one only the encoder reads (12) both get gradient
    // in the shared table's rows; a token nobody reads (10) gets none beyond the output's.
    let mut params = Params::new();
    let model = EncoderDecoder::new(&mut params, &config(true), &mut StdRng::seed_from_u64(0)).unwrap();
    let mut tape = Tape::new();
    let source = Batch::new(vec![12, 3, 4], 1, 3);
    let target = Batch::new(vec![11, 5], 1, 2);
    let logits = model.forward(&mut tape, &params, &source, &target, &mut StdRng::seed_from_u64(0));
    let loss = tape.cross_entropy(logits, &[Some(6), Some(7)]).mean;
    let grads = tape.backward(loss);
    let table = params.find("encoder.token_embedding.weight").unwrap();
    let g = grads.param(table).unwrap();
    let row_norm = |r: usize| g.index_axis(ndarray::Axis(0), r).iter().map(|x| x * x).sum::<f32>();
    // Rows 11 and 12 get input gradient on top of the output's; row 10 only the output's.
    assert!(row_norm(11) > row_norm(10) * 1.5 && row_norm(12) > row_norm(10) * 1.5);
}
