//! Per-block activation checkpointing (`--checkpoint-blocks`, `Tape::checkpoint`): the
//! recomputed blocks give the same output and the same gradients, to the bit, as the blocks
//! recorded op by op, with and without dropout (the replay must reuse forward's masks), in
//! both norm placements, for the encoder stack and for the encoder-decoder's decoder layer.

use microlm::nn::{DecoderLayer, EncoderLayer, NormPlacement, TransformerConfig};
use microlm::{AttentionMask, Gradients, Params, Tape, Tensor, Var};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Values uniform in [-1, 1), from a seed.
fn uniform(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random::<f32>() * 2.0 - 1.0)
}

fn config(norm: NormPlacement, dropout: f32) -> TransformerConfig {
    TransformerConfig {
        vocab_size: 11,
        d_model: 16,
        heads: 2,
        layers: 3,
        d_ff: 40,
        max_len: 16,
        dropout,
        norm,
        ..TransformerConfig::toy(11)
    }
}

/// Weights well away from the 0.02 init, so every sub-layer visibly changes its input.
fn enlarge(params: &mut Params) {
    for id in params.ids().collect::<Vec<_>>() {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from(uniform(&shape, id.index() as u64 + 100) * 0.5);
    }
}

/// One run: the output's bits, and the gradients of L = sum(y * w).
struct Run {
    y: Vec<u32>,
    dx: Vec<u32>,
    dmemory: Vec<f32>,
    dparams: Vec<(String, Vec<u32>)>,
    nodes: usize,
    next_draw: u64,
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn collect(tape: Tape, params: &Params, y: Var, x: Var, memory: Option<Var>, rng: &mut StdRng) -> Run {
    let y_bits = bits(&tape.value(y).to_owned());
    let nodes = tape.len();
    let w = uniform(tape.shape(y), 99);
    let mut tape = tape;
    let wv = tape.constant(w);
    let p = tape.mul(y, wv);
    let loss = tape.sum_all(p);
    let grads: Gradients = tape.backward(loss);
    let mut dparams: Vec<(String, Vec<u32>)> = grads
        .params()
        .map(|(id, g)| (params.name(id).to_string(), bits(g)))
        .collect();
    dparams.sort();
    Run {
        y: y_bits,
        dx: bits(grads.wrt(x).expect("dL/dx")),
        dmemory: memory.map_or(Vec::new(), |m| {
            grads.wrt(m).expect("dL/dmemory").iter().copied().collect()
        }),
        dparams,
        nodes,
        next_draw: rng.next_u64(),
    }
}

fn assert_same(what: &str, a: &Run, b: &Run) {
    assert_eq!(a.y, b.y, "{what}: outputs differ");
    assert_eq!(a.dx, b.dx, "{what}: dL/dx differs");
    // The memory is read inside the block (the cross-attention's K and V) and outside it. Op by
    // op, its three contributions are added one at a time as backward reaches them, (g_out +
    // g_V) + g_K; checkpointed, the block's two are summed first, g_out + (g_V + g_K). That is
    // the one place the bits may differ: by the rounding of a reassociated sum of three terms,
    // under 2 ulps of the largest of them. We allow 4 ulps of the gradient's largest element.
    assert_eq!(a.dmemory.len(), b.dmemory.len());
    let scale = a.dmemory.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.dmemory.iter().zip(&b.dmemory).enumerate() {
        assert!(
            (x - y).abs() <= 4.0 * f32::EPSILON * scale,
            "{what}: dL/dmemory[{i}] {x} against {y}"
        );
    }
    assert_eq!(a.dparams.len(), b.dparams.len(), "{what}: not the same parameters");
    for ((name, ga), (_, gb)) in a.dparams.iter().zip(&b.dparams) {
        assert_eq!(ga, gb, "{what}: the gradient of {name} differs");
    }
    assert_eq!(a.next_draw, b.next_draw, "{what}: the generator moved differently");
}

fn encoder_run(layers: &[EncoderLayer], params: &Params, checkpoint: bool, training: bool) -> Run {
    let mut tape = Tape::new();
    tape.set_checkpoint_blocks(checkpoint);
    tape.set_training(training);
    let mut rng = StdRng::seed_from_u64(42);
    let x = tape.input(uniform(&[2, 5, 16], 7));
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![5, 3]),
    };
    let mut h = x;
    for layer in layers {
        h = layer.forward(&mut tape, params, h, &mask, None, &mut rng);
    }
    collect(tape, params, h, x, None, &mut rng)
}

