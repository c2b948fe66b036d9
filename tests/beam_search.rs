//! Beam search (`src/beam_search.rs`): cases worked by hand on a model given as a table of
//! next-token probabilities, n-gram blocking, and on a real encoder-decoder: the KV cache
//! changes nothing, and a beam of one is greedy decoding.

use microlm::beam_search::{beam_search, blocked_by_ngrams, search, Beam, BeamSettings};
use microlm::data::bart_noise::BartNoise;
use microlm::generate::{generate, Model, Sampling};
use microlm::nn::TransformerConfig;
use microlm::objectives::{Denoiser, Noise};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;

const EOS: usize = 0;
const A: usize = 1;
const B: usize = 2;

/// Logits ln p for the next token after `prefix` (ids EOS, a, b): the table of the worked
/// example below. Any prefix not listed ends at once.
fn table(prefix: &[usize]) -> Vec<f32> {
    let p: [f64; 3] = match prefix {
        [] => [0.05, 0.5, 0.45],
        [A] => [0.5, 0.4, 0.1],
        [B] => [0.1, 0.1, 0.8],
        [B, B] => [0.2 / 0.36, 0.4 * (1.0 - 0.2 / 0.36), 0.6 * (1.0 - 0.2 / 0.36)],
        [A, A] => [0.5, 0.25, 0.25],
        _ => [0.98, 0.01, 0.01],
    };
    p.iter().map(|&x| x.ln() as f32).collect()
}

/// The search on the table: the state is the prefix itself.
fn on_table(beam: Beam, max_new: usize) -> microlm::beam_search::Hypothesis {
    let first = (Vec::new(), table(&[]));
    search(&beam, &[], first, max_new, EOS, &[], |prefix: &Vec<usize>, token| {
        let mut next = prefix.clone();
        next.push(token);
        let logits = table(&next);
        Ok((next, logits))
    })
    .unwrap()
}

fn beam(width: usize, length_penalty: f64) -> Beam {
    Beam {
        width,
        length_penalty,
        no_repeat_ngram: 0,
    }
}

/// Worked by hand, k = 2 (2k = 4 candidates a step):
/// - step 1: a .5, b .45, EOS .05. a and b live; EOS is third, outside the first k: dropped.
/// - step 2: bb .36, a-EOS .25, aa .20, ab .05, ... bb lives; a-EOS (rank 1 < k) finishes with
///   P = .25; aa lives.
/// - step 3: bb-EOS .36 x .2/.36 = .20 comes first and finishes: k = 2 finished, stop.
///
/// Finished: (a EOS) with P .25 and (b b EOS) with P .20. Without normalisation (α = 0) the
/// first wins: ln .25 = -1.386 > ln .20 = -1.609. With α = 1 the second does: ln .20 / 3 =
/// -0.536 > ln .25 / 2 = -0.693. Greedy (k = 1) takes a, then EOS (.25 is the top candidate).
#[test]
fn beam_search_by_hand_with_and_without_length_normalisation() {
    let h = on_table(beam(2, 0.0), 5);
    assert_eq!(h.tokens, vec![A, EOS]);
    assert!((h.log_prob - 0.25f64.ln()).abs() < 1e-6, "{}", h.log_prob);
    assert!((h.score - 0.25f64.ln()).abs() < 1e-6);
    let h = on_table(beam(2, 1.0), 5);
    assert_eq!(h.tokens, vec![B, B, EOS]);
    assert!((h.log_prob - 0.2f64.ln()).abs() < 1e-6, "{}", h.log_prob);
    assert!((h.score - 0.2f64.ln() / 3.0).abs() < 1e-6);
    let greedy = on_table(beam(1, 1.0), 5);
    assert_eq!(greedy.tokens, vec![A, EOS]);
    // At the limit the live hypotheses finish as they are: one token, the best one, a.
    let cut = on_table(beam(2, 0.0), 1);
    assert_eq!(cut.tokens, vec![A]);
    assert!((cut.log_prob - 0.5f64.ln()).abs() < 1e-6);
}

