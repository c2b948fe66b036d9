//! ELECTRA against `docs/objectives.md` §7: the worked example, the binary cross-entropy and its
//! gradient by hand, a gradient check of the discriminator head, the label rule (a sample equal
//! to the original counts as original), no gradient from the discriminator into the generator
//! through the samples, the shared token table receiving both losses' gradients, the masking
//! (85% `[MASK]`, no random token), the FLOP count by hand, and the checkpoint read back as an
//! encoder.

mod common;

use common::{fresh_dir, tiny_encoder_config};
use microlm::checkpoint::{load_encoder, objective_of, save};
use microlm::data::Batch;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::objectives::compute::stack_flops;
use microlm::objectives::electra::{detection_loss, electra_mask, replace, sample_rows, DetectionHead};
use microlm::objectives::mlm::Branch;
use microlm::objectives::{electra_loss, Electra};
use microlm::tokenizer::{CharTokenizer, Tokenizer, MASK};
use microlm::{Params, Tape, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefghijklmnopqrstuvwxyzABCDEFGHI"))
}

/// D: d_model 8, 2 heads, 1 layer, 40 ids; G at width 4 (one head of D's head size 4).
fn tiny_electra(params: &mut Params, rng: &mut StdRng) -> Electra {
    Electra::new(params, &tiny_encoder_config(40), &tokenizer(), 4, rng).unwrap()
}

fn random_real_tokens(batch: usize, seq_len: usize, rng: &mut StdRng) -> Batch {
    let ids = (0..batch * seq_len).map(|_| rng.random_range(5..40)).collect();
    Batch::new(ids, batch, seq_len)
}

#[test]
fn worked_example_of_objectives_md() {
    // §7: V = 8, uniform generator logits, discriminator logits all 0:
    // L = ln 8 + 50 ln 2 = 36.7368006, whatever the labels.
    let mut tape = Tape::new();
    let z_g = tape.input(Tensor::zeros(ndarray::IxDyn(&[3, 8])));
    let z_d = tape.input(Tensor::zeros(ndarray::IxDyn(&[6, 1])));
    let d = [Some(0), Some(1), None, Some(1), Some(0), Some(0)];
    let l = electra_loss(&mut tape, z_g, &[1, 7, 3], z_d, &d, 50.0);
    assert!(
        (tape.scalar(l.total) as f64 - 36.7368006).abs() < 2e-5,
        "{}",
        tape.scalar(l.total)
    );
    assert!((tape.scalar(l.generator.mean) - 8f32.ln()).abs() < 1e-6);
    assert!((tape.scalar(l.discriminator.mean) - 2f32.ln()).abs() < 1e-6);
    assert_eq!(
        (l.generator.count, l.discriminator.count),
        (3, 5),
        "padding is not in N"
    );
}

#[test]
fn detection_loss_and_gradient_by_hand() {
    // z = (2, -1, 0.5), d = (1, 0, padding):
    // BCE = log(1 + e^-2) = 0.1269280 and log(1 + e^-1) = 0.3132617, mean 0.2200948;
    // dL/dz = (sigma(z) - d) / 2 = (0.8807971 - 1) / 2 = -0.0596015 and 0.2689414 / 2 = 0.1344707.
    let mut tape = Tape::new();
    let z = tape.input(Tensor::from_shape_vec(vec![3, 1], vec![2.0, -1.0, 0.5]).unwrap());
    let l = detection_loss(&mut tape, z, &[Some(1), Some(0), None]);
    assert!(
        (tape.scalar(l.mean) - 0.2200948).abs() < 1e-6,
        "{}",
        tape.scalar(l.mean)
    );
    let g = tape.backward(l.mean);
    let g = g.wrt(z).unwrap();
    for (got, want) in g.iter().zip([-0.0596015, 0.1344707, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{got} against {want}");
    }
}

#[test]
fn discriminator_head_and_stack_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    // O(1) weights keep every LayerNorm well scaled for central differences at eps 1e-2.
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from_shape_fn(shape, |_| rng.random::<f32>() - 0.5);
    }
    let x_hat = random_real_tokens(2, 6, &mut rng).with_lengths(vec![6, 4]);
    let d: Vec<Option<usize>> = (0..12)
        .map(|i| (i % 6 < [6, 4][i / 6]).then(|| rng.random_range(0..2)))
        .collect();
    let f = |tape: &mut Tape, params: &Params| {
        let z = model.discriminator_logits(tape, params, &x_hat, &mut StdRng::seed_from_u64(0));
        detection_loss(tape, z, &d).mean
    };
    let report = gradcheck_params(f, &params, GradcheckConfig::default()).unwrap();
    assert!(report.worst_ratio <= 1.0, "{report:?}");
    // The head alone, on fixed hidden states.
    let mut params = Params::new();
    let head = DetectionHead::new(&mut params, 5, &mut rng);
    let h = Tensor::from_shape_fn(vec![7, 5], |_| 2.0 * rng.random::<f32>() - 1.0);
    let d = [Some(1), Some(0), Some(0), None, Some(1), Some(0), Some(1)];
    let f = |tape: &mut Tape, params: &Params| {
        let hv = tape.constant(h.clone());
        let z = head.forward(tape, params, hv);
        detection_loss(tape, z, &d).mean
    };
    let report = gradcheck_params(f, &params, GradcheckConfig::default()).unwrap();
    assert!(report.worst_ratio <= 1.0, "{report:?}");
}

