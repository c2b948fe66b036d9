//! Fine-tuning on a downstream task: the speaker task built from a hand-written corpus, the
//! padded speech batches, the classifier's masked mean pooling, its gradient (gradcheck), the
//! linear probe's frozen encoder, `load_encoder` on a trainer's checkpoint, `corruption_shift`,
//! and `finetune`'s early stopping and loss trace on a synthetic task whose class is readable
//! from the tokens.

mod common;

use common::{fresh_dir, tiny_encoder_config};
use microlm::checkpoint::{self, load_encoder};
use microlm::data::labelled::{text_batch, TextTask};
use microlm::data::pairs::PairTask;
use microlm::data::speakers::{speaker_task, Speech};
use microlm::data::Batch;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::{Encoder, TransformerConfig};
use microlm::objectives::classify::{mean_weights, Classifier};
use microlm::objectives::{Bert, MaskedLm};
use microlm::optim::{AdamW, Optimizer};
use microlm::recipe::finetune::{
    batches, finetune, parse_counts, run, subset, warmup_lr, FinetuneConfig, FinetuneResult, Start,
};
use microlm::recipe::linear_probe::corruption_shift;
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::{Params, Tape, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------
// The speaker task.

/// A corpus of blank-line-separated pieces: 60 named speeches (ZULU 25, BRAVO 15, MIKE 15, ECHO
/// 5, in a shuffled order), stage directions without a name line, a name line with no speech
/// after it, and an empty name. Returns the text and the named speeches, in order, as
/// (name, expected text).
fn corpus() -> (String, Vec<(&'static str, String)>) {
    let mut order: Vec<&'static str> = [("ZULU", 25), ("BRAVO", 15), ("MIKE", 15), ("ECHO", 5)]
        .iter()
        .flat_map(|&(name, n)| std::iter::repeat_n(name, n))
        .collect();
    order.shuffle(&mut StdRng::seed_from_u64(7));
    let mut text = String::from("Enter ZULU and BRAVO.\n\n");
    let mut named = Vec::new();
    for (j, &name) in order.iter().enumerate() {
        let lines: Vec<String> = (0..1 + j % 3).map(|l| format!("Speech {j}, line {l}.")).collect();
        text += &format!("{name}:\n{}\n", lines.join("\n"));
        // One, two or three blank lines between pieces.
        text += &"\n".repeat(1 + j % 3);
        named.push((name, lines.join(" ")));
        match j % 9 {
            3 => text += "Exeunt.\n\n",
            5 => text += "Enter MIKE\nwith a drum.\n\n",
            _ => {}
        }
        if j == 20 {
            text += "ZULU:\n\n"; // a name line with nothing after it: not a speech
            text += ":\nno name here\n\n"; // an empty name: not a speech
        }
    }
    (text, named)
}

/// The task re-derived from `corpus()`'s list: classes ZULU, BRAVO, MIKE (BRAVO before MIKE, 15
/// each, by name), and the i-th chosen speech to test (i % 10 == 0), validation (1) or train.
fn expected_splits(named: &[(&str, String)], names: &[&str]) -> [Vec<Speech>; 3] {
    let (mut train, mut val, mut test) = (vec![], vec![], vec![]);
    let chosen = named.iter().filter_map(|(n, text)| {
        let speaker = names.iter().position(|m| m == n)?;
        Some(Speech {
            class: speaker,
            text: text.clone(),
        })
    });
    for (i, s) in chosen.enumerate() {
        match i % 10 {
            0 => test.push(s),
            1 => val.push(s),
            _ => train.push(s),
        }
    }
    [train, val, test]
}

fn counts(split: &[Speech], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for s in split {
        c[s.class] += 1;
    }
    c
}

#[test]
fn speaker_task_ranks_names_strips_the_name_line_and_splits_by_position() {
    let (text, named) = corpus();
    let task = speaker_task(&text, 3).unwrap();
    // ZULU 25 first; BRAVO and MIKE tie at 15 and go by name; ECHO (5) is left out.
    assert_eq!(task.names, ["ZULU", "BRAVO", "MIKE"]);
    let [train, val, test] = expected_splits(&named, &["ZULU", "BRAVO", "MIKE"]);
    // 55 chosen speeches: indices 0, 10, .., 50 are test (6), 1, 11, .., 51 validation (6).
    assert_eq!((train.len(), val.len(), test.len()), (43, 6, 6));
    assert_eq!(task.train, train);
    assert_eq!(task.val, val);
    assert_eq!(task.test, test);
    for s in task.train.iter().chain(&task.val).chain(&task.test) {
        assert!(!s.text.contains(':') && !s.text.contains('\n'), "{:?}", s.text);
        assert!(s.text.starts_with("Speech "), "{:?}", s.text);
    }
    // A three-line speech (j % 3 == 2) of a chosen speaker, its lines joined by spaces.
    let j = (0..named.len()).find(|&j| j % 3 == 2 && named[j].0 != "ECHO").unwrap();
    let joined = format!("Speech {j}, line 0. Speech {j}, line 1. Speech {j}, line 2.");
    assert!(task
        .train
        .iter()
        .chain(&task.val)
        .chain(&task.test)
        .any(|s| s.text == joined));

    // Class counts per split, and over all splits the corpus's 25, 15, 15.
    assert_eq!(task.class_counts(&task.train), counts(&train, 3));
    assert_eq!(task.class_counts(&task.val), counts(&val, 3));
    assert_eq!(task.class_counts(&task.test), counts(&test, 3));
    let total: Vec<usize> = (0..3)
        .map(|c| counts(&train, 3)[c] + counts(&val, 3)[c] + counts(&test, 3)[c])
        .collect();
    assert_eq!(total, [25, 15, 15]);

    // The majority class of training (ties to the lower class), scored on test and validation.
    let tr = counts(&train, 3);
    let majority = (0..3).find(|&c| tr[c] == *tr.iter().max().unwrap()).unwrap();
    for split in [&task.test, &task.val] {
        let want = counts(split, 3)[majority] as f64 / split.len() as f64;
        assert_eq!(task.majority_baseline(split), want);
    }

    // k = 4 takes ECHO as class 3; k = 5 exceeds the 4 speakers.
    assert_eq!(speaker_task(&text, 4).unwrap().names, ["ZULU", "BRAVO", "MIKE", "ECHO"]);
    let e = speaker_task(&text, 5).unwrap_err();
    assert!(e.contains("4 speakers") && e.contains('5'), "{e}");
    // One speech cannot fill three splits.
    let e = speaker_task("ZULU:\nAlone.\n", 1).unwrap_err();
    assert!(e.contains("too few"), "{e}");
}

/// Training counts (1, 2, 2): classes 1 and 2 tie and the lower one, 1, is the majority; it is
/// 2 of the 4 test speeches, so the baseline is 0.5 (and 0 on an empty split).
#[test]
fn majority_baseline_by_hand() {
    let speech = |speaker| Speech {
        class: speaker,
        text: "x".into(),
    };
    let task = TextTask {
        title: "t".into(),
        unit: "speeches".into(),
        names: vec!["A".into(), "B".into(), "C".into()],
        train: [1, 2, 0, 2, 1].into_iter().map(speech).collect(),
        val: [2, 2].into_iter().map(speech).collect(),
        test: [1, 0, 1, 2].into_iter().map(speech).collect(),
    };
    assert_eq!(task.class_counts(&task.train), [1, 2, 2]);
    assert_eq!(task.majority_baseline(&task.test), 0.5);
    assert_eq!(task.majority_baseline(&task.val), 0.0);
    assert_eq!(task.majority_baseline(&[]), 0.0);
}

/// "abcdefgh": [PAD] is 0, 'a' is 5, .., 'h' is 12.
fn char_tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefgh"))
}

#[test]
fn text_batch_truncates_pads_and_keeps_lengths_and_labels() {
    let tok = char_tokenizer();
    assert_eq!(tok.specials().pad, 0);
    let s = |speaker, text: &str| Speech {
        class: speaker,
        text: text.into(),
    };
    let speeches = [s(2, "abc"), s(0, "abcdefgh"), s(1, "hg")];
    let refs: Vec<&Speech> = speeches.iter().collect();
    let (x, y) = text_batch(&refs, &tok, 5);
    assert_eq!((x.batch, x.seq_len), (3, 5));
    #[rustfmt::skip]
    let want = vec![
        5, 6, 7, 0, 0,
        5, 6, 7, 8, 9, // "abcdefgh" cut to its first 5 tokens
        12, 11, 0, 0, 0,
    ];
    assert_eq!(x.ids, want);
    assert_eq!(x.lengths, Some(vec![3, 5, 2]));
    assert_eq!(x.segments, None);
    assert_eq!(y, [2, 0, 1]);
    // With room to spare, T is the longest speech (8), not max_len.
    let (x, _) = text_batch(&refs, &tok, 100);
    assert_eq!((x.seq_len, &x.lengths), (8, &Some(vec![3, 8, 2])));
    assert_eq!(x.row(2), [12, 11, 0, 0, 0, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// The classifier.

#[test]
fn mean_weights_are_one_over_n_at_real_positions_and_zero_at_padding() {
    let x = Batch::new(vec![5; 12], 3, 4).with_lengths(vec![4, 1, 3]);
    let w = mean_weights(&x);
    assert_eq!(w.shape(), [3, 4, 1]);
    #[rustfmt::skip]
    let want = [
        0.25, 0.25, 0.25, 0.25,
        1.0, 0.0, 0.0, 0.0,
        1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0,
    ];
    assert_eq!(w.iter().copied().collect::<Vec<f32>>(), want);
    // Nothing padded: 1/T everywhere.
    let w = mean_weights(&Batch::new(vec![5; 4], 2, 2));
    assert!(w.iter().all(|&v| v == 0.5), "{w:?}");
}

/// A one-layer, 8-wide encoder config for `vocab` ids, 8 positions.
fn tiny_config(vocab: usize, dropout: f32) -> TransformerConfig {
    TransformerConfig {
        max_len: 8,
        dropout,
        ..tiny_encoder_config(vocab)
    }
}

fn tiny_classifier(config: &TransformerConfig, classes: usize, seed: u64) -> (Classifier, Params) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let mut params = Params::new();
    let encoder = Encoder::new(&mut params, "encoder", config, rng).unwrap();
    let model = Classifier::new(&mut params, encoder, classes, rng);
    (model, params)
}

/// Every weight drawn uniformly from [-0.5, 0.5): at init (std 0.02) LayerNorms see nearly
/// constant inputs, where eps 1e-2 central differences are not accurate.
fn order_one_weights(params: &mut Params, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let shape = params.value(id).shape().to_vec();
        *params.value_mut(id) = Tensor::from_shape_fn(shape, |_| rng.random::<f32>() - 0.5);
    }
}

fn pooled(model: &Classifier, params: &Params, x: &Batch) -> Tensor {
    let mut tape = Tape::new();
    let p = model.pooled(&mut tape, params, x, &mut StdRng::seed_from_u64(0));
    tape.value(p).clone()
}

/// p_b = (1/n_b) sum_{t < n_b} h_bt, in f64 from the encoder's states.
fn mean_of_states(encoder: &Encoder, params: &Params, x: &Batch) -> Vec<Vec<f64>> {
    let mut tape = Tape::new();
    let h = encoder.forward(&mut tape, params, x, &mut StdRng::seed_from_u64(0));
    let h = tape.value(h);
    let d = h.shape()[2];
    (0..x.batch)
        .map(|b| {
            let n = x.length(b);
            (0..d)
                .map(|j| (0..n).map(|t| h[[b, t, j]] as f64).sum::<f64>() / n as f64)
                .collect()
        })
        .collect()
}

fn assert_close(p: &Tensor, want: &[Vec<f64>]) {
    assert_eq!(p.shape(), [want.len(), want[0].len()]);
    for (b, row) in want.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            let got = p[[b, j]] as f64;
            assert!((got - w).abs() < 1e-6, "p[{b}, {j}] = {got}, mean of states {w}");
        }
    }
}

