//! Next-sentence prediction: the loss's worked example, the pooler and classifier's gradients,
//! and where NSP's gradient goes.

mod common;

use common::{copied_and_fresh, save_masked_lm, tiny_encoder_config};
use microlm::data::pairs::{make_pairs, pair_batch};
use microlm::data::{Batch, NspLabel, PairTask};
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::{Encoder, TransformerConfig};
use microlm::objectives::{nsp_loss, Bert, NspHead};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::{Params, Tape};
use ndarray::{array, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn config(vocab: usize) -> TransformerConfig {
    TransformerConfig {
        type_vocab_size: 2,
        ..tiny_encoder_config(vocab)
    }
}

/// `docs/objectives.md` §2: scores (1, 0); label 0 costs ln(1 + e^-1) = 0.3132617, label 1
/// costs ln(1 + e) = 1.3132617, and their mean is 0.8132617.
#[test]
fn worked_example() {
    let mut tape = Tape::new();
    let s = tape.constant(array![[1.0f32, 0.0], [1.0, 0.0]].into_dyn());
    let l = nsp_loss(&mut tape, s, &[NspLabel::IsNext, NspLabel::NotNext]);
    assert!((tape.scalar(l.mean) - 0.8132617).abs() < 1e-6);
    let one = tape.constant(array![[1.0f32, 0.0]].into_dyn());
    let l = nsp_loss(&mut tape, one, &[NspLabel::IsNext]);
    assert!((tape.scalar(l.mean) - 0.3132617).abs() < 1e-6);
}

/// Gradcheck of L_NSP through the classifier, tanh and pooler (all their parameters).
#[test]
fn pooler_and_classifier_pass_gradcheck() {
    let mut params = Params::new();
    let head = NspHead::new(&mut params, 6, &mut StdRng::seed_from_u64(1));
    let h = ArrayD::from_shape_fn(IxDyn(&[3, 4, 6]), |ix| {
        ((ix[0] * 24 + ix[1] * 6 + ix[2]) as f32 * 0.61).sin()
    });
    let labels = [NspLabel::NotNext, NspLabel::IsNext, NspLabel::NotNext];
    let report = gradcheck_params(
        |tape, params| {
            let h = tape.constant(h.clone());
            let s = head.forward(tape, params, h);
            nsp_loss(tape, s, &labels).mean
        },
        &params,
        GradcheckConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checked > 0);
}

/// The loss reads one position: dL/dh is zero at every row but [CLS]'s, and not zero there.
#[test]
fn nsp_reads_only_the_cls_state() {
    let mut params = Params::new();
    let head = NspHead::new(&mut params, 6, &mut StdRng::seed_from_u64(2));
    let mut tape = Tape::new();
    let h = tape.input(ArrayD::from_shape_fn(IxDyn(&[2, 5, 6]), |ix| {
        ((ix[0] * 30 + ix[1] * 6 + ix[2]) as f32 * 0.37).cos()
    }));
    let s = head.forward(&mut tape, &params, h);
    let l = nsp_loss(&mut tape, s, &[NspLabel::IsNext, NspLabel::NotNext]).mean;
    let g = tape.backward(l);
    let dh = g.wrt(h).unwrap();
    for b in 0..2 {
        let cls: f32 = (0..6).map(|j| dh[[b, 0, j]].abs()).sum();
        assert!(cls > 1e-4, "row {b}: [CLS] gets no gradient");
        for t in 1..5 {
            assert!(
                (0..6).all(|j| dh[[b, t, j]] == 0.0),
                "row {b}, position {t} gets a gradient"
            );
        }
    }
}

/// Through a one-layer encoder, NSP's gradient reaches the embedding of a token at a real
/// position (through [CLS]'s attention to it) and never that of a token only in the padding,
/// which no query attends to.
#[test]
fn nsp_gradient_reaches_tokens_through_attention_only() {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(3);
    let encoder = Encoder::new(&mut params, "encoder", &config(10), &mut rng).unwrap();
    let head = NspHead::new(&mut params, 8, &mut rng);
    // Row: [CLS]=0, 4, 5, [SEP]=1, 6, [SEP]=1, then padding of token 9 (never real).
    let x = Batch::new(vec![0, 4, 5, 1, 6, 1, 9, 9], 1, 8)
        .with_lengths(vec![6])
        .with_segments(vec![0, 0, 0, 0, 1, 1, 0, 0]);
    let mut tape = Tape::new();
    let h = encoder.forward(&mut tape, &params, &x, &mut rng);
    let s = head.forward(&mut tape, &params, h);
    let l = nsp_loss(&mut tape, s, &[NspLabel::NotNext]).mean;
    let g = tape.backward(l);
    let de = g.param(encoder.embed.token.weight).unwrap();
    let row_norm = |id: usize| (0..8).map(|j| de[[id, j]].abs()).sum::<f32>();
    for id in [4, 5, 6] {
        assert!(row_norm(id) > 1e-6, "token {id} at a real position gets no gradient");
    }
    assert_eq!(row_norm(9), 0.0, "a token only in the padding got a gradient");
    assert_eq!(row_norm(7), 0.0, "a token absent from the batch got a gradient");
}

/// BERT's loss on real pairs: masking never chooses [CLS] or [SEP], both segments are masked,
/// and the total is L_MLM + L_NSP (L_MLM alone with NSP off).
#[test]
fn bert_loss_masks_both_segments_and_adds_the_two_losses() {
    let text = "ROMEO:\nIs the day so young? Ay.\nHa! What news?\n\nJULIET:\nNone. Go, go now.\nAnd come again.\n";
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text(text));
    let sp = tokenizer.specials();
    // Two speakers who never meet: two plays of one document each.
    let (docs, plays) = microlm::data::plays::play_documents(text, 18, &tokenizer);
    assert_eq!(plays, [0, 1]);
    let pairs = make_pairs(&docs, &plays, 40, PairTask::Nsp, &mut StdRng::seed_from_u64(0)).unwrap();
    let refs: Vec<_> = pairs.iter().collect();
    let batch = pair_batch(&refs, 40, &sp);
    let c = TransformerConfig {
        max_len: 40,
        ..config(tokenizer.vocab_size())
    };
    for (use_pair_loss, lambda) in [(true, 1.0), (false, 1.0), (true, 2.5)] {
        let mut params = Params::new();
        let bert = Bert::new(
            &mut params,
            &c,
            &tokenizer,
            true,
            PairTask::Nsp,
            use_pair_loss,
            &mut StdRng::seed_from_u64(4),
        )
        .unwrap()
        .with_pair_weight(lambda);
        let mut tape = Tape::new();
        let l = bert.loss(&mut tape, &params, &batch, &mut StdRng::seed_from_u64(5));
        let (total, mlm, nsp) = (tape.scalar(l.total), tape.scalar(l.mlm.mean), tape.scalar(l.nsp.mean));
        let expected = if use_pair_loss { mlm + lambda * nsp } else { mlm };
        assert!((total - expected).abs() < 1e-6, "{total} vs {expected}");
        assert!(nsp > 0.1 && l.nsp.count == pairs.len());
    }
    // The masks: over many draws, positions in A and in B are chosen; [CLS]/[SEP] never.
    let vocab = microlm::objectives::MlmVocab::of(&tokenizer);
    let (mut in_a, mut in_b) = (0, 0);
    for seed in 0..50 {
        let m =
            microlm::objectives::mask_tokens(&batch.x, &vocab, &Default::default(), &mut StdRng::seed_from_u64(seed));
        for &flat in &m.masked_positions {
            let (r, i) = (flat / 40, flat % 40);
            let original = batch.x.row(r)[i];
            assert!(
                original != sp.cls && original != sp.sep && original != sp.pad,
                "masked a special at {r}, {i}"
            );
            match batch.x.segments.as_ref().unwrap()[flat] {
                0 => in_a += 1,
                _ => in_b += 1,
            }
        }
    }
    assert!(in_a > 0 && in_b > 0, "A: {in_a}, B: {in_b}");
}