#[test]
fn a_sample_equal_to_the_original_counts_as_original() {
    // replace(): positions 1 and 4 get samples; 4's sample is its own token.
    let x = Batch::new(vec![5, 6, 7, 8, 9, 10], 2, 3).with_lengths(vec![3, 2]);
    let (x_hat, d) = replace(&x, &[1, 4], &[20, 9]);
    assert_eq!(x_hat.ids, vec![5, 20, 7, 8, 9, 10]);
    assert_eq!(d, vec![Some(0), Some(1), Some(0), Some(0), Some(0), None]);
    // Through the model: a generator whose output bias makes it sample 'a' everywhere labels a
    // masked 'a' original and every other masked token replaced.
    let mut rng = StdRng::seed_from_u64(2);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    let a = tokenizer().encode("a")[0];
    let bias = model.generator.output.bias;
    params.value_mut(bias)[[a]] = 60.0;
    let ids = (0..4 * 16)
        .map(|i| if i % 2 == 0 { a } else { rng.random_range(5..40) })
        .collect();
    let x = Batch::new(ids, 4, 16);
    let step = model.forward(&mut Tape::new(), &params, &x, &mut rng);
    let (mut kept_a, mut replaced) = (0, 0);
    for &i in &step.masked.masked_positions {
        assert_eq!(
            step.x_hat.ids[i], a,
            "the generator samples 'a' at every masked position"
        );
        let want = (x.ids[i] != a) as usize;
        assert_eq!(step.d[i], Some(want), "position {i}: original {}", x.ids[i]);
        kept_a += (want == 0) as usize;
        replaced += want;
    }
    assert!(kept_a > 0 && replaced > 0, "{kept_a} masked 'a's, {replaced} others");
    let masked: std::collections::BTreeSet<_> = step.masked.masked_positions.iter().collect();
    for i in (0..64).filter(|i| !masked.contains(i)) {
        assert_eq!(
            (step.x_hat.ids[i], step.d[i]),
            (x.ids[i], Some(0)),
            "position {i} is not masked"
        );
    }
}

#[test]
fn samples_follow_the_softmax() {
    // Logits ln(0.5, 0.3, 0.2): 20,000 draws, each share within 5 sd (sd <= 0.0036).
    let mut rng = StdRng::seed_from_u64(3);
    let row = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
    let logits: Vec<f32> = (0..20_000).flat_map(|_| row).collect();
    let s = sample_rows(&logits, 3, &mut rng);
    for (v, p) in [0.5, 0.3, 0.2].iter().enumerate() {
        let share = s.iter().filter(|&&x| x == v).count() as f64 / 20_000.0;
        assert!(
            (share - p).abs() < 5.0 * (p * (1.0 - p) / 20_000.0f64).sqrt(),
            "{v}: {share}"
        );
    }
}

/// Every parameter's gradient from `loss` (selected from the step) as (name, sum of |g|).
fn gradient_sizes(model: &Electra, params: &Params, which: usize) -> Vec<(String, f32)> {
    let mut tape = Tape::new();
    let x = random_real_tokens(3, 16, &mut StdRng::seed_from_u64(7));
    let step = model.forward(&mut tape, params, &x, &mut StdRng::seed_from_u64(8));
    let l = [step.loss.generator.mean, step.loss.discriminator.mean, step.loss.total][which];
    let grads = tape.backward(l);
    params
        .ids()
        .map(|id| {
            let size = grads.param(id).map_or(0.0, |g| g.iter().map(|v| v.abs()).sum());
            (params.name(id).to_string(), size)
        })
        .collect()
}