#[test]
fn pooled_is_the_mean_of_the_states_over_real_positions_whatever_the_padding() {
    let (model, params) = tiny_classifier(&tiny_config(13, 0.0), 3, 1);
    #[rustfmt::skip]
    let ids = vec![
        5, 6, 7, 8, 9,
        10, 11, 5, 0, 0,
        12, 0, 0, 0, 0,
    ];
    let x = Batch::new(ids.clone(), 3, 5).with_lengths(vec![5, 3, 1]);
    let p = pooled(&model, &params, &x);
    assert_close(&p, &mean_of_states(&model.encoder, &params, &x));
    // Other tokens in the padding: the same vectors, to the bit.
    let mut other = ids.clone();
    for i in [8, 9, 11, 12, 13, 14] {
        other[i] = 6 + i % 5;
    }
    let p_other = pooled(&model, &params, &Batch::new(other, 3, 5).with_lengths(vec![5, 3, 1]));
    assert_eq!(p, p_other);
    // A real token changed: that row changes (the comparison above can fail).
    let mut real = ids;
    real[6] = 12;
    let p_real = pooled(&model, &params, &Batch::new(real, 3, 5).with_lengths(vec![5, 3, 1]));
    let row = |t: &Tensor, b: usize| (0..8).map(|j| t[[b, j]]).collect::<Vec<f32>>();
    assert_ne!(row(&p, 1), row(&p_real, 1));
    assert_eq!((row(&p, 0), row(&p, 2)), (row(&p_real, 0), row(&p_real, 2)));
}

