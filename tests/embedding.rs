//! The input embedding's knobs: the token table's init std, the factor on the positions, and
//! the LayerNorm on the sum; and that each is stored in checkpoint metadata.

use microlm::data::Batch;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::positional::sinusoidal_table;
use microlm::nn::{InputEmbedding, TransformerConfig};
use microlm::{Params, Tape};
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn config(d: usize) -> TransformerConfig {
    TransformerConfig {
        d_model: d,
        heads: 2,
        layers: 1,
        d_ff: 4 * d,
        max_len: 16,
        dropout: 0.0,
        ..TransformerConfig::toy(40)
    }
}

/// The embedding's output x [B, T, D] for `ids` (one sequence) under `config`, built with seed 7.
fn embed(config: &TransformerConfig, ids: &[usize]) -> (ArrayD<f32>, Params, InputEmbedding) {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(7);
    let emb = InputEmbedding::new(&mut params, "enc", config, &mut rng);
    let mut tape = Tape::new();
    let x = emb.forward(&mut tape, &params, &Batch::new(ids.to_vec(), 1, ids.len()), 0, &mut rng);
    (tape.value(x).to_owned(), params, emb)
}

/// The sample standard deviation of the token table is the requested one (or the automatic
/// one: 1/sqrt(d) when scaled, 0.02 when not) within 5% over 40 x 64 draws.
#[test]
fn token_table_starts_at_the_requested_std() {
    let d = 64;
    for (scale, std, expected) in [
        (true, None, 0.125),
        (false, None, 0.02),
        (true, Some(0.02), 0.02),
        (false, Some(0.125), 0.125),
    ] {
        let c = TransformerConfig {
            scale_embeddings: scale,
            token_init_std: std,
            ..config(d)
        };
        let (_, params, emb) = embed(&c, &[1]);
        let w = params.value(emb.token.weight);
        let n = w.len() as f32;
        let mean = w.sum() / n;
        let sd = (w.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
        assert!(
            (sd / expected - 1.0).abs() < 0.05,
            "scale {scale}, std {std:?}: sample std {sd}, expected {expected}"
        );
    }
}

/// x(a) - x(0) = a PE, with the same token table (same seed): the factor scales the positions
/// and nothing else.
#[test]
fn position_scale_multiplies_the_sinusoid_only() {
    let ids = [3, 9, 9, 0, 27];
    let pe = sinusoidal_table(16, 8);
    let (x0, _, _) = embed(
        &TransformerConfig {
            position_scale: 0.0,
            ..config(8)
        },
        &ids,
    );
    for a in [0.5f32, 1.0, 2.0] {
        let (xa, _, _) = embed(
            &TransformerConfig {
                position_scale: a,
                ..config(8)
            },
            &ids,
        );
        for t in 0..ids.len() {
            for j in 0..8 {
                let diff = xa[[0, t, j]] - x0[[0, t, j]];
                assert!(
                    (diff - a * pe[[t, j]]).abs() < 1e-5,
                    "a = {a}, t = {t}, j = {j}: {diff} vs {}",
                    a * pe[[t, j]]
                );
            }
        }
    }
}

/// With the LayerNorm on the sum (gain 1, bias 0 at init) every position's vector has mean 0
/// and variance 1 up to eps; without it the scaled sum does not.
#[test]
fn embedding_norm_normalises_each_position() {
    let ids = [5, 1, 30, 30];
    let with = TransformerConfig {
        embedding_norm: true,
        ..config(16)
    };
    let (x, params, _) = embed(&with, &ids);
    assert!(params.find("enc.embedding_norm.weight").is_some());
    for t in 0..ids.len() {
        let row: Vec<f32> = (0..16).map(|j| x[[0, t, j]]).collect();
        let mean = row.iter().sum::<f32>() / 16.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 16.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "t = {t}: mean {mean}, var {var}"
        );
    }
    let (x, _, _) = embed(&config(16), &ids);
    let var0 = (0..16).map(|j| x[[0, 0, j]] * x[[0, 0, j]]).sum::<f32>() / 16.0;
    assert!(
        (var0 - 1.0).abs() > 0.05,
        "without the norm the first row has var {var0}"
    );
}

/// Gradients through the LayerNorm on the sum reach the token table and the norm's own
/// parameters, and agree with central differences.
#[test]
fn embedding_norm_passes_gradcheck() {
    let c = TransformerConfig {
        embedding_norm: true,
        vocab_size: 6,
        ..config(8)
    };
    let mut params = Params::new();
    let emb = InputEmbedding::new(&mut params, "enc", &c, &mut StdRng::seed_from_u64(3));
    let batch = Batch::new(vec![1, 4, 4, 2, 0, 5], 2, 3);
    let w = ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 8]), |ix| {
        ((ix[0] * 24 + ix[1] * 8 + ix[2]) as f32 * 0.37).sin()
    });
    let report = gradcheck_params(
        |tape, params| {
            let x = emb.forward(tape, params, &batch, 0, &mut StdRng::seed_from_u64(0));
            let w = tape.constant(w.clone());
            let p = tape.mul(x, w);
            tape.sum_all(p)
        },
        &params,
        GradcheckConfig::default(),
    );
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checked > 0);
}

/// Each knob is stored under `config.<field>`, read back, and a checkpoint written before the
/// knobs existed reads as the old behaviour: automatic std, no norm, positions times 1.
#[test]
fn knobs_round_trip_through_metadata() {
    let c = TransformerConfig {
        token_init_std: Some(0.02),
        embedding_norm: true,
        position_scale: 0.25,
        ..TransformerConfig::toy(50)
    };
    let m = c.to_metadata();
    assert_eq!(m["config.token_init_std"], "0.02");
    assert_eq!(TransformerConfig::from_metadata(&m).unwrap(), c);
    let mut old = m.clone();
    for k in [
        "config.token_init_std",
        "config.embedding_norm",
        "config.position_scale",
    ] {
        old.remove(k);
    }
    let read = TransformerConfig::from_metadata(&old).unwrap();
    assert_eq!(
        (read.token_init_std, read.embedding_norm, read.position_scale),
        (None, false, 1.0)
    );
    let mut bad = m;
    bad.insert("config.position_scale".into(), "-1".into());
    let e = TransformerConfig::from_metadata(&bad).unwrap_err();
    assert!(e.contains("position_scale") && e.contains("-1"), "{e}");
}
