//! Our encoder and decoder layers against PyTorch's `nn.TransformerEncoderLayer` and
//! `nn.TransformerDecoderLayer` (d_model 8, 2 heads, d_ff 16, dropout 0, batch_first, eps 1e-5),
//! from the same weights and masks, for every activation (ReLU, exact GELU, tanh-approximated
//! GELU) and both norm placements. The reference tensors were made once by
//! `tests/fixtures/make_torch_layers.py` (PyTorch 2.15, CPU) and are committed; no Python runs here.

use microlm::checkpoint;
use microlm::nn::config::Activation;
use microlm::nn::{DecoderLayer, EncoderLayer, NormPlacement, TransformerConfig};
use microlm::{AttentionMask, Params, Tape, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::Path;

fn fixture() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_layers.safetensors");
    checkpoint::read(&path).expect("the fixture loads").tensors
}

fn config(activation: Activation, norm: NormPlacement) -> TransformerConfig {
    TransformerConfig {
        d_model: 8,
        heads: 2,
        d_ff: 16,
        activation,
        dropout: 0.0,
        norm,
        ..TransformerConfig::toy(10)
    }
}

/// Overwrite every parameter with the fixture's tensor of the same name.
fn load(params: &mut Params, fx: &BTreeMap<String, Tensor>) {
    for id in params.ids().collect::<Vec<_>>() {
        let name = params.name(id).to_string();
        let t = fx.get(&name).unwrap_or_else(|| panic!("fixture lacks {name}"));
        assert_eq!(t.shape(), params.value(id).shape(), "{name}");
        *params.value_mut(id) = t.clone();
    }
}

/// Every (activation, norm placement) the fixture holds, and the layer-name suffix
/// `{activation}_{norm}` its tensors carry.
fn variants() -> Vec<(Activation, NormPlacement, String)> {
    let mut v = Vec::new();
    for act in [Activation::Relu, Activation::Gelu, Activation::GeluTanh] {
        for norm in [NormPlacement::Post, NormPlacement::Pre] {
            v.push((act, norm, format!("{}_{}", act.as_str(), norm.as_str())));
        }
    }
    v
}

fn lengths(fx: &BTreeMap<String, Tensor>, key: &str) -> Vec<usize> {
    fx[key].iter().map(|&v| v as usize).collect()
}

/// Largest |ours - torch|; PyTorch's exact-erf GELU and ours differ by under 1e-7 (both tanh
/// GELUs are the same f32 formula), and f32 rounding in a different summation order adds a few
/// 1e-7 more.
fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn encoder_layer_matches_pytorch_for_each_activation_norm_placement_and_mask() {
    let fx = fixture();
    for (act, norm, tag) in variants() {
        let name = format!("enc_{tag}");
        let mut params = Params::new();
        let layer = EncoderLayer::new(&mut params, &name, &config(act, norm), &mut StdRng::seed_from_u64(0));
        load(&mut params, &fx);
        for (mask, expected) in [
            (
                AttentionMask::padding(lengths(&fx, "src_lengths")),
                format!("{name}.y_padding"),
            ),
            (AttentionMask::causal(), format!("{name}.y_causal")),
        ] {
            let mut tape = Tape::no_grad();
            let x = tape.constant(fx[&format!("{name}.x")].clone());
            let y = layer.forward(&mut tape, &params, x, &mask, None, &mut StdRng::seed_from_u64(0));
            let d = max_diff(tape.value(y), &fx[&expected]);
            assert!(d < 2e-5, "{expected}: max |ours - torch| = {d:e}");
        }
    }
}

#[test]
fn decoder_layer_matches_pytorch_for_each_activation_and_norm_placement() {
    let fx = fixture();
    for (act, norm, tag) in variants() {
        let name = format!("dec_{tag}");
        let mut params = Params::new();
        let layer = DecoderLayer::new(&mut params, &name, &config(act, norm), &mut StdRng::seed_from_u64(0));
        load(&mut params, &fx);
        let self_mask = AttentionMask {
            causal: true,
            key_lengths: Some(lengths(&fx, "tgt_lengths")),
        };
        let memory_mask = AttentionMask::padding(lengths(&fx, "mem_lengths"));
        let mut tape = Tape::no_grad();
        let x = tape.constant(fx[&format!("{name}.x")].clone());
        let m = tape.constant(fx[&format!("{name}.memory")].clone());
        let y = layer.forward(
            &mut tape,
            &params,
            x,
            m,
            &self_mask,
            &memory_mask,
            None,
            &mut StdRng::seed_from_u64(0),
        );
        let d = max_diff(tape.value(y), &fx[&format!("{name}.y")]);
        assert!(d < 2e-5, "{name}: max |ours - torch| = {d:e}");
    }
}