/// An encoder with segment embeddings (a BERT checkpoint's) pools a batch without segment ids as
/// one segment, 0.
#[test]
fn pooled_reads_a_batch_without_segments_as_segment_zero() {
    let config = TransformerConfig {
        type_vocab_size: 2,
        ..tiny_config(13, 0.0)
    };
    let (model, params) = tiny_classifier(&config, 2, 2);
    let x = Batch::new(vec![5, 6, 7, 8, 9, 0], 2, 3).with_lengths(vec![3, 2]);
    let p = pooled(&model, &params, &x);
    let zeros = x.clone().with_segments(vec![0; 6]);
    assert_close(&p, &mean_of_states(&model.encoder, &params, &zeros));
    let ones = x.with_segments(vec![1; 6]);
    let want_ones = mean_of_states(&model.encoder, &params, &ones);
    assert!(
        (p[[0, 0]] as f64 - want_ones[0][0]).abs() > 1e-6,
        "segment 1 is not segment 0"
    );
}

/// Three sequences of T = 4 (lengths 4, 2, 3) and their classes.
fn padded_batch() -> (Batch, Vec<usize>) {
    let x = Batch::new(vec![5, 6, 7, 8, 9, 10, 0, 0, 11, 5, 6, 0], 3, 4).with_lengths(vec![4, 2, 3]);
    (x, vec![2, 0, 1])
}

#[test]
fn classifier_loss_passes_gradcheck_over_every_parameter() {
    let (model, mut params) = tiny_classifier(&tiny_config(13, 0.0), 3, 3);
    order_one_weights(&mut params, 4);
    let (x, y) = padded_batch();
    let report = gradcheck_params(
        |tape, params| {
            model
                .loss(tape, params, &x, &y, false, &mut StdRng::seed_from_u64(0))
                .mean
        },
        &params,
        GradcheckConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.checked, params.num_elements());
    assert!(report.g_max > 1e-2, "negligible gradients: {report}");
}