#[test]
fn no_gradient_reaches_the_generator_through_the_samples() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    for (name, size) in gradient_sizes(&model, &params, 1) {
        match name.as_str() {
            n if n.starts_with("generator.") => assert_eq!(size, 0.0, "L_D reached {n}"),
            "encoder.token_embedding.weight" => assert!(size > 0.0, "L_D must reach the shared table"),
            n if n.starts_with("encoder.layers.0.self_attn") => assert!(size > 0.0, "{n}"),
            _ => {}
        }
    }
    // And the generator's loss never reaches the discriminator's own layers or head.
    for (name, size) in gradient_sizes(&model, &params, 0) {
        if name.starts_with("encoder.layers.") || name.starts_with("discriminator_head.") {
            assert_eq!(size, 0.0, "L_MLM(G) reached {name}");
        }
    }
}

#[test]
fn the_shared_token_table_is_one_parameter_with_both_gradients() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    let e = model.discriminator.embed.token.weight;
    assert_eq!(model.generator.output.weight, e, "G's output projection is E itself");
    let tables: Vec<_> = params
        .ids()
        .filter(|&id| params.name(id).contains("token_embedding"))
        .collect();
    assert_eq!(tables, vec![e]);
    let grad_of = |which: usize| {
        let mut tape = Tape::new();
        let x = random_real_tokens(3, 16, &mut StdRng::seed_from_u64(7));
        let step = model.forward(&mut tape, &params, &x, &mut StdRng::seed_from_u64(8));
        let l = [step.loss.generator.mean, step.loss.discriminator.mean, step.loss.total][which];
        tape.backward(l).param(e).unwrap().to_owned()
    };
    let (g_gen, g_disc, g_total) = (grad_of(0), grad_of(1), grad_of(2));
    let norm = |g: &ndarray::ArrayD<f32>| g.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(
        norm(&g_gen) > 1e-6 && norm(&g_disc) > 1e-6,
        "{} {}",
        norm(&g_gen),
        norm(&g_disc)
    );
    let expected = &g_gen + &(g_disc * 50.0); // dL/dE = dL_MLM/dE + lambda dL_D/dE
    for (got, want) in g_total.iter().zip(expected.iter()) {
        assert!((got - want).abs() <= 1e-5 + 1e-4 * want.abs(), "{got} against {want}");
    }
}

#[test]
fn masking_is_85_percent_mask_15_percent_kept_and_never_random() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    let (mut masked, mut total) = (0usize, 0usize);
    for _ in 0..200 {
        let x = random_real_tokens(8, 16, &mut rng);
        let m = electra_mask(&x, &model.vocab, &model.corruption, &mut rng);
        // k = max(1, min(floor(0.155 * 16) = 2, round_half_even(0.15 * 16) = 2)) = 2 per sequence.
        assert_eq!(m.masked_positions.len(), 16);
        for (j, &i) in m.masked_positions.iter().enumerate() {
            match m.branches[j] {
                Branch::Mask => assert_eq!(m.x_masked.ids[i], MASK),
                Branch::Keep => assert_eq!(m.x_masked.ids[i], x.ids[i]),
                Branch::Random => panic!("ELECTRA has no random branch"),
            }
            masked += (m.branches[j] == Branch::Mask) as usize;
        }
        total += m.masked_positions.len();
    }
    let share = masked as f64 / total as f64; // 3,200 draws: sd 0.0063
    assert!(
        (share - 0.85).abs() < 5.0 * (0.85 * 0.15 / total as f64).sqrt(),
        "{share}"
    );
}

#[test]
fn stack_flops_by_hand() {
    // d 8, d_ff 16, 1 layer, T = 4: 4 (2*8*24 + 2*8*8 + 2*2*8*16) + 4 * 4^2 * 8 = 4096 + 512.
    assert_eq!(stack_flops(&tiny_encoder_config(40), 4), 4608.0);
}

#[test]
fn checkpoint_reads_back_as_electra_and_as_an_encoder() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut params = Params::new();
    let model = tiny_electra(&mut params, &mut rng);
    let mut metadata = model.metadata();
    metadata.extend(tokenizer().to_metadata());
    assert_eq!(objective_of(&metadata), "electra");
    let path = fresh_dir("electra_checkpoint").join("electra.safetensors");
    save(&path, &params, &metadata).unwrap();
    let (back, back_params, _) = Electra::load(&path).unwrap();
    assert_eq!(back.generator.config.d_model, 4);
    assert_eq!(back_params.num_elements(), params.num_elements());
    let (encoder, enc_params, _) = load_encoder(&path, 0.0).unwrap();
    assert_eq!(encoder.config, model.discriminator.config);
    let e = enc_params.find("encoder.token_embedding.weight").unwrap();
    assert_eq!(
        enc_params.value(e),
        params.value(model.discriminator.embed.token.weight)
    );
}
