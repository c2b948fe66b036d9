//! The denoising objective (`objectives/denoise.rs`): teacher forcing, the loss's worked example
//! and padding, the masks of the encoder-decoder, gradcheck, checkpoints; the line documents;
//! and the reconstruction scores; `--load`'s checks and the flags it leaves unused.

mod common;

use common::{fresh_dir, tiny_corpus, tiny_encoder_config};
use microlm::data::bart_noise::BartNoise;
use microlm::data::documents::line_documents;
use microlm::data::span_corruption::SpanCorruption;
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::TransformerConfig;
use microlm::objectives::denoise::{seq2seq_loss, teacher_forcing, Example};
use microlm::objectives::reconstruction::{edit_distance, ReconstructionScore};
use microlm::objectives::{Denoiser, Noise};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::{Params, Tape};
use ndarray::{ArrayD, Axis, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefgh .\n"))
}

fn tiny(noise: Noise) -> (Denoiser, Params) {
    let tok = tokenizer();
    let config = TransformerConfig {
        d_model: 8,
        heads: 2,
        layers: 1,
        d_ff: 16,
        max_len: 12,
        dropout: 0.0,
        ..TransformerConfig::toy(Denoiser::vocab_size(&tok, &noise))
    };
    let mut params = Params::new();
    let model = Denoiser::new(&mut params, &config, noise, &tok, &mut StdRng::seed_from_u64(3)).unwrap();
    (model, params)
}

fn example(source: &[usize], target: &[usize]) -> Example {
    Example {
        source: source.to_vec(),
        target: target.to_vec(),
    }
}

/// The decoder reads (start, y_0, ..., y_{n-2}) and is scored against (y_0, ..., y_{n-1});
/// shorter rows are padded and their padding is not scored.
#[test]
fn teacher_forcing_shifts_right_behind_the_start_token_and_pads() {
    let b = teacher_forcing(&[example(&[5, 6, 7], &[8, 9, 10]), example(&[5], &[11])], 1, 0);
    assert_eq!(b.source.ids, vec![5, 6, 7, 5, 0, 0]);
    assert_eq!(b.source.lengths, Some(vec![3, 1]));
    assert_eq!(b.decoder_input.ids, vec![1, 8, 9, 1, 0, 0]);
    assert_eq!(b.decoder_input.lengths, Some(vec![3, 1]));
    let y = |v: usize| Some(v);
    assert_eq!(b.targets, vec![y(8), y(9), y(10), y(11), None, None]);
}

/// docs/objectives.md §5a: with uniform logits over V = 5, each target token costs ln 5 =
/// 1.6094379, and the mean is over the 4 real targets, not the 6 positions.
#[test]
fn uniform_logits_cost_ln_5_per_target_token() {
    let b = teacher_forcing(&[example(&[1], &[0, 1, 2]), example(&[1], &[4])], 3, 0);
    let mut tape = Tape::new();
    let logits = tape.input(ArrayD::zeros(IxDyn(&[2, 3, 5])));
    let ce = seq2seq_loss(&mut tape, logits, &b);
    assert_eq!(ce.count, 4);
    let ln_5 = 1.609_437_9_f64; // docs/objectives.md §5a
    assert!((tape.scalar(ce.mean) as f64 - ln_5).abs() < 1e-6);
    assert!((tape.scalar(ce.sum) as f64 - 4.0 * ln_5).abs() < 1e-5);
    // dL/dz = (softmax - onehot)/|T| at a target, exactly 0 at padding.
    let g = tape.backward(ce.mean);
    let dz = g.wrt(logits).unwrap();
    assert!((dz[[0, 0, 0]] - (0.2 - 1.0) / 4.0).abs() < 1e-7);
    assert!((dz[[0, 0, 1]] - 0.2 / 4.0).abs() < 1e-7);
    assert!(dz
        .index_axis(Axis(0), 1)
        .index_axis(Axis(0), 1)
        .iter()
        .all(|&v| v == 0.0));
}