#[test]
fn a_frozen_encoder_gets_no_gradient_and_a_trained_one_does() {
    let (model, mut params) = tiny_classifier(&tiny_config(13, 0.0), 3, 5);
    order_one_weights(&mut params, 6);
    let (x, y) = padded_batch();
    let mut losses = vec![];
    for frozen in [true, false] {
        let mut tape = Tape::new();
        let l = model.loss(&mut tape, &params, &x, &y, frozen, &mut StdRng::seed_from_u64(0));
        losses.push(tape.scalar(l.mean));
        let g = tape.backward(l.mean);
        for id in params.ids() {
            let name = params.name(id);
            let nonzero = g.param(id).is_some_and(|g| g.iter().any(|&v| v != 0.0));
            if name.starts_with("classifier.") {
                assert!(nonzero, "frozen = {frozen}: {name} has no gradient");
            } else if frozen {
                assert!(!nonzero, "frozen, yet {name} has a gradient");
            } else if !name.ends_with("k_proj.bias") {
                // (A key bias shifts every score of a query equally, which softmax cancels: its
                // gradient is zero up to rounding.)
                assert!(nonzero, "not frozen, yet {name} has no gradient");
            }
        }
    }
    // Without dropout the frozen encoder computes the same loss.
    assert!((losses[0] - losses[1]).abs() < 1e-6, "{losses:?}");
}

// ---------------------------------------------------------------------------------------------
// A pretrained encoder from a checkpoint.

fn bits(t: &Tensor) -> Vec<u32> {
    t.iter().map(|v| v.to_bits()).collect()
}

/// Rewrite the checkpoint at `path` without tensor `name`.
fn remove_tensor(path: &std::path::Path, name: &str) {
    let ckpt = checkpoint::read(path).unwrap();
    assert!(ckpt.tensors.contains_key(name), "{name} is not in the file");
    let mut all = Params::new();
    for (n, t) in ckpt.tensors.iter().filter(|(n, _)| n.as_str() != name) {
        all.add(n.clone(), t.clone());
    }
    checkpoint::save(path, &all, &ckpt.metadata).unwrap();
}

#[test]
fn load_encoder_takes_the_encoder_tensors_of_a_masked_lm_checkpoint() {
    let dir = fresh_dir("load_encoder");
    let path = dir.join("checkpoint.safetensors");
    let tok = char_tokenizer(); // 13 ids
    let config = tiny_config(13, 0.1);
    let mut params = Params::new();
    let mlm = MaskedLm::new(&mut params, &config, &tok, true, &mut StdRng::seed_from_u64(0)).unwrap();
    // One AdamW update, so the file also holds optimizer state, as a trainer's does.
    let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-2));
    let x = Batch::new(vec![5, 6, 7, 8, 9, 10, 11, 12], 2, 4);
    let mut tape = Tape::new();
    let l = mlm.loss(&mut tape, &params, &x, &mut StdRng::seed_from_u64(1));
    let g = tape.backward(l.mean);
    optimizer.step(&mut params, &g);
    let mut meta = mlm.metadata();
    meta.extend(tok.to_metadata());
    checkpoint::save_training(&path, &params, &optimizer, 1, &meta).unwrap();
    let in_file = checkpoint::read(&path).unwrap();
    assert!(in_file.tensors.keys().any(|n| n.starts_with("adamw.")));
    assert!(in_file.tensors.keys().any(|n| n.starts_with("mlm_head.")));

    let (encoder, loaded, tokenizer) = load_encoder(&path, 0.0).unwrap();
    assert_eq!(encoder.config, TransformerConfig { dropout: 0.0, ..config });
    assert_eq!(tokenizer, tok);
    let saved: Vec<&str> = params
        .ids()
        .map(|id| params.name(id))
        .filter(|n| n.starts_with("encoder."))
        .collect();
    let mut got: Vec<&str> = loaded.ids().map(|id| loaded.name(id)).collect();
    let mut want = saved.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "exactly the encoder's tensors, no head, no optimizer state");
    for name in saved {
        let (a, b) = (params.find(name).unwrap(), loaded.find(name).unwrap());
        assert_eq!(bits(params.value(a)), bits(loaded.value(b)), "{name}");
    }
    // The loaded encoder computes the masked LM's states (evaluation mode, no dropout).
    let states = |enc: &Encoder, p: &Params| {
        let mut tape = Tape::no_grad();
        let h = enc.forward(&mut tape, p, &x, &mut StdRng::seed_from_u64(0));
        bits(tape.value(h))
    };
    assert_eq!(states(&encoder, &loaded), states(&mlm.encoder, &params));
    assert_eq!(load_encoder(&path, 0.3).unwrap().0.config.dropout, 0.3);

    // A head tensor is not needed; an encoder tensor is, and the error names it and the file.
    remove_tensor(&path, "mlm_head.output.bias");
    load_encoder(&path, 0.0).unwrap();
    let missing = "encoder.layers.0.norm2.weight";
    remove_tensor(&path, missing);
    let e = load_encoder(&path, 0.0).err().unwrap();
    assert!(
        e.contains(&format!("'{missing}'")) && e.contains("missing") && e.contains(&path.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning.

/// "abcdefx": 'x' is id 11, vocabulary 12.
fn x_tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefx"))
}

/// `n` speeches of 4 to 8 letters from "abcdef"; the odd ones have one letter replaced by 'x'
/// and are class 1. The class is whether the text holds an 'x'.
fn x_speeches(n: usize, seed: u64) -> Vec<Speech> {
    let rng = &mut StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = rng.random_range(4..=8);
            let mut chars: Vec<char> = (0..len).map(|_| b"abcdef"[rng.random_range(0..6)] as char).collect();
            if i % 2 == 1 {
                chars[rng.random_range(0..len)] = 'x';
            }
            Speech {
                class: i % 2,
                text: chars.into_iter().collect(),
            }
        })
        .collect()
}