#[test]
fn ngram_blocking_by_hand() {
    // 1 2 was followed by 3, and the sequence ends with 1 2 again: 3 is blocked.
    assert_eq!(blocked_by_ngrams(&[1, 2, 3, 1, 2], 3), vec![3]);
    // Two earlier bigrams start with 1 (1 2 and 1 4): both successors are blocked.
    assert_eq!(blocked_by_ngrams(&[1, 2, 1, 4, 1], 2), vec![2, 4]);
    assert!(blocked_by_ngrams(&[1, 2, 3], 3).is_empty(), "no earlier 2-gram 2 3");
    assert!(blocked_by_ngrams(&[1, 1, 1], 0).is_empty(), "n = 0 is off");
    assert_eq!(blocked_by_ngrams(&[5, 6], 1), vec![5, 6], "n = 1: no token twice");
}

/// A model that always prefers a (.6), then b (.3), then EOS (.1), decoded greedily with no
/// bigram twice: a, a (no bigram yet), then a a is blocked so b, with P = .3 / (.3 + .1) = .75
/// over the ids left, then b a is new so a; the limit of 4 stops it: a a b a.
#[test]
fn ngram_blocking_steers_the_search() {
    let logits: Vec<f32> = [0.1f32, 0.6, 0.3].iter().map(|p| p.ln()).collect();
    let blocked = Beam {
        no_repeat_ngram: 2,
        ..beam(1, 1.0)
    };
    let h = search(&blocked, &[], ((), logits.clone()), 4, EOS, &[], |_, _| {
        Ok(((), logits.clone()))
    })
    .unwrap();
    assert_eq!(h.tokens, vec![A, A, B, A]);
    let expected = 0.6f64.ln() * 3.0 + 0.75f64.ln();
    assert!((h.log_prob - expected).abs() < 1e-5);
    // A banned id is never written: without a, b (.75) twice, then b b would repeat: EOS.
    let h = search(&blocked, &[], ((), logits.clone()), 3, EOS, &[A], |_, _| {
        Ok(((), logits.clone()))
    })
    .unwrap();
    assert_eq!(h.tokens, vec![B, B, EOS]);
}

fn tiny_denoiser() -> (Denoiser, Params) {
    let tok = Tokenizer::Char(CharTokenizer::from_text("abcdefgh .\n"));
    let noise = Noise::Bart(BartNoise::default());
    let config = TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 2,
        d_ff: 32,
        max_len: 16,
        dropout: 0.0,
        ..TransformerConfig::toy(Denoiser::vocab_size(&tok, &noise))
    };
    let mut params = Params::new();
    let model = Denoiser::new(&mut params, &config, noise, &tok, &mut StdRng::seed_from_u64(5)).unwrap();
    (model, params)
}

/// On a random encoder-decoder: a beam of 4 gives the same hypothesis, bit for bit, with the
/// KV cache and without; a beam of 1 writes what greedy generation writes.
#[test]
fn cached_equals_uncached_and_a_beam_of_one_is_greedy() {
    let (model, params) = tiny_denoiser();
    let source = [2, 7, 8, 9, 10, 3];
    let m = Model::EncoderDecoder {
        model: &model.model,
        source: &source,
    };
    let settings = |beam: Beam, use_cache: bool| BeamSettings {
        beam,
        max_new: 12,
        banned: &[],
        stop: 3,
        use_cache,
    };
    let four = Beam {
        width: 4,
        length_penalty: 1.0,
        no_repeat_ngram: 3,
    };
    let cached = beam_search(m, &params, &[3], &settings(four, true)).unwrap();
    let uncached = beam_search(m, &params, &[3], &settings(four, false)).unwrap();
    assert_eq!(cached, uncached);
    assert!(!cached.tokens.is_empty());
    let one = beam_search(m, &params, &[3], &settings(Beam::greedy(), true)).unwrap();
    let greedy = generate(
        m,
        &params,
        &[3],
        12,
        &Sampling::Greedy,
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let until_eos: Vec<usize> = match greedy.tokens.iter().position(|&t| t == 3) {
        Some(i) => greedy.tokens[..=i].to_vec(),
        None => greedy.tokens.clone(),
    };
    assert_eq!(one.tokens, until_eos);
    // The prompt and the new tokens must fit in max_len = 16: refused, named.
    let too_long = BeamSettings {
        max_new: 16,
        ..settings(four, true)
    };
    let e = beam_search(m, &params, &[3], &too_long).unwrap_err();
    assert!(e.contains("max_len 16"), "{e}");
    let e = beam_search(m, &params, &[3], &settings(beam(0, 1.0), true)).unwrap_err();
    assert!(e.contains("width"), "{e}");
}
