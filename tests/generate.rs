//! Generation: the KV cache gives the full forward's logits and tokens, for the decoder-only
//! model and the encoder-decoder; the window slides by the documented rule; sampling keeps to
//! its rules.

use microlm::data::Batch;
use microlm::generate::{generate, stream, Generation, Model, Sampling, Settings};
use microlm::nn::{Cache, Decoder, EncoderDecoder, NormPlacement, TransformerConfig};
use microlm::{Params, Tape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCAB: usize = 13;
const MAX_LEN: usize = 12;
const TOL: f32 = 1e-5;

/// A small decoder whose every parameter (LayerNorm gains and biases included) is perturbed
/// away from its init, so that no term of the model can be dropped unnoticed.
fn config(norm: NormPlacement) -> TransformerConfig {
    TransformerConfig {
        vocab_size: VOCAB,
        d_model: 16,
        heads: 2,
        layers: 2,
        d_ff: 32,
        max_len: MAX_LEN,
        dropout: 0.0,
        norm,
        ..TransformerConfig::toy(VOCAB)
    }
}

/// Add noise in [-0.2, 0.2) to every parameter.
fn perturb(params: &mut Params, rng: &mut StdRng) {
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        params
            .value_mut(id)
            .iter_mut()
            .for_each(|w| *w += rng.random::<f32>() * 0.4 - 0.2);
    }
}

fn model(norm: NormPlacement) -> (Decoder, Params) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut params = Params::new();
    let decoder = Decoder::new(&mut params, "decoder", &config(norm), &mut rng).unwrap();
    perturb(&mut params, &mut rng);
    (decoder, params)
}

fn seq2seq(norm: NormPlacement) -> (EncoderDecoder, Params) {
    let mut rng = StdRng::seed_from_u64(8);
    let mut params = Params::new();
    let model = EncoderDecoder::new(&mut params, &config(norm), &mut rng).unwrap();
    perturb(&mut params, &mut rng);
    (model, params)
}

/// The last position's logits of a forward with `cache` over `ids` (after the cached ones).
fn cached_step(d: &Decoder, p: &Params, cache: &mut Cache, ids: &[usize]) -> Vec<f32> {
    let mut tape = Tape::no_grad();
    let x = Batch::new(ids.to_vec(), 1, ids.len());
    let logits = d.forward_cached(&mut tape, p, &x, Some(cache), &mut StdRng::seed_from_u64(0));
    let v = tape.value(logits);
    (0..VOCAB).map(|j| v[[0, ids.len() - 1, j]]).collect()
}

const NORMS: [NormPlacement; 2] = [NormPlacement::Pre, NormPlacement::Post];

fn run(d: &Decoder, p: &Params, prompt: &[usize], n: usize, s: &Sampling, cache: bool, seed: u64) -> Generation {
    generate(
        Model::Decoder(d),
        p,
        prompt,
        n,
        s,
        cache,
        &mut StdRng::seed_from_u64(seed),
    )
    .unwrap()
}