fn x_config(seed: u64) -> FinetuneConfig {
    FinetuneConfig {
        lr: 1e-2,
        warmup: 0,
        batch: 8,
        updates: 96,
        eval_every: 8,
        patience: 2,
        max_len: 8,
        frozen: false,
        head_from_probe: false,
        seed,
    }
}

fn refs(s: &[Speech]) -> Vec<&Speech> {
    s.iter().collect()
}

fn all_bits(p: &Params) -> Vec<(String, Vec<u32>)> {
    p.ids().map(|id| (p.name(id).to_string(), bits(p.value(id)))).collect()
}

/// Whether a speech holds an 'x' is read from its tokens' mean: after a few passes at lr 1e-2,
/// test accuracy is above 0.9 (chance: 0.5, the classes alternate). The result reports the
/// weights kept: its validation accuracy is the kept weights', and they are exactly the weights
/// after `best_update` updates (a run stopped there by `updates` ends on them). Validation
/// reaches its best before the last evaluation run (asserted), so keeping the last weights
/// instead would fail the bitwise comparison.
#[test]
fn finetune_learns_a_readable_class_and_keeps_the_best_weights() {
    let tok = x_tokenizer();
    let data = x_speeches(128, 11);
    let (train, rest) = data.split_at(64);
    let (val, test) = rest.split_at(32);
    let (train, val, test) = (refs(train), refs(val), refs(test));
    let (model, init) = tiny_classifier(&tiny_config(12, 0.1), 2, 12);
    let config = x_config(3);

    let mut params = init.clone();
    let r = finetune(&model, &mut params, &tok, &train, &val, &test, &config);
    assert!(r.test_accuracy > 0.9, "{r:?}");
    assert!((1..=config.updates).contains(&r.best_update), "{r:?}");
    assert_eq!(r.best_update % config.eval_every, 0, "{r:?}");
    assert!(
        r.best_update < config.updates,
        "the run must go on past its best evaluation: {r:?}"
    );
    assert_eq!(r.val_accuracy, model.accuracy(&params, &batches(&val, &tok, 64, 8)));
    assert_eq!(r.test_accuracy, model.accuracy(&params, &batches(&test, &tok, 64, 8)));

    let mut until_best = init.clone();
    let short = FinetuneConfig {
        updates: r.best_update,
        ..config.clone()
    };
    let r_short = finetune(&model, &mut until_best, &tok, &train, &val, &test, &short);
    let kept = |r: &FinetuneResult| (r.best_update, r.val_accuracy, r.test_accuracy);
    assert_eq!(kept(&r_short), kept(&r));
    assert_eq!(
        r_short.losses,
        r.losses[..r.best_update],
        "the same updates, the same losses"
    );
    assert_eq!(all_bits(&until_best), all_bits(&params));
    assert_ne!(all_bits(&until_best), all_bits(&init), "training changed nothing");
}

/// The loss trace has one entry per update, and with the head set to zero (every score 0) the
/// first is ln K exactly, whatever the encoder: -log(1/K). Training then lowers it (the class
/// is readable from the tokens).
#[test]
fn the_loss_trace_starts_at_ln_k_under_a_zero_head_and_falls() {
    let tok = x_tokenizer();
    let data = x_speeches(96, 21);
    let refs: Vec<&Speech> = data.iter().collect();
    for classes in [2, 3] {
        let (model, mut params) = tiny_classifier(&tiny_config(12, 0.0), classes, 22);
        for id in [model.head.weight, model.head.bias.unwrap()] {
            let shape = params.value(id).shape().to_vec();
            *params.value_mut(id) = Tensor::zeros(shape);
        }
        let config = FinetuneConfig {
            updates: 40,
            patience: 100, // never stops early: one loss per update of the budget
            ..x_config(3)
        };
        let r = finetune(
            &model,
            &mut params,
            &tok,
            &refs[..64],
            &refs[64..80],
            &refs[80..],
            &config,
        );
        assert_eq!(r.losses.len(), 40, "{classes} classes");
        let ln_k = (classes as f32).ln();
        assert!(
            (r.losses[0] - ln_k).abs() < 1e-6,
            "{} against ln {classes}",
            r.losses[0]
        );
        let last: f32 = r.losses[32..].iter().sum::<f32>() / 8.0;
        assert!(last < 0.8 * ln_k, "the loss did not fall: {:?}", r.losses);
    }
}