/// A document's loss sum is the same alone and padded into a batch beside a longer one.
#[test]
fn padding_is_excluded_by_length() {
    let (model, params) = tiny(Noise::Bart(BartNoise::default()));
    let short = example(&[2, 7, 8, 3], &[2, 7, 8, 9, 3]);
    let long = example(&[2, 7, 8, 9, 10, 11, 12, 3], &[2, 9, 9, 9, 9, 9, 9, 9, 3]);
    let sum = |examples: &[Example]| {
        let mut tape = Tape::no_grad();
        let b = teacher_forcing(examples, 3, 0);
        let ce = model.loss(&mut tape, &params, &b, &mut StdRng::seed_from_u64(0));
        (tape.scalar(ce.sum) as f64, ce.count)
    };
    let (alone, n_alone) = sum(std::slice::from_ref(&short));
    let (long_alone, _) = sum(std::slice::from_ref(&long));
    let (both, n_both) = sum(&[short, long]);
    assert_eq!((n_alone, n_both), (5, 14));
    assert!(
        (both - alone - long_alone).abs() < 1e-4,
        "{both} vs {alone} + {long_alone}"
    );
}

/// Logits of the encoder-decoder for one source and decoder input.
fn logits(model: &Denoiser, params: &Params, source: &[usize], y_in: &[usize], source_len: usize) -> Vec<f32> {
    let b = teacher_forcing(&[example(source, y_in)], 3, 0);
    let mut source_batch = b.source.clone();
    source_batch.lengths = Some(vec![source_len]);
    let y_in = microlm::data::Batch::new(y_in.to_vec(), 1, y_in.len());
    let mut tape = Tape::no_grad();
    let z = model
        .model
        .forward(&mut tape, params, &source_batch, &y_in, &mut StdRng::seed_from_u64(0));
    tape.value(z).iter().copied().collect()
}

/// Changing the decoder input at position 3 leaves the logits at positions 0..3 unchanged to
/// the bit, and changes those at 3 (the causal mask); changing the source's padding changes
/// nothing, while changing a real source token changes everything (cross-attention's mask).
#[test]
fn causal_and_cross_attention_masks_are_respected() {
    let (model, params) = tiny(Noise::Bart(BartNoise::default()));
    let v = model.model.config.vocab_size;
    let source = [2, 7, 8, 9, 3, 0, 0];
    let y_in = [3, 2, 7, 8, 9];
    let base = logits(&model, &params, &source, &y_in, 5);
    let changed = logits(&model, &params, &source, &[3, 2, 7, 12, 9], 5);
    assert_eq!(base[..3 * v], changed[..3 * v], "positions before the change");
    assert_ne!(base[3 * v..4 * v], changed[3 * v..4 * v], "the changed position");
    let padded = logits(&model, &params, &[2, 7, 8, 9, 3, 11, 12], &y_in, 5);
    assert_eq!(base, padded, "source padding is never attended to");
    let real = logits(&model, &params, &[2, 7, 12, 9, 3, 0, 0], &y_in, 5);
    assert_ne!(base[..v], real[..v], "a real source token is");
}

/// The gradient of L through the whole tiny encoder-decoder against central differences.
#[test]
fn loss_passes_gradcheck_through_a_tiny_encoder_decoder() {
    for noise in [Noise::Bart(BartNoise::default()), Noise::T5(SpanCorruption::default())] {
        let (model, params) = tiny(noise);
        let b = teacher_forcing(
            &[example(&[2, 7, 8, 3], &[2, 8, 7, 3]), example(&[2, 9, 3], &[2, 9, 3])],
            3,
            0,
        );
        let report = gradcheck_params(
            |tape, params| model.loss(tape, params, &b, &mut StdRng::seed_from_u64(0)).mean,
            &params,
            GradcheckConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.checked > 100);
    }
}

