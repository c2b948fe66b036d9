//! The MLM objective against `docs/objectives.md` §1: the exact k table, the 80/10/10
//! statistics, the hand-computed example, exactly zero gradient outside M, and the model's
//! evaluation against a loss and accuracy computed here from its raw logits.

mod common;

use common::tiny_encoder_config;
use microlm::data::Batch;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::{Embedding, MlmHead, TransformerConfig};
use microlm::objectives::{mask_tokens, mlm_loss, num_predictions, Branch, MaskedLm, MlmConfig, MlmVocab, Selection};
use microlm::tokenizer::{CharTokenizer, Tokenizer, CLS, MASK, PAD, SEP, UNK};
use microlm::{Params, Tape, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A char-tokenizer-like vocabulary of 40 ids: specials 0..5, real tokens 5..40.
fn vocab() -> MlmVocab {
    MlmVocab {
        size: 40,
        mask: MASK,
        specials: vec![PAD, CLS, SEP, MASK],
    }
}

fn random_real_tokens(batch: usize, seq_len: usize, rng: &mut StdRng) -> Batch {
    let ids = (0..batch * seq_len).map(|_| rng.random_range(5..40)).collect();
    Batch::new(ids, batch, seq_len)
}

#[test]
fn k_table_of_objectives_md() {
    // docs/objectives.md §1, "Statistics": max_pred 20.
    for (n, k) in [
        (10, 2),
        (12, 2),
        (30, 4),
        (50, 8),
        (70, 10),
        (90, 14),
        (128, 19),
        (512, 20),
    ] {
        assert_eq!(num_predictions(n, 0.15, 20), k, "n = {n}");
    }
    assert_eq!(num_predictions(512, 0.15, 80), 77);
    assert_eq!(num_predictions(3, 0.15, 20), 1, "at least one prediction");
}

#[test]
fn variant_a_masks_exactly_k_per_sequence_of_its_real_length() {
    // [CLS] a b c ... [SEP] then padding: n counts [CLS] and [SEP], not the padding.
    let mut rng = StdRng::seed_from_u64(3);
    let (seq_len, lengths) = (140, vec![10, 12, 30, 50, 70, 90, 128, 140]);
    let mut ids = Vec::new();
    for &n in &lengths {
        let mut row = vec![CLS];
        row.extend((0..n - 2).map(|_| rng.random_range(5..40)));
        row.push(SEP);
        row.resize(seq_len, PAD);
        ids.extend(row);
    }
    let x = Batch::new(ids, lengths.len(), seq_len).with_lengths(lengths.clone());
    for seed in 0..20 {
        let m = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut StdRng::seed_from_u64(seed));
        for (b, &n) in lengths.iter().enumerate() {
            let in_row = m.masked_positions.iter().filter(|&&p| p / seq_len == b).count();
            assert_eq!(in_row, num_predictions(n, 0.15, 20), "sequence {b} of length {n}");
        }
        for &p in &m.masked_positions {
            let (b, i) = (p / seq_len, p % seq_len);
            assert!(i < lengths[b], "padding position {i} of sequence {b} was chosen");
            assert!(![CLS, SEP, PAD].contains(&x.ids[p]), "a special at {p} was chosen");
        }
    }
}

#[test]
fn specials_are_never_chosen_and_unk_is() {
    // A sequence of specials only has no candidates: M is empty. [UNK] is a candidate.
    let x = Batch::new(vec![CLS, MASK, SEP, PAD, CLS, UNK, UNK, SEP], 2, 4);
    let m = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut StdRng::seed_from_u64(0));
    assert!(
        m.masked_positions.iter().all(|&p| p == 5 || p == 6),
        "{:?}",
        m.masked_positions
    );
    assert_eq!(
        m.masked_positions.len(),
        1,
        "k = max(1, round(0.6)) = 1 for the second sequence"
    );
    let b = MlmConfig {
        selection: Selection::Independent,
        ..MlmConfig::default()
    };
    for seed in 0..50 {
        let m = mask_tokens(&x, &vocab(), &b, &mut StdRng::seed_from_u64(seed));
        assert!(m.masked_positions.iter().all(|&p| p == 5 || p == 6));
    }
}