/// Warmup by hand: lr 1e-2 over 4 updates is 2.5e-3, 5e-3, 7.5e-3, then 1e-2; no warmup is
/// 1e-2 from the first update. In `finetune`, a warmup of 10^9 updates leaves the lr at about
/// 1e-11, so the loss of the same full batch stays where it started, where without warmup it
/// falls.
#[test]
fn warmup_rises_linearly_and_finetune_follows_it() {
    let want = [2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2, 1e-2];
    for (i, w) in want.iter().enumerate() {
        assert!((warmup_lr(1e-2, 4, i + 1) - w).abs() < 1e-9, "update {}", i + 1);
        assert_eq!(warmup_lr(1e-2, 0, i + 1), 1e-2);
    }
    let tok = x_tokenizer();
    let data = x_speeches(48, 25);
    let refs: Vec<&Speech> = data.iter().collect();
    let mut last = Vec::new();
    for warmup in [0, 1_000_000_000] {
        let (model, mut params) = tiny_classifier(&tiny_config(12, 0.0), 2, 26);
        let config = FinetuneConfig {
            warmup,
            batch: 32, // the whole training set: the same batch every update
            updates: 16,
            patience: 100,
            ..x_config(4)
        };
        let r = finetune(
            &model,
            &mut params,
            &tok,
            &refs[..32],
            &refs[32..40],
            &refs[40..],
            &config,
        );
        last.push((r.losses[0], r.losses[15]));
    }
    let ((start, end), (start_slow, end_slow)) = (last[0], last[1]);
    assert_eq!(start, start_slow, "the same first batch and weights");
    assert!(end < start - 0.05, "no warmup: the loss falls ({start} -> {end})");
    assert!(
        (end_slow - start_slow).abs() < 1e-5,
        "lr ~ 1e-11: {start_slow} -> {end_slow}"
    );
}

/// `corruption_shift`: 0 when every "corrupted" text is its line; exactly 1 for the pairs
/// (A, B), (B, A), where each distance within a pair is one between pairs; and, for three
/// pairs, the formula computed by hand from the classifier's pooled states.
#[test]
fn corruption_shift_is_the_distance_within_pairs_over_the_distance_between_them() {
    let tok = x_tokenizer();
    let (model, mut params) = tiny_classifier(&tiny_config(12, 0.0), 2, 23);
    order_one_weights(&mut params, 24); // pooled states that differ clearly between texts
    let line = |t: &str| Speech {
        class: 0,
        text: t.into(),
    };
    let same: Vec<Speech> = ["abca", "abca", "ffed", "ffed", "cab", "cab"].map(line).to_vec();
    assert_eq!(corruption_shift(&model, &params, &refs(&same), &tok, 8), 0.0);
    let swapped: Vec<Speech> = ["abcde", "xfx", "xfx", "abcde"].map(line).to_vec();
    let one = corruption_shift(&model, &params, &refs(&swapped), &tok, 8);
    assert!((one - 1.0).abs() < 1e-12, "{one}");

    let texts: Vec<Speech> = ["abcdef", "acbdef", "fedcba", "fedxba", "aaxa", "axaa"]
        .map(line)
        .to_vec();
    let (x, _) = text_batch(&refs(&texts), &tok, 8);
    let p = mean_of_states(&model.encoder, &params, &x);
    let d = |i: usize, j: usize| p[i].iter().zip(&p[j]).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let want = (d(0, 1) + d(2, 3) + d(4, 5)) / (d(0, 2) + d(2, 4) + d(4, 0));
    let got = corruption_shift(&model, &params, &refs(&texts), &tok, 8);
    assert!((got - want).abs() < 1e-5 * want, "{got} against {want}");
    assert!(
        got > 0.05 && got < 2.0,
        "{got}: a weak check that the texts are told apart"
    );
}

/// A linear probe (frozen) changes the head's weights and not one bit of the encoder's.
#[test]
fn a_frozen_finetune_changes_only_the_head() {
    let tok = x_tokenizer();
    let data = x_speeches(96, 13);
    let refs: Vec<&Speech> = data.iter().collect();
    let (model, init) = tiny_classifier(&tiny_config(12, 0.1), 2, 14);
    let mut params = init.clone();
    let config = FinetuneConfig {
        updates: 48,
        frozen: true,
        head_from_probe: false,
        ..x_config(1)
    };
    let r = finetune(
        &model,
        &mut params,
        &tok,
        &refs[..48],
        &refs[48..72],
        &refs[72..],
        &config,
    );
    assert!(r.best_update > 0, "the weights kept must be trained ones: {r:?}");
    for id in init.ids() {
        let name = init.name(id);
        let same = bits(init.value(id)) == bits(params.value(id));
        assert_eq!(same, name.starts_with("encoder."), "{name}");
    }
}

/// `run` from a random encoder twice with the same seed: the same result.
#[test]
fn run_is_deterministic_per_seed() {
    let tok = x_tokenizer();
    let data = x_speeches(60, 15);
    let task = TextTask {
        title: "x".into(),
        unit: "speeches".into(),
        names: vec!["no x".into(), "x".into()],
        train: data[..40].to_vec(),
        val: data[40..50].to_vec(),
        test: data[50..].to_vec(),
    };
    let encoder_config = tiny_config(12, 0.1);
    let config = FinetuneConfig {
        updates: 24,
        ..x_config(7)
    };
    let once = || run(Start::Random(&encoder_config), &task, &tok, 30, &config).unwrap();
    let a = once();
    assert_eq!(a, once());
    assert!([0, 8, 16, 24].contains(&a.best_update), "{a:?}");
}