#[test]
fn bert_needs_segment_embeddings() {
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text("abc"));
    let c = TransformerConfig {
        type_vocab_size: 0,
        ..config(tokenizer.vocab_size())
    };
    let e = Bert::new(
        &mut Params::new(),
        &c,
        &tokenizer,
        true,
        PairTask::Nsp,
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap_err();
    assert!(e.contains("type_vocab_size = 0"), "{e}");
}

/// SOP is the same head and loss on other pairs: its measures and checkpoint say which task.
#[test]
fn sop_names_its_measures_and_metadata() {
    let text = "ROMEO:\nIs the day so young? Ay.\nHa! What news?\n\nJULIET:\nNone. Go, go now.\nAnd come again.\n";
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text(text));
    let (docs, plays) = microlm::data::plays::play_documents(text, 18, &tokenizer);
    let pairs = make_pairs(&docs, &plays, 40, PairTask::Sop, &mut StdRng::seed_from_u64(0)).unwrap();
    let refs: Vec<_> = pairs.iter().collect();
    let batch = pair_batch(&refs, 40, &tokenizer.specials());
    let c = TransformerConfig {
        max_len: 40,
        ..config(tokenizer.vocab_size())
    };
    let mut params = Params::new();
    let bert = Bert::new(
        &mut params,
        &c,
        &tokenizer,
        false,
        PairTask::Sop,
        true,
        &mut StdRng::seed_from_u64(4),
    )
    .unwrap();
    let e = bert.validation(&params, &[batch]);
    let names: Vec<&str> = e.extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sop_loss", "sop_accuracy"]);
    // An untrained head's loss on two classes is near ln 2.
    assert!((e.extra[0].1 - std::f64::consts::LN_2).abs() < 0.2, "{:?}", e.extra);
    let m = bert.metadata();
    assert_eq!(m["pairs.task"], "sop");
    assert_eq!(m["pairs.trained"], "true");
}