#[test]
fn corruption_follows_its_branch_and_labels_hold_the_original() {
    let mut rng = StdRng::seed_from_u64(7);
    let x = random_real_tokens(16, 64, &mut rng);
    let m = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut rng);
    assert!(
        m.masked_positions.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    let mut in_m = vec![false; x.ids.len()];
    for ((&p, &x_i), &branch) in m.masked_positions.iter().zip(&m.labels).zip(&m.branches) {
        in_m[p] = true;
        assert_eq!(x_i, x.ids[p]);
        match branch {
            Branch::Mask => assert_eq!(m.x_masked.ids[p], MASK),
            Branch::Keep => assert_eq!(m.x_masked.ids[p], x_i),
            Branch::Random => assert!(m.x_masked.ids[p] < 40),
        }
    }
    for (p, _) in in_m.iter().enumerate().filter(|(_, &masked)| !masked) {
        assert_eq!(m.x_masked.ids[p], x.ids[p], "position {p} outside M was changed");
    }
    let labels = m.labels_per_position();
    assert_eq!(labels.iter().filter(|l| l.is_some()).count(), m.labels.len());
    // Same seed, same corruption.
    let again = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut StdRng::seed_from_u64(7));
    let first = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut StdRng::seed_from_u64(7));
    assert_eq!(again, first);
}

/// Shares of each branch among the chosen positions, over `x`.
fn branch_shares(m: &microlm::objectives::MaskedBatch) -> (f64, f64, f64) {
    let n = m.branches.len() as f64;
    let share = |b: Branch| m.branches.iter().filter(|&&x| x == b).count() as f64 / n;
    (share(Branch::Mask), share(Branch::Random), share(Branch::Keep))
}

#[test]
fn variant_b_statistics_on_1e5_tokens() {
    // docs/objectives.md §1: selection 0.15 ± 0.006; among selected, 0.80 ± 0.017, 0.10 ± 0.013 each.
    let mut rng = StdRng::seed_from_u64(11);
    let x = random_real_tokens(100, 1000, &mut rng); // 10^5 eligible tokens
    let config = MlmConfig {
        selection: Selection::Independent,
        ..MlmConfig::default()
    };
    let m = mask_tokens(&x, &vocab(), &config, &mut rng);
    let rate = m.masked_positions.len() as f64 / 1e5;
    assert!((rate - 0.15).abs() < 0.006, "selection rate {rate}");
    let (mask, random, keep) = branch_shares(&m);
    assert!((mask - 0.80).abs() < 0.017, "[MASK] share {mask}");
    assert!((random - 0.10).abs() < 0.013, "random share {random}");
    assert!((keep - 0.10).abs() < 0.013, "kept share {keep}");
}

#[test]
fn variant_a_branch_statistics_on_1e5_tokens() {
    // 10^5 tokens in sequences of 128: k = 19 each, so 781 * 19 = 14,839 chosen.
    let mut rng = StdRng::seed_from_u64(12);
    let x = random_real_tokens(781, 128, &mut rng);
    let m = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut rng);
    assert_eq!(m.masked_positions.len(), 781 * 19);
    let (mask, random, keep) = branch_shares(&m);
    assert!((mask - 0.80).abs() < 0.017, "[MASK] share {mask}");
    assert!((random - 0.10).abs() < 0.013, "random share {random}");
    assert!((keep - 0.10).abs() < 0.013, "kept share {keep}");
    // Random replacements are uniform over the whole vocabulary: specials included.
    let drew_special = m
        .masked_positions
        .iter()
        .zip(&m.branches)
        .any(|(&p, &b)| b == Branch::Random && m.x_masked.ids[p] < 5);
    assert!(drew_special, "1,500 uniform draws over 40 ids never hit the 5 specials");
}