#[test]
fn subset_draws_distinct_speeches_per_seed() {
    let train: Vec<Speech> = (0..20)
        .map(|i| Speech {
            class: i % 3,
            text: format!("speech {i}"),
        })
        .collect();
    let texts = |s: &[&Speech]| s.iter().map(|s| s.text.clone()).collect::<Vec<String>>();
    let a = subset(&train, 7, 3);
    assert_eq!(a.len(), 7);
    let mut distinct = texts(&a);
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 7, "drawn without replacement");
    assert!(a.iter().all(|s| train.contains(s)));
    assert_eq!(texts(&a), texts(&subset(&train, 7, 3)), "the same seed, the same draw");
    assert_ne!(texts(&a), texts(&subset(&train, 7, 4)), "another seed, another draw");
    for n in [20, 25, usize::MAX] {
        let mut all = texts(&subset(&train, n, 3));
        all.sort();
        let mut want = texts(&train.iter().collect::<Vec<_>>());
        want.sort();
        assert_eq!(all, want, "n = {n}: every speech once");
    }
}

#[test]
fn parse_counts_reads_counts_and_all_and_names_the_flag_and_item() {
    assert_eq!(parse_counts("100,all").unwrap(), [100, usize::MAX]);
    assert_eq!(
        parse_counts("100, 300 ,1000,all").unwrap(),
        [100, 300, 1000, usize::MAX]
    );
    for (list, item) in [("0", "'0'"), ("x", "'x'"), ("100,x", "'x'"), ("-3", "'-3'")] {
        let e = parse_counts(list).unwrap_err();
        assert!(e.contains("--labels") && e.contains(item), "{list}: {e}");
    }
}

/// A masked-LM checkpoint of `tokenizer` and `max_len`, its metadata marked as `objective`'s
/// (`nsp.enabled` for bert, `simcse.tau` for simcse).
fn encoder_checkpoint(path: &std::path::Path, tokenizer: &Tokenizer, max_len: usize, objective: &str) {
    let config = TransformerConfig {
        max_len,
        ..tiny_encoder_config(tokenizer.vocab_size())
    };
    let mut params = Params::new();
    let rng = &mut StdRng::seed_from_u64(0);
    let mut meta = match objective {
        // The bert example's own model and metadata (a made-up key once hid that the real
        // checkpoints, whose keys changed, were refused as "trained as mlm").
        "bert" => {
            let config = TransformerConfig {
                type_vocab_size: 2,
                ..config
            };
            Bert::new(&mut params, &config, tokenizer, false, PairTask::Sop, true, rng)
                .unwrap()
                .metadata()
        }
        _ => MaskedLm::new(&mut params, &config, tokenizer, false, rng)
            .unwrap()
            .metadata(),
    };
    meta.extend(tokenizer.to_metadata());
    if objective == "simcse" {
        meta.insert("simcse.tau".into(), "0.05".into());
    }
    checkpoint::save(path, &params, &meta).unwrap();
}