/// The model's own full forward over `context`, every position's logits.
fn forward_rows(d: &Decoder, p: &Params, context: &[usize]) -> Vec<Vec<f32>> {
    let mut tape = Tape::no_grad();
    let tokens = Batch::new(context.to_vec(), 1, context.len());
    let logits = d.forward(&mut tape, p, &tokens, &mut StdRng::seed_from_u64(0));
    let v = tape.value(logits);
    (0..context.len())
        .map(|t| (0..VOCAB).map(|j| v[[0, t, j]]).collect())
        .collect()
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(diff <= TOL, "{what}: max |diff| = {diff}\n{a:?}\n{b:?}");
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

#[test]
fn cached_and_uncached_give_the_same_tokens_and_logits() {
    let samplings = [
        Sampling::Greedy,
        Sampling::TopK { k: 4, temperature: 0.8 },
        Sampling::Temperature(1.3),
    ];
    for norm in NORMS {
        let (d, p) = model(norm);
        for s in &samplings {
            let cached = run(&d, &p, &[1, 5, 9], 30, s, true, 42);
            let uncached = run(&d, &p, &[1, 5, 9], 30, s, false, 42);
            assert_eq!(cached.tokens.len(), 30);
            assert_eq!(cached.tokens, uncached.tokens, "{norm:?} {s:?}");
            for (i, (a, b)) in cached.logits.iter().zip(&uncached.logits).enumerate() {
                assert_close(&format!("{norm:?} {s:?} step {i}"), a, b);
            }
        }
    }
}

#[test]
fn every_cached_step_matches_the_full_forward() {
    for norm in NORMS {
        let (d, p) = model(norm);
        let context: Vec<usize> = (0..MAX_LEN).map(|i| (i * 5 + 3) % VOCAB).collect();
        let full = forward_rows(&d, &p, &context);
        // The first cached step of generation: the prompt's last position.
        let g = run(&d, &p, &context[..3], 1, &Sampling::Greedy, true, 0);
        assert_close(&format!("{norm:?} generate"), &g.logits[0], &full[2]);
        // Prefill one token, then one step per position up to max_len.
        let mut cache = d.new_cache();
        assert_close(
            &format!("{norm:?} prefill"),
            &cached_step(&d, &p, &mut cache, &context[..1]),
            &full[0],
        );
        for t in 1..MAX_LEN {
            let logits = cached_step(&d, &p, &mut cache, &context[t..t + 1]);
            assert_close(&format!("{norm:?} step at position {t}"), &logits, &full[t]);
            assert_eq!(cache.positions, t + 1);
            let keys = cache.layers[0].self_attn.keys.as_ref().unwrap();
            assert_eq!(keys.shape(), &[1, 2, t + 1, 8]);
        }
        // A prefill of several positions gives the last one's logits.
        let mut cache = d.new_cache();
        assert_close(
            &format!("{norm:?} prefill 7"),
            &cached_step(&d, &p, &mut cache, &context[..7]),
            &full[6],
        );
    }
}

/// The encoder-decoder's full forward over `target` reading `source`: the last position's logits.
fn seq2seq_last(m: &EncoderDecoder, p: &Params, source: &[usize], target: &[usize]) -> Vec<f32> {
    let mut tape = Tape::no_grad();
    let s = Batch::new(source.to_vec(), 1, source.len());
    let t = Batch::new(target.to_vec(), 1, target.len());
    let logits = m.forward(&mut tape, p, &s, &t, &mut StdRng::seed_from_u64(0));
    let v = tape.value(logits);
    (0..VOCAB).map(|j| v[[0, target.len() - 1, j]]).collect()
}

#[test]
fn encoder_decoder_generation_with_the_cache_equals_the_full_forward() {
    let source = [3, 1, 4, 1, 5, 9, 2];
    let samplings = [Sampling::Greedy, Sampling::TopK { k: 5, temperature: 1.2 }];
    for norm in NORMS {
        let (m, p) = seq2seq(norm);
        let model = Model::EncoderDecoder {
            model: &m,
            source: &source,
        };
        for s in &samplings {
            let run = |cache| generate(model, &p, &[0], 25, s, cache, &mut StdRng::seed_from_u64(5)).unwrap();
            let (cached, uncached) = (run(true), run(false));
            assert_eq!(cached.tokens, uncached.tokens, "{norm:?} {s:?}");
            // Each step's logits equal the full forward over the target so far (25 > MAX_LEN, so
            // the window slides too).
            let mut target = vec![0];
            for (i, (a, b)) in cached.logits.iter().zip(&uncached.logits).enumerate() {
                assert_close(&format!("{norm:?} {s:?} step {i}"), a, b);
                if target.len() <= MAX_LEN && i < 11 {
                    assert_close(
                        &format!("{norm:?} step {i} vs forward"),
                        a,
                        &seq2seq_last(&m, &p, &source, &target),
                    );
                }
                target.push(cached.tokens[i]);
            }
        }
        // The source matters: another source gives other logits.
        let other = Model::EncoderDecoder {
            model: &m,
            source: &[7, 7, 7],
        };
        let a = generate(
            model,
            &p,
            &[0],
            1,
            &Sampling::Greedy,
            true,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        let b = generate(
            other,
            &p,
            &[0],
            1,
            &Sampling::Greedy,
            true,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        assert_ne!(a.logits, b.logits);
        let e = generate(
            Model::EncoderDecoder { model: &m, source: &[] },
            &p,
            &[0],
            1,
            &Sampling::Greedy,
            true,
            &mut StdRng::seed_from_u64(0),
        );
        assert!(e.unwrap_err().contains("source has 0 tokens"));
    }
}

/// Replays the documented window rule independently and checks each step's logits against the
/// model's forward over the context that rule gives.
fn check_window(d: &Decoder, p: &Params, prompt: &[usize], g: &Generation, what: &str) {
    let keep = MAX_LEN / 2;
    let mut context: Vec<usize> = prompt[prompt.len().saturating_sub(MAX_LEN)..].to_vec();
    for (i, &token) in g.tokens.iter().enumerate() {
        let expected = forward_rows(d, p, &context).pop().unwrap();
        assert_close(
            &format!("{what} step {i}, context {context:?}"),
            &g.logits[i],
            &expected,
        );
        context.push(token);
        if context.len() > MAX_LEN {
            context = context[context.len() - keep..].to_vec();
        }
    }
}

#[test]
fn the_window_slides_by_the_documented_rule() {
    for norm in NORMS {
        let (d, p) = model(norm);
        for cache in [true, false] {
            let prompt = [1, 5, 9];
            let g = run(&d, &p, &prompt, 30, &Sampling::Temperature(1.0), cache, 3);
            check_window(&d, &p, &prompt, &g, &format!("{norm:?} cache {cache}"));
            // A prompt longer than max_len is cut to its last max_len tokens.
            let long: Vec<usize> = (0..20).map(|i| (i * 7 + 2) % VOCAB).collect();
            let g = run(&d, &p, &long, 10, &Sampling::Greedy, cache, 3);
            check_window(&d, &p, &long, &g, &format!("{norm:?} cache {cache} long prompt"));
        }
    }
}

#[test]
fn greedy_takes_the_argmax_of_its_logits() {
    for norm in NORMS {
        let (d, p) = model(norm);
        let g = run(&d, &p, &[4], 20, &Sampling::Greedy, true, 0);
        for (token, logits) in g.tokens.iter().zip(&g.logits) {
            assert_eq!(*token, argmax(logits));
        }
        assert_eq!(
            Sampling::Greedy.sample(&[0.5, 2.0, 2.0, 1.0], &mut StdRng::seed_from_u64(0)),
            Ok(1)
        );
    }
}

#[test]
fn top_k_draws_only_from_the_top_k_with_softmax_frequencies() {
    // Ids 1, 2, 3 tie at 2.0; with k = 2 the tie goes to the lower ids, 1 and 2.
    let logits = [0.0, 2.0, 2.0, 2.0, 3.0, -1.0, 1.5];
    let s = Sampling::TopK { k: 3, temperature: 0.7 };
    let allowed = [4, 1, 2];
    let z: Vec<f64> = allowed.iter().map(|&i| (logits[i] as f64 / 0.7).exp()).collect();
    let total: f64 = z.iter().sum();
    let mut rng = StdRng::seed_from_u64(11);
    let draws = 20_000;
    let mut counts = [0usize; 7];
    for _ in 0..draws {
        counts[s.sample(&logits, &mut rng).unwrap()] += 1;
    }
    for id in 0..7 {
        if let Some(j) = allowed.iter().position(|&a| a == id) {
            let freq = counts[id] as f64 / draws as f64;
            assert!(
                (freq - z[j] / total).abs() < 0.02,
                "id {id}: {freq} vs {}",
                z[j] / total
            );
        } else {
            assert_eq!(counts[id], 0, "id {id} is outside the top 3: {counts:?}");
        }
    }
    // k = 1 is greedy; k past the vocabulary is the whole vocabulary.
    let one = Sampling::TopK { k: 1, temperature: 5.0 };
    assert!((0..200).all(|_| one.sample(&logits, &mut rng) == Ok(4)));
    let all = Sampling::TopK {
        k: 100,
        temperature: 1.0,
    };
    let mut seen = [false; 7];
    (0..5000).for_each(|_| seen[all.sample(&logits, &mut rng).unwrap()] = true);
    assert!(seen.iter().all(|&s| s), "{seen:?}");
}

#[test]
fn generated_top_k_tokens_are_in_the_top_k_of_their_logits() {
    let (d, p) = model(NormPlacement::Pre);
    let g = run(&d, &p, &[2, 3], 40, &Sampling::TopK { k: 2, temperature: 2.0 }, true, 5);
    for (token, logits) in g.tokens.iter().zip(&g.logits) {
        let above = logits.iter().filter(|&&l| l > logits[*token]).count();
        assert!(above < 2, "token {token} has {above} logits above it");
    }
    assert!(
        g.tokens.iter().zip(&g.logits).any(|(t, l)| *t != argmax(l)),
        "never drew the second"
    );
}

#[test]
fn bad_settings_and_an_empty_prompt_are_errors() {
    let (d, p) = model(NormPlacement::Pre);
    let err = |prompt: &[usize], s: Sampling| {
        generate(
            Model::Decoder(&d),
            &p,
            prompt,
            5,
            &s,
            true,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap_err()
    };
    for t in [0.0, -1.0, f32::NAN] {
        assert!(err(&[1], Sampling::Temperature(t)).contains("temperature"));
        assert!(err(&[1], Sampling::TopK { k: 2, temperature: t }).contains("temperature"));
    }
    assert!(err(&[1], Sampling::TopK { k: 0, temperature: 1.0 }).contains("k >= 1"));
    assert!(err(&[], Sampling::Greedy).contains("prompt is empty"));
    assert!(err(&[1, VOCAB], Sampling::Greedy).contains("outside the vocabulary"));
    let bad = Sampling::Temperature(0.0).sample(&[1.0], &mut StdRng::seed_from_u64(0));
    assert!(bad.unwrap_err().contains("temperature"));
}

#[test]
fn the_same_seed_gives_the_same_tokens() {
    let (d, p) = model(NormPlacement::Post);
    let s = Sampling::Temperature(1.5);
    for cache in [true, false] {
        let a = run(&d, &p, &[7, 1], 25, &s, cache, 99);
        let b = run(&d, &p, &[7, 1], 25, &s, cache, 99);
        assert_eq!(a, b);
        let c = run(&d, &p, &[7, 1], 25, &s, cache, 100);
        assert_ne!(a.tokens, c.tokens, "another seed should draw other tokens");
    }
    assert_eq!(run(&d, &p, &[7], 0, &s, true, 1), Generation::default());
}

/// The decoder with its output bias raised at `favoured`, so that every step's logits favour it.
fn favouring(favoured: usize) -> (Decoder, Params) {
    let (d, mut p) = model(NormPlacement::Pre);
    let bias = p.find("decoder.lm_head.bias").expect("the output bias");
    p.value_mut(bias)[favoured] += 30.0;
    (d, p)
}

#[test]
fn banned_ids_are_never_drawn_even_when_favoured() {
    let banned = [0, 1, 2, 3, 4]; // where a tokenizer keeps its special tokens
    let (d, p) = favouring(3);
    let samplings = [
        Sampling::Greedy,
        Sampling::Temperature(2.0),
        Sampling::TopK { k: 3, temperature: 1.0 },
    ];
    for s in samplings {
        // Unbanned, the model draws the favoured id every time...
        let free = run(&d, &p, &[5, 6], 30, &s, true, 1);
        assert!(free.tokens.iter().all(|&t| t == 3), "{s:?}: {:?}", free.tokens);
        // ...banned, never, with or without the cache, and each token arrives as it is drawn.
        for cache in [true, false] {
            let settings = Settings {
                new_tokens: 30,
                sampling: s,
                use_cache: cache,
                banned: &banned,
                stop: None,
            };
            let mut seen = Vec::new();
            stream(
                Model::Decoder(&d),
                &p,
                &[5, 6],
                &settings,
                &mut StdRng::seed_from_u64(1),
                |t, logits| {
                    assert_eq!(logits.len(), VOCAB);
                    seen.push(t);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen.len(), 30);
            assert!(
                seen.iter().all(|t| !banned.contains(t)),
                "{s:?} cache {cache}: {seen:?}"
            );
        }
    }
    // The sampler itself: logits that put nearly all the mass on id 1.
    let logits = [0.0, 40.0, 1.0, 0.5];
    let mut rng = StdRng::seed_from_u64(2);
    for s in samplings {
        for _ in 0..500 {
            assert_ne!(s.sample_excluding(&logits, &[1], &mut rng).unwrap(), 1, "{s:?}");
        }
    }
    assert_eq!(Sampling::Greedy.sample_excluding(&logits, &[1], &mut rng), Ok(2));
    let all = Sampling::Greedy.sample_excluding(&logits, &[0, 1, 2, 3], &mut rng);
    assert!(all.unwrap_err().contains("no id left"));
}

#[test]
fn generation_stops_after_the_stop_id_and_matches_the_unstopped_run_until_then() {
    // Unstopped greedy run: find a token it draws somewhere in the middle, then stop on it.
    let (d, p) = model(NormPlacement::Pre);
    let full = run(&d, &p, &[7, 1], 20, &Sampling::Greedy, true, 3).tokens;
    let stop_at = 5.min(full.len() - 1);
    let stop = full[stop_at];
    let first = full.iter().position(|&t| t == stop).unwrap(); // may come earlier
    for cache in [true, false] {
        let settings = Settings {
            new_tokens: 20,
            sampling: Sampling::Greedy,
            use_cache: cache,
            banned: &[],
            stop: Some(stop),
        };
        let mut seen = Vec::new();
        stream(
            Model::Decoder(&d),
            &p,
            &[7, 1],
            &settings,
            &mut StdRng::seed_from_u64(3),
            |t, _| {
                seen.push(t);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, full[..=first], "cache {cache}");
    }
    // A favoured stop id ends generation after one token.
    let (d, p) = favouring(3);
    let settings = Settings {
        new_tokens: 30,
        sampling: Sampling::Greedy,
        use_cache: true,
        banned: &[],
        stop: Some(3),
    };
    let mut n = 0;
    stream(
        Model::Decoder(&d),
        &p,
        &[5],
        &settings,
        &mut StdRng::seed_from_u64(0),
        |t, _| {
            assert_eq!(t, 3);
            n += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(n, 1);
}

/// `CausalLm::sample_text`, what the clm example prints: with the output bias raised far at
/// every special id, the text still holds none of them (it once printed `[PAD]` and the others
/// after a short run), at any sampling.
#[test]
fn sampled_text_never_holds_a_special_token() {
    use microlm::objectives::CausalLm;
    use microlm::tokenizer::{CharTokenizer, Tokenizer};
    let tok = Tokenizer::Char(CharTokenizer::from_text("abcdef ghij\n"));
    let config = TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 1,
        d_ff: 32,
        max_len: 16,
        dropout: 0.0,
        ..TransformerConfig::toy(tok.vocab_size())
    };
    let mut p = Params::new();
    let model = CausalLm::new(&mut p, &config, &mut StdRng::seed_from_u64(0)).unwrap();
    let bias = p.find("decoder.lm_head.bias").expect("the output bias");
    for id in tok.special_ids() {
        p.value_mut(bias)[id] += 30.0;
    }
    for s in [
        Sampling::Greedy,
        Sampling::TopK {
            k: 200,
            temperature: 0.8,
        },
    ] {
        let text = model
            .sample_text(&p, &tok, "\n", 60, s, &mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(text.chars().count(), 60, "{s:?}: {text:?}");
        for name in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            assert!(!text.contains(name), "{s:?}: {name} in {text:?}");
        }
    }
}
