//! SimCSE (`objectives/simcse.rs`): the worked example of docs/objectives.md §6a, the
//! temperature on identical views, the two views under dropout, the ε guard, the N >= 2 rule,
//! and gradcheck through the cosine and the MLP.

mod common;

use common::{copied_and_fresh, fresh_dir, save_masked_lm, tiny_encoder_config};
use microlm::data::Batch;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::{Linear, TransformerConfig};
use microlm::objectives::simcse::{cosine_matrix, info_nce, SimCse, TEMPERATURE};
use microlm::{Params, Tape};
use ndarray::{array, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn loss_of(h: ArrayD<f32>, h_plus: ArrayD<f32>) -> (f32, Vec<f32>) {
    let mut tape = Tape::new();
    let (a, b) = (tape.input(h), tape.input(h_plus));
    let cos = cosine_matrix(&mut tape, a, b);
    let logits: Vec<f32> = tape.value(cos).iter().map(|c| c / TEMPERATURE).collect();
    let l = info_nce(&mut tape, a, b, TEMPERATURE).unwrap();
    (tape.scalar(l.mean), logits)
}

/// h = ((1,0), (0,1)) and h+ = ((1,0), (1,0)) give logits [[20, 20], [0, 0]]; row 0 costs
/// ln(e^20 + e^20) - 20 = ln 2, row 1 ln(e^0 + e^0) - 0 = ln 2, so L = ln 2 = 0.6931472. Scaling
/// h to ((2,0), (0,3)) changes nothing: the cosine ignores length.
#[test]
fn worked_example_and_scale_invariance() {
    let h_plus = array![[1.0f32, 0.0], [1.0, 0.0]].into_dyn();
    let (l, logits) = loss_of(array![[1.0f32, 0.0], [0.0, 1.0]].into_dyn(), h_plus.clone());
    let want = [20.0, 20.0, 0.0, 0.0];
    for (got, want) in logits.iter().zip(want) {
        assert!((got - want).abs() < 1e-4, "{logits:?}");
    }
    assert!((l as f64 - std::f64::consts::LN_2).abs() < 1e-6, "{l}"); // 0.6931472, §6a
    let (scaled, _) = loss_of(array![[2.0f32, 0.0], [0.0, 3.0]].into_dyn(), h_plus);
    assert!((scaled - l).abs() < 1e-6);
}

/// With identical views every diagonal logit is 1/τ = 20, whatever the vectors.
#[test]
fn identical_views_give_diagonal_logits_of_one_over_tau() {
    let h = ArrayD::from_shape_fn(IxDyn(&[5, 7]), |ix| ((ix[0] * 7 + ix[1]) as f32 * 0.83).sin());
    let (_, logits) = loss_of(h.clone(), h);
    for i in 0..5 {
        assert!(
            (logits[i * 5 + i] - 20.0).abs() < 1e-4,
            "row {i}: {}",
            logits[i * 5 + i]
        );
    }
}

/// A zero vector gives cosine 0 (no NaN), and a batch of one is refused.
#[test]
fn zero_vectors_and_a_batch_of_one() {
    let (l, logits) = loss_of(
        array![[0.0f32, 0.0], [0.0, 1.0]].into_dyn(),
        array![[1.0f32, 0.0], [0.0, 1.0]].into_dyn(),
    );
    assert!(l.is_finite() && logits[0] == 0.0 && logits[1] == 0.0, "{logits:?}");
    let mut tape = Tape::new();
    let h = tape.input(ArrayD::ones(IxDyn(&[1, 3])));
    let e = info_nce(&mut tape, h, h, TEMPERATURE).unwrap_err();
    assert!(e.contains("at least 2"), "{e}");
}

/// The gradient of L through the cosine, the temperature and the MLP (dense + tanh) against
/// central differences, on fixed "encoder states".
#[test]
fn info_nce_through_the_mlp_passes_gradcheck() {
    let mut params = Params::new();
    let mlp = Linear::new(&mut params, "mlp", 6, 6, true, &mut StdRng::seed_from_u64(4));
    let cls = ArrayD::from_shape_fn(IxDyn(&[4, 6]), |ix| ((ix[0] * 6 + ix[1]) as f32 * 0.57).cos());
    let cls_plus = cls.mapv(|v| v + 0.3 * (v * 5.0).sin()); // a second, different view
    let report = gradcheck_params(
        |tape, params| {
            let (a, b) = (tape.constant(cls.clone()), tape.constant(cls_plus.clone()));
            let (za, zb) = (mlp.forward(tape, params, a), mlp.forward(tape, params, b));
            let (h, h_plus) = (tape.tanh(za), tape.tanh(zb));
            // τ = 0.5 keeps the logits moderate for f32 finite differences; τ enters as a scale.
            info_nce(tape, h, h_plus, 0.5).unwrap().mean
        },
        &params,
        GradcheckConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checked > 0);
}

/// A one-layer, 8-wide encoder config for `vocab` ids.
fn tiny_config(vocab: usize, dropout: f32) -> TransformerConfig {
    TransformerConfig {
        max_len: 8,
        dropout,
        ..tiny_encoder_config(vocab)
    }
}

fn tiny(dropout: f32) -> (SimCse, Params) {
    let config = tiny_config(12, dropout);
    let mut params = Params::new();
    let model = SimCse::new(&mut params, &config, &mut StdRng::seed_from_u64(2)).unwrap();
    (model, params)
}

/// In training mode, two passes over the same batch differ when p > 0 (dropout draws differ)
/// and are equal to the bit when p = 0.
#[test]
fn the_two_views_differ_only_through_dropout() {
    let x = Batch::new(vec![2, 5, 6, 7, 2, 8, 9, 10], 2, 4);
    for (p, differ) in [(0.1, true), (0.0, false)] {
        let (model, params) = tiny(p);
        let mut tape = Tape::new();
        let rng = &mut StdRng::seed_from_u64(5);
        let h = model.view(&mut tape, &params, &x, rng);
        let h_plus = model.view(&mut tape, &params, &x, rng);
        assert_eq!(tape.value(h) != tape.value(h_plus), differ, "p = {p}");
    }
}

mod measures {
    use microlm::data::documents::distinct_lines;
    use microlm::objectives::sentence_embeddings::{
        alignment, corrupt_lightly, line_batch, retrieval_accuracy, uniformity, unit,
    };
    use microlm::tokenizer::{CharTokenizer, Tokenizer};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Identical pairs align at 0, orthogonal ones at |e1 - e2|^2 = 2; two antipodal vectors
    /// have uniformity log e^{-2 * 4} = -8, and three at 120 degrees (|f_i - f_j|^2 = 3)
    /// log e^{-6} = -6.
    #[test]
    fn alignment_and_uniformity_by_hand() {
        let e1 = vec![1.0f32, 0.0];
        let e2 = vec![0.0f32, 1.0];
        let (one, two) = ([e1.clone()], [e2]);
        assert!(alignment(&one, &one).abs() < 1e-9);
        assert!((alignment(&one, &two) - 2.0).abs() < 1e-6);
        assert!((uniformity(&[e1.clone(), vec![-1.0, 0.0]]) + 8.0).abs() < 1e-5);
        let third = |k: f32| {
            let a = k * 2.0 * std::f32::consts::PI / 3.0;
            vec![a.cos(), a.sin()]
        };
        assert!((uniformity(&[third(0.0), third(1.0), third(2.0)]) + 6.0).abs() < 1e-4);
        assert_eq!(unit(vec![3.0, 4.0]), vec![0.6, 0.8]);
    }

    /// Query 0's candidate is nearest, query 1's is second (candidate 0 is nearer): top-1 = 1/2,
    /// top-5 = 1.
    #[test]
    fn retrieval_by_hand() {
        let queries = vec![vec![1.0f32, 0.0], vec![0.8, 0.6]];
        let candidates = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
        assert_eq!(retrieval_accuracy(&queries, &candidates, &[1, 5]), vec![0.5, 1.0]);
    }

    /// A 40-character line at rate 0.05 gets 2 edits: it loses at most 2 characters, keeps the
    /// others in place or swapped with a neighbour, and the same seed gives the same copy.
    #[test]
    fn light_corruption_edits_a_few_characters() {
        let line = "Good morrow, neighbour Baptista, and all";
        assert_eq!(line.chars().count(), 40);
        let a = corrupt_lightly(line, 0.05, &mut StdRng::seed_from_u64(1));
        let b = corrupt_lightly(line, 0.05, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, b);
        let n = a.chars().count();
        assert!((38..=40).contains(&n), "{a}");
        assert!(microlm::objectives::reconstruction::edit_distance(&a, line) <= 4, "{a}");
        assert_ne!(a, line);
    }

    /// Name lines, short lines and repeats are left out; the batch starts each line with [CLS]
    /// and records its length.
    #[test]
    fn distinct_lines_and_their_batch() {
        let text =
            "ROMEO:\nO, she doth teach the torches\nAy.\n\nJULIET:\nO, she doth teach the torches\nto burn bright!!\n";
        let lines = distinct_lines(text, 10);
        assert_eq!(lines, ["O, she doth teach the torches", "to burn bright!!"]);
        let tok = Tokenizer::Char(CharTokenizer::from_text(text));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let x = line_batch(&refs, &tok, 64);
        assert_eq!(x.lengths, Some(vec![30, 17]));
        assert_eq!(x.row(1)[0], tok.special("[CLS]"));
        assert_eq!(tok.decode(&x.row(1)[1..17]), "to burn bright!!");
    }
}

/// Starting from a masked-LM checkpoint copies every `encoder.*` tensor, sets the dropout asked
/// for, and adds a fresh MLP.
#[test]
fn from_masked_lm_copies_the_encoder() {
    use microlm::tokenizer::{CharTokenizer, Tokenizer};
    let tok = Tokenizer::Char(CharTokenizer::from_text("abcdef"));
    let dir = fresh_dir("simcse");
    let path = dir.join("mlm.safetensors");
    let mlm_params = save_masked_lm(&path, &tiny_config(tok.vocab_size(), 0.0), &tok);
    let (model, params, loaded_tok) = SimCse::from_masked_lm(&path, 0.1, &mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(loaded_tok, tok);
    assert_eq!(model.encoder.config.dropout, 0.1);
    let (copied, fresh) = copied_and_fresh(&params, &mlm_params);
    assert!(fresh.iter().all(|name| name.starts_with("simcse.mlp.")), "{fresh:?}");
    assert!(copied > 10);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A corpus whose training part holds no line of 20 characters or more is refused before any
/// training, naming the corpus and what it lacks (it once panicked inside the loss: "SimCSE
/// needs at least 2 sentences per batch (got 0)"); two such lines are enough.
#[test]
fn a_corpus_without_two_long_lines_is_refused_before_training() {
    let dir = std::env::temp_dir().join(format!("microlm-simcse-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short.txt");
    std::fs::write(&short, "To be, or not.\nThat is it.\n".repeat(40)).unwrap();
    let recipe = microlm::recipe::Recipe {
        corpus: short.clone(),
        seq_len: 16,
        ..microlm::recipe::Recipe::default()
    };
    let data = recipe.load_data().unwrap();
    let e = recipe.training_lines(&data).unwrap_err();
    assert!(
        e.contains(&format!("--corpus {}", short.display())) && e.contains("holds 0 distinct"),
        "{e}"
    );
    let two = dir.join("two.txt");
    let text = "To be, or not to be, that is the question.\nWhether 'tis nobler in the mind.\n";
    std::fs::write(&two, text.repeat(40)).unwrap();
    let recipe = microlm::recipe::Recipe { corpus: two, ..recipe };
    let data = recipe.load_data().unwrap();
    assert_eq!(recipe.training_lines(&data).unwrap().len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The start-up memory check counts what an update really holds: both views of the batch in
/// one pass, but only one chunk of texts under gradient caching, plus the whole-batch pieces.
/// Worked by hand for d_model 8, 2 heads, 1 layer, 8 positions: a text on the tape is
/// 8 x 8 x 16 (activations) + 2 x 8^2 x 4 (attention) = 1,536 floats, 6,144 bytes; a batch of
/// 1,000 adds 4 x (4 x 1,000 x 8 + 4 x 1,000^2) = 16,128,000 bytes (embeddings and gradients,
/// the similarities), and 1,000 parameters 16,000 (with gradients and AdamW's moments). So in
/// one pass (2,000 texts) 28,432,000 bytes, in chunks of 16 texts 16,242,304.
#[test]
fn the_memory_check_counts_one_chunk_under_gradient_caching() {
    let recipe = microlm::recipe::Recipe {
        batch: 1000,
        seq_len: 8,
        ..microlm::recipe::Recipe::default()
    };
    assert_eq!(recipe.simcse_texts_held(0), 2000);
    assert_eq!(recipe.simcse_texts_held(16), 16);
    assert_eq!(
        recipe.simcse_texts_held(5000),
        1000,
        "a chunk holds at most one view's batch"
    );
    let config = tiny_config(10, 0.0);
    let parameters = 1000.0;
    let check = |chunk, mb: f64| recipe.check_simcse_memory(&config, parameters, chunk, Some(mb * 1e6));
    let e = check(0, 20.0).unwrap_err();
    assert!(e.contains("2 views x --batch 1000 x --seq-len 8"), "{e}");
    assert!(e.contains("more than this machine's"), "{e}");
    check(16, 20.0).expect("one chunk of 16 texts fits in 20 MB");
    check(0, 29.0).expect("both views fit in 29 MB");
    let e = check(16, 16.0).unwrap_err();
    assert!(e.contains("--chunk 16 texts of --batch 1000"), "{e}");
    assert!(check(0, 28.43).is_err() && check(0, 28.44).is_ok());
    assert!(check(16, 16.24).is_err() && check(16, 16.25).is_ok());
}