/// `docs/objectives.md` §2b: logits (0, 2); a swapped pair (label 1) costs ln(1 + e^-2) =
/// 0.1269280, an in-order pair (label 0) ln(1 + e^2) = 2.1269280, mean 1.1269280.
#[test]
fn sop_worked_example() {
    let mut tape = Tape::new();
    let s = tape.constant(array![[0.0f32, 2.0], [0.0, 2.0]].into_dyn());
    let l = nsp_loss(&mut tape, s, &[NspLabel::NotNext, NspLabel::IsNext]);
    assert!((tape.scalar(l.mean) - 1.126_928).abs() < 1e-6);
}

/// `--init`: every tensor of the masked LM (encoder and head) comes in unchanged; what BERT adds
/// (segment embeddings, pooler, classifier) is fresh; the dropout is the one asked for.
#[test]
fn from_masked_lm_brings_in_the_encoder_and_head() {
    let tok = Tokenizer::Char(CharTokenizer::from_text("abcdef. "));
    let dir = common::fresh_dir("bert-init");
    let path = dir.join("mlm.safetensors");
    let mlm_params = save_masked_lm(&path, &tiny_encoder_config(tok.vocab_size()), &tok);
    let rng = &mut StdRng::seed_from_u64(0);
    let (model, params) = Bert::from_masked_lm(&path, 0.1, PairTask::Nsp, true, rng).unwrap();
    assert_eq!(model.mlm.encoder.config.type_vocab_size, 2);
    assert_eq!(model.mlm.encoder.config.dropout, 0.1);
    let (copied, fresh) = copied_and_fresh(&params, &mlm_params);
    assert_eq!(
        copied,
        mlm_params.ids().count(),
        "every tensor of the masked LM comes in"
    );
    let want = [
        "encoder.segment_embedding.weight",
        "nsp.classifier.bias",
        "nsp.classifier.weight",
        "nsp.pooler.bias",
        "nsp.pooler.weight",
    ];
    assert_eq!(fresh, want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint that does not fit is refused before anything is built, the error naming
/// `--init`, the file and the mismatch: another tokenizer, too few positions for `--seq-len`,
/// a model that is not a masked LM.
#[test]
fn init_refuses_a_checkpoint_that_does_not_fit() {
    let dir = common::fresh_dir("bert-init-refused");
    let corpus = dir.join("corpus.txt");
    std::fs::write(
        &corpus,
        "ROMEO:\nBut soft. What light?\n\nJULIET:\nAy me. Ay.\n\n".repeat(20),
    )
    .unwrap();
    let recipe = microlm::recipe::Recipe {
        corpus: corpus.clone(),
        seq_len: 32,
        ..microlm::recipe::Recipe::default()
    };
    let data = recipe.load_data().unwrap();
    let task = (PairTask::Nsp, true);
    let refused = |path: &std::path::Path| match recipe.bert(&data, task, false, Some(path)) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e,
    };

    let other = dir.join("other-tokenizer.safetensors");
    let abc = Tokenizer::Char(CharTokenizer::from_text("abc"));
    save_masked_lm(
        &other,
        &TransformerConfig {
            max_len: 32,
            ..tiny_encoder_config(abc.vocab_size())
        },
        &abc,
    );
    let e = refused(&other);
    assert!(e.starts_with(&format!("--init {}", other.display())), "{e}");
    assert!(
        e.contains("a char tokenizer of 8 ids") && e.contains("--tokenizer char"),
        "{e}"
    );

    let short = dir.join("16-positions.safetensors");
    save_masked_lm(
        &short,
        &tiny_encoder_config(data.tokenizer.vocab_size()),
        &data.tokenizer,
    );
    let e = refused(&short);
    assert!(
        e.contains("--init") && e.contains("at most 16 positions") && e.contains("--seq-len 32"),
        "{e}"
    );

    let fits = TransformerConfig {
        max_len: 32,
        ..tiny_encoder_config(data.tokenizer.vocab_size())
    };
    save_masked_lm(&dir.join("fits.safetensors"), &fits, &data.tokenizer);
    assert!(recipe
        .bert(&data, task, false, Some(&dir.join("fits.safetensors")))
        .is_ok());
    let bert = dir.join("bert.safetensors");
    let mut params = Params::new();
    let model = Bert::new(
        &mut params,
        &TransformerConfig {
            type_vocab_size: 2,
            ..fits
        },
        &data.tokenizer,
        false,
        PairTask::Nsp,
        true,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let mut metadata = model.metadata();
    metadata.extend(data.tokenizer.to_metadata());
    microlm::checkpoint::save(&bert, &params, &metadata).unwrap();
    let e = refused(&bert);
    assert!(
        e.contains("--init") && e.contains("trained as bert") && e.contains("mlm"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