#[test]
fn hand_computed_example_and_zero_gradient_outside_m() {
    // docs/objectives.md §1: V = 4, M = {1, 3}, y1 = 0, y3 = 3, z1 = (2,0,0,0), z3 = 0;
    // positions 0 and 2 hold arbitrary logits that must not matter.
    let z = Tensor::from_shape_vec(
        vec![4, 4],
        vec![
            5.0, -1.0, 0.5, 3.0, 2.0, 0.0, 0.0, 0.0, -2.0, 7.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    )
    .unwrap();
    let mut tape = Tape::new();
    let zv = tape.input(z);
    let masked_positions = [1, 3];
    let z_masked = tape.embedding(zv, &masked_positions, &[2]); // rows of z at M
    let ce = mlm_loss(&mut tape, z_masked, &[0, 3]);
    assert_eq!(ce.count, 2);
    assert!(
        (tape.scalar(ce.mean) - 0.8635237).abs() < 1e-6,
        "{}",
        tape.scalar(ce.mean)
    );
    assert!(
        (tape.scalar(ce.sum) - 1.7270473).abs() < 1e-6,
        "{}",
        tape.scalar(ce.sum)
    );
    let grads = tape.backward(ce.mean);
    let g = grads.wrt(zv).unwrap();
    let expected_row1 = [-0.1443827, 0.0481276, 0.0481276, 0.0481276];
    for (j, e) in expected_row1.iter().enumerate() {
        assert!((g[[1, j]] - e).abs() < 1e-6, "dL/dz1[{j}] = {}", g[[1, j]]);
        assert!((g[[3, j]] - (0.25 - if j == 3 { 1.0 } else { 0.0 }) / 2.0).abs() < 1e-6);
        assert_eq!(g[[0, j]], 0.0, "position 0 is outside M");
        assert_eq!(g[[2, j]], 0.0, "position 2 is outside M");
    }
}

fn tiny_config() -> TransformerConfig {
    tiny_encoder_config(40)
}

/// A character tokenizer of 35 characters after the 5 specials: the 40 ids of [`vocab`].
fn tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefghijklmnopqrstuvwxyzABCDEFGHI"))
}

fn tiny_model(params: &mut Params, rng: &mut StdRng) -> MaskedLm {
    let model = MaskedLm::new(params, &tiny_config(), &tokenizer(), true, rng).unwrap();
    assert_eq!(
        model.vocab,
        vocab(),
        "the tokenizer's specials are the ones the tests assume"
    );
    model
}

#[test]
fn empty_m_gives_zero_loss_and_exactly_zero_gradient_through_the_model() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut params = Params::new();
    let model = tiny_model(&mut params, &mut rng);
    // Nothing but specials: no candidate, so M is empty.
    let x = Batch::new(vec![CLS, PAD, SEP, MASK, CLS, SEP, PAD, PAD], 2, 4);
    let mut tape = Tape::new();
    let ce = model.loss(&mut tape, &params, &x, &mut rng);
    assert_eq!((tape.scalar(ce.mean), tape.scalar(ce.sum), ce.count), (0.0, 0.0, 0));
    let grads = tape.backward(ce.mean);
    let mut checked = 0;
    for id in params.ids() {
        if let Some(g) = grads.param(id) {
            assert!(g.iter().all(|&v| v == 0.0), "{} has a gradient", params.name(id));
            checked += 1;
        }
    }
    assert!(checked > 0, "backward reached no parameter");
}

#[test]
fn hidden_states_outside_m_get_exactly_zero_gradient_through_the_head() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut params = Params::new();
    let embedding = Embedding::new(&mut params, "emb", 40, 8, &mut rng);
    let head = MlmHead::new(&mut params, "head", &embedding, true, true, 1e-5, &mut rng);
    let h = Tensor::from_shape_fn(vec![6, 8], |_| rng.random::<f32>() - 0.5);
    let mut tape = Tape::new();
    let hv = tape.input(h);
    let masked_positions = [1, 4];
    let h_masked = tape.embedding(hv, &masked_positions, &[2]);
    let z = head.forward(&mut tape, &params, h_masked);
    let ce = mlm_loss(&mut tape, z, &[7, 30]);
    let grads = tape.backward(ce.mean);
    let g = grads.wrt(hv).unwrap();
    for row in 0..6 {
        let norm: f32 = (0..8).map(|j| g[[row, j]].abs()).sum();
        if masked_positions.contains(&row) {
            assert!(norm > 0.0, "masked row {row} got no gradient");
        } else {
            assert_eq!(norm, 0.0, "row {row} is outside M");
        }
    }
}