#[test]
fn checkpointed_encoder_layers_give_the_same_bits_with_and_without_dropout() {
    for norm in [NormPlacement::Pre, NormPlacement::Post] {
        for dropout in [0.0, 0.2] {
            let c = config(norm, dropout);
            let mut params = Params::new();
            let mut rng = StdRng::seed_from_u64(3);
            let layers: Vec<EncoderLayer> = (0..c.layers)
                .map(|i| EncoderLayer::new(&mut params, &format!("layers.{i}"), &c, &mut rng))
                .collect();
            enlarge(&mut params);
            let plain = encoder_run(&layers, &params, false, true);
            let checkpointed = encoder_run(&layers, &params, true, true);
            let what = format!("{norm:?}, dropout {dropout}");
            assert_same(&what, &plain, &checkpointed);
            // One node a layer instead of the layer's ops: the inside is not kept.
            assert!(
                checkpointed.nodes + 20 < plain.nodes,
                "{what}: {} nodes checkpointed against {}",
                checkpointed.nodes,
                plain.nodes
            );
            if dropout > 0.0 {
                // The masks are in play: without dropout the output is another one.
                let eval = encoder_run(&layers, &params, false, false);
                assert_ne!(eval.y, plain.y, "{what}: dropout changed nothing");
            }
        }
    }
}

fn decoder_run(layer: &DecoderLayer, params: &Params, checkpoint: bool) -> Run {
    let mut tape = Tape::new();
    tape.set_checkpoint_blocks(checkpoint);
    let mut rng = StdRng::seed_from_u64(8);
    let x = tape.input(uniform(&[2, 4, 16], 9));
    let memory = tape.input(uniform(&[2, 6, 16], 10));
    let self_mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![4, 2]),
    };
    let memory_mask = AttentionMask::padding(vec![6, 3]);
    let y = layer.forward(&mut tape, params, x, memory, &self_mask, &memory_mask, None, &mut rng);
    // A second use of the memory outside the block: its gradients add.
    let m = memory_slice(&mut tape, memory);
    let y = tape.add(y, m);
    collect(tape, params, y, x, Some(memory), &mut rng)
}

/// The memory's first 4 positions, to add to the decoder's [2, 4, 16] output.
fn memory_slice(tape: &mut Tape, memory: Var) -> Var {
    tape.narrow(memory, 1, 0, 4)
}

#[test]
fn checkpointed_decoder_layer_gives_the_same_bits_with_dropout() {
    for norm in [NormPlacement::Pre, NormPlacement::Post] {
        let c = config(norm, 0.25);
        let mut params = Params::new();
        let layer = DecoderLayer::new(&mut params, "decoder.layers.0", &c, &mut StdRng::seed_from_u64(4));
        enlarge(&mut params);
        let plain = decoder_run(&layer, &params, false);
        let checkpointed = decoder_run(&layer, &params, true);
        assert_same(&format!("decoder layer {norm:?}"), &plain, &checkpointed);
    }
}

#[test]
fn a_tape_that_records_nothing_runs_the_block_plainly() {
    let c = config(NormPlacement::Pre, 0.0);
    let mut params = Params::new();
    let layer = EncoderLayer::new(&mut params, "layer", &c, &mut StdRng::seed_from_u64(5));
    let mask = AttentionMask::none();
    let run = |checkpoint: bool| {
        let mut tape = Tape::no_grad();
        tape.set_checkpoint_blocks(checkpoint);
        let x = tape.constant(uniform(&[1, 3, 16], 1));
        let y = layer.forward(&mut tape, &params, x, &mask, None, &mut StdRng::seed_from_u64(0));
        (bits(&tape.value(y).to_owned()), tape.len())
    };
    assert_eq!(run(false), run(true));
}