/// Corruption follows the noise: BART's target is the framed original, T5's inputs and targets
/// end with EOS and hold sentinels from the top of the vocabulary.
#[test]
fn corrupt_builds_the_targets_each_noise_asks_for() {
    let tok = tokenizer();
    let doc = microlm::data::Document {
        sentences: vec![tok.encode("abc def. "), tok.encode("gh ab.\n")],
    };
    let (bart, _) = tiny(Noise::Bart(BartNoise::default()));
    let e = bart.corrupt(&doc, &mut StdRng::seed_from_u64(1));
    let (bos, eos) = (tok.special("[CLS]"), tok.special("[SEP]"));
    let mut framed = vec![bos];
    framed.extend(tok.encode("abc def. gh ab.\n"));
    framed.push(eos);
    assert_eq!(e.target, framed);
    assert_eq!((e.source[0], *e.source.last().unwrap()), (bos, eos));
    let (t5, _) = tiny(Noise::T5(SpanCorruption::default()));
    let e = t5.corrupt(&doc, &mut StdRng::seed_from_u64(1));
    let top = tok.vocab_size() + 99; // sentinel 0
    assert_eq!(e.target[0], top);
    assert_eq!(*e.target.last().unwrap(), eos);
    assert_eq!(*e.source.last().unwrap(), eos);
    assert!(e.source.contains(&top));
    let (m, s) = SpanCorruption::default().counts(16);
    assert_eq!((e.source.len(), e.target.len()), (16 - m + s + 1, m + s + 1));
}