/// `finetune`'s flags are checked before any run: `--seeds 0`, a NaN, negative or zero `--lr`,
/// `--shuffled-words 0` and a dropout outside [0, 1) are refused by name (`--seeds 0` once
/// printed a table of 0.000 "mean over 0 seeds"), and every (d) checkpoint is checked against `--init`'s tokenizer and positions
/// and its own objective (a BPE encoder once scored the majority class in silence; a smaller
/// vocabulary and 32 positions once panicked after four finished runs).
#[test]
fn finetune_flags_and_checkpoints_are_checked_before_any_run() {
    use microlm::cli::Flags;
    use microlm::recipe::finetune_flags::FinetuneFlags;
    let read = |args: &[&str]| FinetuneFlags::read(&mut Flags::parse(args.iter().map(|s| s.to_string())).unwrap());
    for (flag, bad) in [
        ("seeds", "0"),
        ("lr", "nan"),
        ("lr", "-1"),
        ("lr", "0"),
        ("shuffled-words", "0"),
        ("dropout", "1"),
        ("dropout", "-0.1"),
        ("lr", "inf"),
        ("batch", "0"),
        ("random-lr", "0"),
        ("random-updates", "0"),
        ("random-patience", "0"),
    ] {
        let e = read(&[&format!("--{flag}"), bad]).unwrap_err();
        assert!(e.starts_with(&format!("--{flag} ")), "--{flag} {bad}: {e}");
    }
    let e = read(&["--tasks", "speakers,acceptability,speakers"]).unwrap_err();
    assert_eq!(e, "--tasks: 'speakers' is given twice (each task runs once)");
    assert_eq!(
        read(&["--arms", "abx"]).unwrap_err(),
        "--arms: 'x' is not a setting (a, b, c, d)"
    );
    // (b)'s own settings: given ones replace (a)'s, the rest are (a)'s.
    let f = read(&[
        "--lr",
        "2e-4",
        "--random-lr",
        "3e-3",
        "--random-updates",
        "600",
        "--warmup",
        "7",
    ])
    .unwrap();
    assert_eq!(
        (f.config.lr, f.random.lr, f.random.updates, f.random.batch),
        (2e-4, 3e-3, 600, 32)
    );
    assert_eq!((f.config.warmup, f.random.warmup), (7, 7));
    assert_eq!(read(&["--random-warmup", "50"]).unwrap().random.warmup, 50);
    // (b)'s shape: the checkpoint's unless given; a d_model the heads do not divide is refused.
    let checkpoint = TransformerConfig {
        heads: 4,
        d_model: 128,
        d_ff: 512,
        layers: 4,
        ..tiny_encoder_config(12)
    };
    assert_eq!(read(&[]).unwrap().random_config(&checkpoint).unwrap(), checkpoint);
    let small = read(&["--random-layers", "1", "--random-d-model", "64"]).unwrap();
    let c = small.random_config(&checkpoint).unwrap();
    assert_eq!((c.layers, c.d_model, c.d_ff, c.heads), (1, 64, 256, 4));
    let e = read(&["--random-d-model", "66"])
        .unwrap()
        .random_config(&checkpoint)
        .unwrap_err();
    assert!(e.starts_with("--random-d-model 66") && e.contains("4 heads"), "{e}");
    assert!(read(&["--random-layers", "0"])
        .unwrap_err()
        .starts_with("--random-layers "));
    let dir = fresh_dir("finetune-others");
    let ours = Tokenizer::Char(CharTokenizer::from_text("abcdefgh"));
    let smaller = Tokenizer::Char(CharTokenizer::from_text("abcdefg"));
    let bpe = Tokenizer::Bpe(microlm::tokenizer::BpeTokenizer::train(
        "abcdefgh abcdefgh",
        256 + 5 + 3,
    ));
    let cases: [(&str, &Tokenizer, usize, &str, &str); 5] = [
        ("bert", &ours, 16, "bert", ""),
        ("bert", &bpe, 16, "bert", "a bpe tokenizer of 264 ids"),
        ("bert", &smaller, 16, "bert", "a char tokenizer of 12 ids"),
        ("simcse", &ours, 8, "simcse", "at most 8 positions"),
        ("simcse", &ours, 16, "bert", "trained as bert"),
    ];
    for (flag, tokenizer, max_len, objective, expected) in cases {
        let path = dir.join(format!("{flag}.safetensors"));
        encoder_checkpoint(&path, tokenizer, max_len, objective);
        let f = read(&[&format!("--{flag}"), path.to_str().unwrap()]).unwrap();
        let r = f.check_others(&ours, 16);
        match expected {
            "" => {
                r.unwrap();
                assert_eq!(f.load_others().unwrap().len(), 1);
                // Its update at a batch no machine holds: refused by name before any run.
                let arg = format!("--{flag}");
                let huge = read(&[&arg, path.to_str().unwrap(), "--batch", "100000000000"]).unwrap();
                let e = huge.load_others().unwrap_err();
                assert!(e.starts_with(&format!("{arg} ")) && e.contains("needs about"), "{e}");
            }
            e => {
                let got = r.unwrap_err();
                assert!(got.starts_with(&format!("--{flag} ")) && got.contains(e), "{got}");
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `Comparison::summary` by hand: (a) 0.70 and 0.90 against (b) 0.50 and 0.55 is +20.0 and
/// +35.0 points; the probes 0.65 - 0.50 and 0.80 - 0.52 are +15.0 and +28.0; (b)'s 0.50 does
/// not beat the majority class 0.50. A run without (a), (b) or the probes (`--arms ""`) says
/// nothing, where it once printed "NaN points".
#[test]
fn summary_states_the_gaps_by_hand_and_only_for_curves_that_ran() {
    use microlm::recipe::comparison::{Comparison, Curve, SeedStats};
    let curve = |name: &str, lo: f64, hi: f64| Curve {
        name: name.into(),
        points: vec![
            (100, SeedStats::of(vec![lo, lo])),
            (1000, SeedStats::of(vec![hi - 0.01, hi + 0.01])),
        ],
    };
    let mut c = Comparison {
        title: "t".into(),
        unit: "lines".into(),
        all: 1000,
        seeds: 2,
        counts: vec![100, 1000],
        curves: vec![
            curve("(a) pretrained, fine-tuned", 0.70, 0.90),
            curve("(b) random init, fine-tuned", 0.50, 0.55),
            curve("(c) linear probe of (a)'s encoder", 0.65, 0.80),
            curve("(c) linear probe of a random encoder", 0.50, 0.52),
        ],
        baselines: vec![("majority class".into(), 0.5)],
    };
    assert_eq!(
        c.summary(),
        "Pretraining adds +20.0 points at 100 lines and +35.0 at 1000. Both fine-tuned starts do \
         not all beat the majority class (0.500) at every count. The probe of the pretrained \
         states is +15.0 points from the random encoder's at 100 lines and +28.0 at 1000."
    );
    c.curves.truncate(2);
    c.curves[1] = curve("(b) random init, fine-tuned", 0.51, 0.55);
    assert_eq!(
        c.summary(),
        "Pretraining adds +19.0 points at 100 lines and +35.0 at 1000. Both fine-tuned starts \
         beat the majority class (0.500) at every count."
    );
    c.curves = vec![curve("(e) bag of character pairs, logistic regression", 0.7, 0.9)];
    assert_eq!(c.summary(), "");
}