#[test]
fn mlm_head_and_model_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut params = Params::new();
    let model = tiny_model(&mut params, &mut rng);
    // At init (std 0.02) the head's LayerNorm sees a nearly constant input, where central
    // differences with eps 1e-2 are not accurate; O(1) weights keep every layer well scaled.
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from_shape_fn(shape, |_| rng.random::<f32>() - 0.5);
    }
    let x = random_real_tokens(2, 6, &mut rng);
    let batch = mask_tokens(&x, &vocab(), &MlmConfig::default(), &mut rng);
    let report = gradcheck_params(
        |tape, params| {
            model
                .loss_masked(tape, params, &batch, &mut StdRng::seed_from_u64(0))
                .mean
        },
        &params,
        GradcheckConfig::default(),
    )
    .unwrap();
    assert!(report.worst_ratio <= 1.0, "{report:?}");
}

#[test]
fn evaluation_matches_a_loss_and_accuracy_computed_from_the_raw_logits() {
    let mut rng = StdRng::seed_from_u64(10);
    let mut params = Params::new();
    let model = tiny_model(&mut params, &mut rng);
    // O(1) weights, so the predictions vary and some are right.
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from_shape_fn(shape, |_| 2.0 * (rng.random::<f32>() - 0.5));
    }
    let batches: Vec<Batch> = (0..3).map(|_| random_real_tokens(2, 16, &mut rng)).collect();
    let eval = model.evaluate(&params, &batches);
    // By hand: batch k is masked with seed k (the documented rule); run the encoder and the head
    // over every position, then take -log softmax and the argmax at the masked ones, in f64.
    let (mut loss_sum, mut correct, mut count) = (0.0f64, 0, 0);
    for (k, x) in batches.iter().enumerate() {
        let m = mask_tokens(x, &vocab(), &MlmConfig::default(), &mut StdRng::seed_from_u64(k as u64));
        let mut tape = Tape::no_grad();
        let h = model.encoder.forward(&mut tape, &params, &m.x_masked, &mut rng);
        let z = model.head.forward(&mut tape, &params, h); // [B, T, V]
        let z = tape.value(z).clone().into_shape_with_order(vec![32, 40]).unwrap();
        for (&i, &y) in m.masked_positions.iter().zip(&m.labels) {
            let row: Vec<f64> = (0..40).map(|v| z[[i, v]] as f64).collect();
            let max = row.iter().cloned().fold(f64::MIN, f64::max);
            let log_z = max + row.iter().map(|r| (r - max).exp()).sum::<f64>().ln();
            loss_sum += log_z - row[y];
            correct += (row.iter().position(|&r| r == max).unwrap() == y) as usize;
            count += 1;
        }
    }
    assert_eq!(eval.count, 3 * 2 * 2); // k = round_half_even(0.15 * 16) = 2 per sequence
    assert_eq!(count, eval.count);
    assert!(
        (eval.loss - loss_sum / count as f64).abs() < 1e-5,
        "{} vs {}",
        eval.loss,
        loss_sum / count as f64
    );
    let accuracy = correct as f64 / count as f64;
    assert!(
        (eval.accuracy.unwrap() - accuracy).abs() < 1e-12,
        "{:?} vs {accuracy}",
        eval.accuracy
    );
    assert!(
        correct > 0 && correct < count,
        "a test that cannot tell right from wrong: {correct}/{count}"
    );
    // Probabilities sum to one.
    let m = mask_tokens(&batches[0], &vocab(), &MlmConfig::default(), &mut rng);
    for row in model.probabilities(&params, &m.x_masked, &m.masked_positions) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