/// A trained T5 model's checkpoint reloads with its sentinels and noise.
#[test]
fn checkpoint_round_trip_keeps_the_noise_and_the_sentinels() {
    let noise = Noise::T5(SpanCorruption {
        noise_density: 0.25,
        mean_span: 2.0,
    });
    let (model, params) = tiny(noise.clone());
    let dir = std::env::temp_dir().join(format!("microlm-denoise-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut metadata = model.metadata();
    metadata.extend(tokenizer().to_metadata());
    microlm::checkpoint::save(&path, &params, &metadata).unwrap();
    let (loaded, loaded_params, tok) = Denoiser::load(&path).unwrap();
    assert_eq!(loaded.noise, noise);
    assert_eq!(loaded.model.config.vocab_size, tok.vocab_size() + 100);
    let source = [2, 7, 8, 3];
    assert_eq!(
        logits(&model, &params, &source, &[3, 7], 4),
        logits(&loaded, &loaded_params, &source, &[3, 7], 4)
    );
    // Without the extra ids in the metadata, the vocabularies disagree: refused, named.
    metadata.remove("vocab.extra_ids");
    microlm::checkpoint::save(&path, &params, &metadata).unwrap();
    let e = Denoiser::load(&path).unwrap_err();
    assert!(e.contains("vocab.extra_ids") && e.contains("config.vocab_size"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bad noise settings are refused by name.
#[test]
fn bad_noise_settings_are_refused() {
    let tok = tokenizer();
    let config = TransformerConfig::toy(tok.vocab_size());
    let bad = Noise::Bart(BartNoise {
        p: 1.5,
        ..BartNoise::default()
    });
    let e = Denoiser::new(&mut Params::new(), &config, bad, &tok, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("1.5"), "{e}");
    let t5 = Noise::T5(SpanCorruption::default()); // needs 100 more ids than the config has
    let e = Denoiser::new(&mut Params::new(), &config, t5, &tok, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(e.contains("vocab_size"), "{e}");
}

/// Line documents: the name line left out, whole lines of one speech, at most max_tokens.
#[test]
fn line_documents_hold_whole_lines_of_one_speech() {
    let text = "ROMEO:\nab ab\ncd cd\nef\n\nFirst Citizen:\nabcdefgh abcdefgh\nhh.\n";
    let tok = Tokenizer::Char(CharTokenizer::from_text(text));
    let docs = line_documents(text, 12, &tok);
    let texts: Vec<String> = docs.iter().map(|d| tok.decode(&d.sentences.concat())).collect();
    assert_eq!(texts, ["ab ab\ncd cd\n", "ef\n", "abcdefgh abc", "hh.\n"]);
}

#[test]
fn edit_distance_and_rates_by_hand() {
    assert_eq!(edit_distance("kitten", "sitting"), 3); // k->s, e->i, +g
    assert_eq!(edit_distance("flaw", "lawn"), 2);
    assert_eq!(edit_distance("abc", "abc"), 0);
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("ab", ""), 2);
    assert_eq!(edit_distance("né", "ne"), 1); // characters, not bytes
    let mut s = ReconstructionScore::default();
    s.add("sitting", "kitten"); // 3 edits over 6 characters
    s.add("abcd", "abcd"); // 0 over 4
    assert!((s.cer() - 0.3).abs() < 1e-12);
    assert!((s.exact_match() - 0.5).abs() < 1e-12);
}

/// Each draw is uniform over the documents (start uniform, offset uniform in the window, taken
/// modulo N), so over 10^5 batches of 4 from N = 50, each document is drawn 8,000 times on
/// average, sd sqrt(8000 (1 - 1/50)) = 88.5; and a batch never spans more than its window of
/// 4 * 8 = 32 consecutive documents (cyclically).
#[test]
fn length_grouped_draws_are_uniform_and_local() {
    use microlm::recipe::length_grouped_documents;
    let docs: Vec<microlm::data::Document> = (0..50)
        .map(|i| microlm::data::Document {
            sentences: vec![vec![i]],
        })
        .collect();
    let mut counts = [0usize; 50];
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..100_000 {
        let batch: Vec<usize> = length_grouped_documents(&docs, 4, &mut rng)
            .iter()
            .map(|d| d.sentences[0][0])
            .collect();
        for &i in &batch {
            counts[i] += 1;
        }
        // Some start s has every member within s..s+32 (mod 50).
        let local = (0..50).any(|s| batch.iter().all(|&i| (i + 50 - s) % 50 < 32));
        assert!(local, "{batch:?}");
    }
    for (i, &c) in counts.iter().enumerate() {
        assert!((c as f64 - 8000.0).abs() < 5.0 * 88.5, "document {i}: {c}");
    }
}

/// Reconstruction stops right after EOS, or at the length limit: with the output bias raised at
/// EOS the model writes EOS alone; raised at an ordinary id, it writes max_new of them.
#[test]
fn reconstruct_stops_after_eos_or_at_the_limit() {
    let (model, mut params) = tiny(Noise::Bart(BartNoise::default()));
    let eos = model.ids.noise.eos;
    let bias = params.find("decoder.lm_head.bias").unwrap();
    params.value_mut(bias)[eos] += 50.0;
    let greedy = microlm::generate::Sampling::Greedy;
    let rng = &mut StdRng::seed_from_u64(0);
    assert_eq!(
        model.reconstruct(&params, &[2, 7, 3], greedy, 9, rng).unwrap(),
        vec![eos]
    );
    params.value_mut(bias)[eos] -= 50.0;
    params.value_mut(bias)[7] += 50.0;
    assert_eq!(
        model.reconstruct(&params, &[2, 7, 3], greedy, 9, rng).unwrap(),
        vec![7; 9]
    );
    // Never past max_len - 2 = 10 new tokens (the start token and BOS take two positions).
    assert_eq!(
        model.reconstruct(&params, &[2, 7, 3], greedy, 50, rng).unwrap().len(),
        10
    );
}

/// A reconstruction never writes a special token but EOS: with the output bias raised far
/// at `[PAD]`, `[UNK]`, `[CLS]` (BOS) and `[MASK]`, greedy decoding still writes ordinary ids
/// (here 7, raised less), under BART and under T5.
#[test]
fn reconstructions_never_write_a_special_token_but_eos() {
    for noise in [Noise::Bart(BartNoise::default()), Noise::T5(Default::default())] {
        let (model, mut params) = tiny(noise.clone());
        let ids = model.ids.clone();
        let bias = params.find("decoder.lm_head.bias").unwrap();
        let specials: Vec<usize> = (0..ids.noise.random[0]).filter(|&id| id != ids.noise.eos).collect();
        assert!(specials.contains(&ids.noise.bos) && specials.contains(&ids.pad) && specials.contains(&ids.noise.mask));
        for &s in &specials {
            params.value_mut(bias)[s] += 100.0;
        }
        params.value_mut(bias)[7] += 50.0;
        let greedy = microlm::generate::Sampling::Greedy;
        let written = model
            .reconstruct(&params, &[2, 7, 3], greedy, 6, &mut StdRng::seed_from_u64(0))
            .unwrap();
        assert_eq!(written, vec![7; 6], "{noise:?}");
    }
}

/// A `--seq-len` too short for BOS, one token and EOS is refused by name.
#[test]
fn a_sequence_too_short_for_the_frame_is_refused() {
    let dir = std::env::temp_dir().join(format!("microlm-denoise-seq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("text.txt");
    std::fs::write(&corpus, "A:\nab cd.\n\nB:\nef gh.\n\n".repeat(40)).unwrap();
    let recipe = microlm::recipe::Recipe {
        corpus: corpus.clone(),
        seq_len: 2,
        ..microlm::recipe::Recipe::default()
    };
    let data = recipe.load_data().unwrap();
    let noise = Noise::Bart(BartNoise::default());
    let e = recipe.line_documents(&data, &noise).err().unwrap();
    assert!(e.contains("--seq-len 2"), "{e}");
    let ok = microlm::recipe::Recipe { seq_len: 8, ..recipe };
    let docs = ok.line_documents(&ok.load_data().unwrap(), &noise).unwrap();
    assert!(docs.train.iter().all(|d| d.sentences.concat().len() <= 6));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The alignment behind "hidden characters restored", worked by hand: the reference "abcd",
/// the identity "ad" (b and c hidden), a reconstruction "abxd" restores b but not c.
#[test]
fn hidden_characters_restored_by_hand() {
    use microlm::objectives::reconstruction::{aligned_matches, Restored};
    assert_eq!(aligned_matches("ad", "abcd"), vec![true, false, false, true]);
    assert_eq!(aligned_matches("abxd", "abcd"), vec![true, true, false, true]);
    assert_eq!(aligned_matches("", "ab"), vec![false, false]);
    assert_eq!(aligned_matches("abcd", "abcd"), vec![true; 4]);
    let mut r = Restored::default();
    r.add("abcd", "ad", "abxd");
    assert_eq!((r.hidden, r.by_model), (2, 1));
    r.add("xy", "xy", "");
    assert_eq!((r.hidden, r.by_model), (2, 1), "nothing hidden, nothing to restore");
    assert!((r.share() - 0.5).abs() < 1e-12);
}

/// Sentence order and rotation point, by hand.
#[test]
fn order_recovered_and_start_found_by_hand() {
    use microlm::data::documents::split_sentences;
    use microlm::objectives::reconstruction::{order_recovered, starts_like};
    let split = |t: &str| split_sentences(t).into_iter().map(str::to_string).collect::<Vec<_>>();
    let sentences = split("Go now. Stay here!\nNo.\n");
    assert_eq!(sentences, ["Go now. ", "Stay here!\n", "No.\n"]);
    assert!(order_recovered("Go now. Stay here!\nNo.\n", &sentences, split));
    assert!(order_recovered("Go nw. Stay her!\nNo.\n", &sentences, split), "typos");
    assert!(
        !order_recovered("Stay here!\nGo now. No.\n", &sentences, split),
        "swapped"
    );
    assert!(
        !order_recovered("Go now. Stay here!\n", &sentences, split),
        "one missing"
    );
    assert!(starts_like("Go now. Sta", "Go now. Stay", 10));
    assert!(!starts_like("o now. Stay", "Go now. Stay", 10));
    assert!(starts_like("ab", "ab", 10), "a reference shorter than n");
}

/// T5: each sentinel of the input takes the span written behind it; one never written leaves
/// nothing.
#[test]
fn fill_sentinels_puts_the_spans_back() {
    let (t5, _) = tiny(Noise::T5(SpanCorruption::default()));
    let (s0, s1) = (t5.ids.sentinels.id(0), t5.ids.sentinels.id(1));
    let eos = t5.ids.noise.eos;
    let source = [5, s0, 8, s1, eos];
    assert_eq!(
        t5.fill_sentinels(&source, &[s0, 6, 7, s1, 9, eos]),
        vec![5, 6, 7, 8, 9, eos]
    );
    assert_eq!(t5.fill_sentinels(&source, &[s0, 6, eos]), vec![5, 6, 8, eos]);
}

/// `--noise NAME`: each BART noise alone does only its own corruption, at BART's rate.
#[test]
fn each_named_noise_does_only_its_own_corruption() {
    use microlm::objectives::noise::NOISE_NAMES;
    let tok = tokenizer();
    let doc = microlm::data::Document {
        sentences: vec![tok.encode("abc def. "), tok.encode("gh ab. "), tok.encode("fed cba.\n")],
    };
    let n = doc.sentences.concat().len(); // 9 + 7 + 9 = 25 body tokens; ceil(0.3 * 25) = 8
    assert_eq!(n, 25);
    for name in NOISE_NAMES {
        let noise = Noise::named(name).unwrap();
        assert_eq!(noise.short_name(), name);
        let (model, _) = tiny(noise);
        let mask = model.ids.noise.mask;
        for seed in 0..5 {
            let e = model.corrupt(&doc, &mut StdRng::seed_from_u64(seed));
            let (x, y) = (&e.source, &e.target);
            let masks = x.iter().filter(|&&t| t == mask).count();
            let mut sorted = (x.clone(), y.clone());
            sorted.0.sort_unstable();
            sorted.1.sort_unstable();
            let kept: Vec<usize> = x.iter().copied().filter(|&t| t != mask).collect();
            let subsequence = |a: &[usize], b: &[usize]| {
                let mut it = b.iter();
                a.iter().all(|t| it.any(|u| u == t))
            };
            match name {
                "mask" => {
                    assert_eq!((x.len(), masks), (y.len(), 8));
                    assert!(x.iter().zip(y).all(|(a, b)| a == b || *a == mask));
                }
                "delete" => assert!(x.len() == y.len() - 8 && masks == 0 && subsequence(x, y)),
                "infill" => assert!(masks >= 1 && subsequence(&kept, y) && kept.len() < y.len()),
                "permute" => assert_eq!(sorted.0, sorted.1, "the same tokens"),
                "rotate" => {
                    let (bx, by) = (&x[1..x.len() - 1], &y[1..y.len() - 1]);
                    let shifts = (0..by.len()).any(|o| by[o..].iter().chain(&by[..o]).eq(bx.iter()));
                    assert!(shifts && masks == 0, "a cyclic shift of the body");
                }
                _ => {}
            }
        }
    }
    let e = Noise::named("shuffle").unwrap_err();
    assert!(e.contains("shuffle") && e.contains("infill"), "{e}");
}

/// `denoise --load`: before anything is loaded, the checkpoint must be a denoiser
/// (`check_compatible`), read this corpus's tokenizer and cover `--seq-len`, each error naming
/// `--load`, the file and both sides; and scoring it must fit in memory. The parameter count
/// the memory estimate uses before building is the built model's, tied and untied.
#[test]
fn a_loaded_denoiser_is_checked_against_the_corpus_the_length_and_the_objective() {
    use microlm::checkpoint;
    use microlm::data::Corpus;
    use microlm::objectives::MaskedLm;
    use microlm::recipe::{denoiser_parameters, Recipe};
    let dir = fresh_dir("denoise-load");
    let (corpus, other_corpus) = (dir.join("corpus.txt"), dir.join("other.txt"));
    std::fs::write(&corpus, tiny_corpus()).unwrap();
    std::fs::write(&other_corpus, tiny_corpus().to_uppercase()).unwrap();
    let recipe = |corpus: &std::path::Path, seq_len: usize, batch: usize| Recipe {
        corpus: corpus.to_path_buf(),
        seq_len,
        batch,
        d_model: 8,
        heads: 2,
        layers: 1,
        ..Recipe::default()
    };
    let data = |r: &Recipe| Corpus::load(&r.corpus, "char", 300, r.seq_len).unwrap();
    let noise = Noise::Bart(BartNoise::default());
    let r16 = recipe(&corpus, 16, 4);
    let (model, params) = r16.denoiser(&data(&r16), noise.clone(), None).unwrap();
    let estimate = denoiser_parameters(&model.model.config);
    let built = params.num_elements() as f64;
    assert_eq!(estimate, built, "untied");
    let tied = Recipe {
        tie: true,
        ..recipe(&corpus, 16, 4)
    };
    let (tied_model, tied_params) = tied.denoiser(&data(&tied), noise.clone(), None).unwrap();
    assert_eq!(
        denoiser_parameters(&tied_model.model.config),
        tied_params.num_elements() as f64,
        "tied"
    );
    let path = dir.join("denoiser.safetensors");
    let mut metadata = model.metadata();
    metadata.extend(data(&r16).tokenizer.to_metadata());
    checkpoint::save(&path, &params, &metadata).unwrap();
    let load = Some(path.to_str().unwrap());

    let (loaded, loaded_params) = r16.denoiser(&data(&r16), noise.clone(), load).unwrap();
    assert_eq!(loaded.noise, model.noise);
    assert_eq!(loaded_params.num_elements(), params.num_elements());
    let fails = |r: &Recipe, path: Option<&str>| r.denoiser(&data(r), noise.clone(), path).err().unwrap();
    // Longer documents than its positions.
    let e = fails(&recipe(&corpus, 32, 4), load);
    assert!(
        e.starts_with("--load ") && e.contains("at most 16 positions") && e.contains("--seq-len 32"),
        "{e}"
    );
    // Another corpus: other characters, other ids.
    let e = fails(&recipe(&other_corpus, 16, 4), load);
    assert!(
        e.contains("its model reads a char tokenizer") && e.contains("other.txt"),
        "{e}"
    );
    // A masked LM is not a denoiser.
    let tok = data(&r16).tokenizer;
    let mut p = Params::new();
    let rng = &mut StdRng::seed_from_u64(0);
    let mlm = MaskedLm::new(&mut p, &tiny_encoder_config(tok.vocab_size()), &tok, true, rng).unwrap();
    let mlm_path = dir.join("mlm.safetensors");
    let mut metadata = mlm.metadata();
    metadata.extend(tok.to_metadata());
    checkpoint::save(&mlm_path, &p, &metadata).unwrap();
    let e = fails(&r16, mlm_path.to_str());
    assert!(
        e.contains("trained as mlm") && e.contains("checkpoint of denoise"),
        "{e}"
    );
    // Batches no machine holds: refused for a new model and a loaded one, before building.
    let huge = recipe(&corpus, 16, 1 << 40);
    for path in [None, load] {
        let e = fails(&huge, path);
        assert!(e.contains("this configuration needs about"), "{path:?}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--load` scores a trained model without training: every flag that would only shape a
/// training run, the model or the noise is refused by name (it was silently ignored); the
/// flags it reads (the corpus, the length, the batches, the decoding) are not. `--twin` with
/// `--resume` is refused too: the twin needs every batch from update 1.
#[test]
fn flags_unused_under_load_are_refused_by_name() {
    use microlm::cli::Flags;
    use microlm::recipe::refuse_unused_denoise_flags;
    let given = |args: &[&str], load: bool| {
        let flags = Flags::parse(args.iter().map(|a| a.to_string())).unwrap();
        refuse_unused_denoise_flags(&flags, load)
    };
    for flag in [
        "steps",
        "lr",
        "warmup",
        "seed",
        "resume",
        "out",
        "d-model",
        "activation",
        "noise",
        "masking",
        "mean-span",
        "twin",
    ] {
        let e = given(&[&format!("--{flag}"), "1"], true).unwrap_err();
        assert!(e.starts_with(&format!("--{flag}: unused with --load")), "{e}");
        assert!(
            given(&[&format!("--{flag}"), "1"], false).is_ok() || flag == "twin",
            "--{flag}"
        );
    }
    for flag in [
        "corpus",
        "tokenizer",
        "seq-len",
        "batch",
        "eval-batches",
        "score",
        "show",
        "beam",
    ] {
        assert!(given(&[&format!("--{flag}"), "1"], true).is_ok(), "--{flag}");
    }
    let e = given(&["--twin", "runs/twin", "--resume", "runs/x"], false).unwrap_err();
    assert!(e.starts_with("--resume: --twin writes every batch"), "{e}");
    assert!(given(&["--twin", "runs/twin"], false).is_ok());
}
