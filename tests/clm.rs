//! The CLM objective against `docs/objectives.md` §4: the worked example, padding, the target count,
//! and causality of the decoder it trains.

use microlm::data::Batch;
use microlm::nn::{Decoder, TransformerConfig};
use microlm::objectives::clm::{clm_loss, next_token_targets};
use microlm::tokenizer::PAD;
use microlm::{Params, Tape, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// docs/objectives.md §4: V = 3, x = (0, 1, 2); z_0 = 0 with target 1 gives ln 3, z_1 = (0, 0, ln 2)
/// with target 2 gives ln 2; L = 0.8958797. The last position's logits (and a padded one's)
/// must not matter.
fn worked_example(x: Batch, t_len: usize) -> (f32, usize, Vec<f32>) {
    let mut z = vec![0.0, 0.0, 0.0, 0.0, 0.0, 2f32.ln()];
    z.extend((6..3 * t_len).map(|i| (i as f32 * 1.7).sin() * 5.0)); // arbitrary
    let mut tape = Tape::new();
    let zv = tape.input(Tensor::from_shape_vec(vec![1, t_len, 3], z).unwrap());
    let ce = clm_loss(&mut tape, zv, &x);
    let (loss, count) = (tape.scalar(ce.mean), ce.count);
    let g = tape.backward(ce.mean).wrt(zv).unwrap().iter().copied().collect();
    (loss, count, g)
}

#[test]
fn worked_example_and_an_appended_pad() {
    let (loss, count, g) = worked_example(Batch::new(vec![0, 1, 2], 1, 3), 3);
    assert!((loss - 0.8958797).abs() < 1e-6, "{loss}");
    assert_eq!(count, 2);
    // dL/dz_0 = (softmax(0) - onehot(1)) / 2; the last position gets exactly 0.
    let third = 1.0 / 3.0;
    for (j, want) in [third / 2.0, (third - 1.0) / 2.0, third / 2.0].iter().enumerate() {
        assert!((g[j] - want).abs() < 1e-6);
    }
    assert_eq!(&g[6..9], &[0.0, 0.0, 0.0]);

    let padded = Batch::new(vec![0, 1, 2, PAD], 1, 4).with_lengths(vec![3]);
    let (loss_padded, count_padded, g_padded) = worked_example(padded, 4);
    assert_eq!(loss_padded, loss, "appending a PAD changed the loss");
    assert_eq!(count_padded, 2);
    assert_eq!(&g_padded[9..12], &[0.0, 0.0, 0.0]);
}

#[test]
fn padding_is_ignored_by_length_not_by_id() {
    // PAD's id (0) as a real token is a target; a padded position is not, whatever its id.
    let x = Batch::new(vec![5, PAD, 6, 7, 9, 9], 2, 3).with_lengths(vec![3, 1]);
    assert_eq!(next_token_targets(&x), vec![Some(PAD), Some(6), None, None, None, None]);
}

#[test]
fn target_count_is_the_sum_of_lengths_minus_one() {
    let lengths = vec![5, 1, 3, 0, 5];
    let x = Batch::new(vec![1; 25], 5, 5).with_lengths(lengths.clone());
    let want: usize = lengths.iter().map(|&n: &usize| n.saturating_sub(1)).sum();
    assert_eq!(next_token_targets(&x).iter().flatten().count(), want);
}

#[test]
fn a_batch_without_targets_gives_zero() {
    let x = Batch::new(vec![3, 4], 2, 1);
    let mut tape = Tape::new();
    let z = tape.input(Tensor::zeros(vec![2, 1, 6]));
    let ce = clm_loss(&mut tape, z, &x);
    assert_eq!((tape.scalar(ce.mean), ce.count), (0.0, 0));
}

#[test]
fn changing_x_k_leaves_every_earlier_logit_bitwise_unchanged() {
    let config = TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 2,
        d_ff: 32,
        max_len: 12,
        dropout: 0.0,
        ..TransformerConfig::toy(13)
    };
    let mut rng = StdRng::seed_from_u64(2);
    let mut params = Params::new();
    let decoder = Decoder::new(&mut params, "decoder", &config, &mut rng).unwrap();
    let ids: Vec<usize> = (0..2 * 12).map(|_| rng.random_range(0..13)).collect();
    let logits = |ids: Vec<usize>| {
        let mut tape = Tape::no_grad();
        let z = decoder.forward(
            &mut tape,
            &params,
            &Batch::new(ids, 2, 12),
            &mut StdRng::seed_from_u64(0),
        );
        tape.value(z).to_owned()
    };
    let before = logits(ids.clone());
    for k in [0, 5, 11] {
        let mut changed = ids.clone();
        changed[k] = (changed[k] + 1) % 13; // sequence 0
        changed[12 + k] = (changed[12 + k] + 5) % 13; // sequence 1
        let after = logits(changed);
        for b in 0..2 {
            for t in 0..12 {
                let same = (0..13).all(|v| before[[b, t, v]].to_bits() == after[[b, t, v]].to_bits());
                if t < k {
                    assert!(same, "logits at t = {t} < k = {k} changed");
                } else if t == k {
                    assert!(!same, "logits at t = k = {k} did not change");
                }
            }
        }
    }
}
