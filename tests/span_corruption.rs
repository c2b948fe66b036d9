//! T5 span corruption against `docs/objectives.md` §5b: the paper's example, the counts and
//! lengths worked out by hand, the mask's statistics, the edge cases, the errors, and both
//! tokenizers with the sentinels above their vocabulary.

use microlm::data::load_text;
use microlm::data::span_corruption::{apply_noise_mask, span_corrupt, Sentinels, SpanCorruption};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;

/// A vocabulary of 1000 ids whose top 100 are sentinels: S_k = 999 - k, ordinary ids below 900.
const SENTINELS: Sentinels = Sentinels {
    vocab_size: 1000,
    count: 100,
};
const S0: usize = 999;
const S1: usize = 998;
const S2: usize = 997;
const EOS: usize = 1;

/// Ordinary ids 10, 11, ... for a sequence of `length` tokens.
fn ordinary(length: usize) -> Vec<usize> {
    (0..length).map(|i| 10 + i % 800).collect()
}

/// How many maximal runs of `value` the mask has.
fn runs(mask: &[bool], value: bool) -> usize {
    let starts = |i: usize| mask[i] == value && (i == 0 || mask[i - 1] != value);
    (0..mask.len()).filter(|&i| starts(i)).count()
}

/// The length of the first run of `value`, and where it starts.
fn first_run(mask: &[bool], value: bool) -> (usize, usize) {
    let start = mask.iter().position(|&b| b == value).unwrap();
    let len = mask[start..].iter().take_while(|&&b| b == value).count();
    (start, len)
}

/// Put the original tokens back: in the inputs, each sentinel stands for the tokens that follow
/// that same sentinel in the targets (up to the next sentinel or EOS).
fn reconstruct(inputs: &[usize], targets: &[usize], sentinels: &Sentinels, eos: usize) -> Vec<usize> {
    let mut spans: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut current = None;
    for &t in targets.iter().take_while(|&&t| t != eos) {
        if sentinels.contains(t) {
            current = Some(t);
            spans.entry(t).or_default();
        } else {
            spans
                .get_mut(&current.expect("targets start with a sentinel"))
                .unwrap()
                .push(t);
        }
    }
    let mut out = Vec::new();
    for &t in inputs.iter().take_while(|&&t| t != eos) {
        if sentinels.contains(t) {
            out.extend(&spans[&t]);
        } else {
            out.push(t);
        }
    }
    out
}

#[test]
fn the_papers_example() {
    // §5b, "Example": the paper's Figure 2, with the mask given.
    let words: Vec<&str> = "Thank you for inviting me to your party last week".split(' ').collect();
    let id = |w: &str| 10 + words.iter().position(|x| *x == w).unwrap();
    let tokens: Vec<usize> = words.iter().map(|w| id(w)).collect();
    let mask: Vec<bool> = words.iter().map(|w| ["for", "inviting", "last"].contains(w)).collect();
    let (inputs, targets) = apply_noise_mask(&tokens, &mask, &SENTINELS, EOS).unwrap();
    let expected_inputs = [
        id("Thank"),
        id("you"),
        S0,
        id("me"),
        id("to"),
        id("your"),
        id("party"),
        S1,
        id("week"),
        EOS,
    ];
    assert_eq!(inputs, expected_inputs);
    // "week" is a kept run at the end: it gives one last sentinel, S2.
    assert_eq!(targets, [S0, id("for"), id("inviting"), S1, id("last"), S2, EOS]);
}

#[test]
fn a_given_mask_that_starts_with_noise() {
    // Tokens a b c with b kept: the inputs hide a and c, the targets hide b, each from S0.
    let (a, b, c) = (20, 21, 22);
    let (inputs, targets) = apply_noise_mask(&[a, b, c], &[true, false, true], &SENTINELS, EOS).unwrap();
    assert_eq!(inputs, [S0, b, S1, EOS]);
    assert_eq!(targets, [a, S0, c, EOS]);
}

#[test]
fn sentinel_ids_sit_at_the_top() {
    assert_eq!((SENTINELS.id(0), SENTINELS.id(1), SENTINELS.id(99)), (999, 998, 900));
    assert_eq!(SENTINELS.first(), 900);
    assert!(SENTINELS.contains(900) && SENTINELS.contains(999));
    assert!(!SENTINELS.contains(899) && !SENTINELS.contains(1000));
}

#[test]
fn counts_worked_by_hand() {
    let t5 = SpanCorruption::default();
    // m = clip(round_half_even(L'·0.15), 1, L'-1), s = max(1, round_half_even(m/3)).
    for (length, m, s) in [
        (10, 2, 1),    // 1.5 -> 2 (half to even); 2/3 = 0.67 -> 1 (the spec's example)
        (30, 4, 1),    // 4.5 -> 4 (half to even; f64::round would give 5); 1.33 -> 1
        (50, 8, 3),    // 7.5 -> 8; 2.67 -> 3
        (70, 10, 3),   // 10.5 -> 10; 3.33 -> 3
        (90, 14, 5),   // 13.5 -> 14; 4.67 -> 5
        (100, 15, 5),  // 15; 5
        (512, 77, 26), // 76.8 -> 77; 25.67 -> 26
        (568, 85, 28), // 85.2 -> 85; 28.33 -> 28
        (1, 1, 1),     // L' = 2: 0.3 -> 0, clipped up to 1
        (2, 1, 1),
    ] {
        assert_eq!(t5.counts(length), (m, s), "L = {length}");
    }
    // s rounds half to even too: r = 0.5, μ = 2.
    let half = SpanCorruption {
        noise_density: 0.5,
        mean_span: 2.0,
    };
    // m/μ = 3/2 = 1.5 -> 2, 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4.
    assert_eq!(half.counts(6), (3, 2));
    assert_eq!(half.counts(10), (5, 2));
    assert_eq!(half.counts(14), (7, 4));

    // m clipped from above: r = 1 gives L' - 1 noise tokens. The formula then says s = 9/3 = 3,
    // but one kept token makes only one kept run, so s is capped at 1 (see counts' docs).
    let all = SpanCorruption {
        noise_density: 1.0,
        mean_span: 3.0,
    };
    assert_eq!(all.counts(10), (9, 1));
}

#[test]
fn raw_length_for_the_t5_input_lengths() {
    let t5 = SpanCorruption::default();
    // 568 raw tokens: m = 85, s = 28, |inputs| = 568 - 85 + 28 + 1 = 512, |targets| = 114;
    // 569 would give m = round(85.35) = 85, s = 28, |inputs| = 513: too many.
    assert_eq!(t5.raw_length_for(512), (568, 114));
    // 141: m = round(21.15) = 21, s = 7, |inputs| = 128, |targets| = 29; 142 gives 129.
    assert_eq!(t5.raw_length_for(128), (141, 29));
    // No noise: every raw token and EOS; the targets are S0 EOS.
    let none = SpanCorruption {
        noise_density: 0.0,
        mean_span: 3.0,
    };
    assert_eq!(none.raw_length_for(512), (511, 2));
}

#[test]
fn drawn_masks_have_the_exact_counts_and_lengths() {
    let t5 = SpanCorruption::default();
    for length in 2..=300 {
        let tokens = ordinary(length);
        for seed in 0..4 {
            let mut rng = StdRng::seed_from_u64(1000 * seed + length as u64);
            let mask = t5.noise_mask(length, &mut rng);
            let m = mask.iter().filter(|&&b| b).count();
            let s = runs(&mask, true);
            assert_eq!((m, s), t5.counts(length), "L = {length}");
            assert_eq!(runs(&mask, false), s, "as many kept runs as noise runs");
            assert!(!mask[0] && mask[length - 1], "L = {length}: {mask:?}");
            let (inputs, targets) = apply_noise_mask(&tokens, &mask, &SENTINELS, EOS).unwrap();
            assert_eq!(inputs.len(), length - m + s + 1);
            assert_eq!(targets.len(), m + s + 1);
            assert_eq!(t5.lengths(length), (inputs.len(), targets.len()));
            assert_eq!(reconstruct(&inputs, &targets, &SENTINELS, EOS), tokens);
            // span_corrupt draws the same mask from the same seed.
            let mut rng = StdRng::seed_from_u64(1000 * seed + length as u64);
            let drawn = span_corrupt(&tokens, &t5, &SENTINELS, EOS, &mut rng).unwrap();
            assert_eq!(drawn, (inputs, targets));
        }
    }
}

#[test]
fn mask_invariants_over_ten_thousand_draws() {
    let t5 = SpanCorruption::default();
    let mut rng = StdRng::seed_from_u64(7);
    for (length, m, s) in [(10, 2, 1), (37, 6, 2), (100, 15, 5)] {
        for _ in 0..10_000 {
            let mask = t5.noise_mask(length, &mut rng);
            assert!(!mask[0], "the first token is never noise");
            assert!(mask[length - 1], "the last token always is");
            assert_eq!(mask.iter().filter(|&&b| b).count(), m);
            assert_eq!(runs(&mask, true), s);
        }
    }
}

#[test]
fn span_lengths_are_uniform_over_their_support() {
    // L = 20, r = 0.25, μ = 2.5: m = 5, s = round(2) = 2; the mask is N1 X1 N2 X2 with 15 kept
    // tokens. X1 is the first of two runs cut from 5 tokens: one of the 4 gaps, so X1 is uniform
    // on {1, 2, 3, 4}. N1 is uniform on {1, ..., 14} (one of the 14 gaps of 15 tokens).
    let cfg = SpanCorruption {
        noise_density: 0.25,
        mean_span: 2.5,
    };
    assert_eq!(cfg.counts(20), (5, 2));
    let draws = 10_000;
    let mut rng = StdRng::seed_from_u64(11);
    let (mut x1, mut n1) = (vec![0usize; 5], vec![0usize; 15]);
    for _ in 0..draws {
        let mask = cfg.noise_mask(20, &mut rng);
        let (start, len) = first_run(&mask, true);
        x1[len] += 1;
        n1[start] += 1;
    }
    // A count with probability p: mean n·p, sd sqrt(n·p·(1 - p)); allow 5 sd.
    let check = |counts: &[usize], support: std::ops::RangeInclusive<usize>| {
        let p = 1.0 / support.clone().count() as f64;
        let (mean, sd) = (draws as f64 * p, (draws as f64 * p * (1.0 - p)).sqrt());
        for (k, &c) in counts.iter().enumerate() {
            if support.contains(&k) {
                assert!((c as f64 - mean).abs() < 5.0 * sd, "length {k}: {c} vs {mean} ± 5·{sd}");
            } else {
                assert_eq!(c, 0, "length {k} is outside the support");
            }
        }
    };
    check(&x1, 1..=4); // 2500 ± 5·43.3 each
    check(&n1, 1..=14); // 714.3 ± 5·25.8 each

    // Defaults, L = 100: m = 15 in s = 5 runs, 85 kept in 5 runs. One part of a uniform cut of
    // n into k non-empty parts is 1 + (a part of a uniform cut of n - k into k parts that may be
    // empty), with mean n/k and variance (n - k)·n·(k - 1)/(k²·(k + 1)):
    // X1: mean 3, variance 10·15·4/150 = 4; N1: mean 17, variance 80·85·4/150 = 181.33.
    let t5 = SpanCorruption::default();
    let (mut sum_x, mut sum_n) = (0.0, 0.0);
    for _ in 0..draws {
        let mask = t5.noise_mask(100, &mut rng);
        let (start, len) = first_run(&mask, true);
        sum_x += len as f64;
        sum_n += start as f64;
    }
    let n = draws as f64;
    assert!(
        (sum_x / n - 3.0).abs() < 5.0 * (4.0 / n).sqrt(),
        "mean X1 {}",
        sum_x / n
    );
    assert!(
        (sum_n / n - 17.0).abs() < 5.0 * (181.333 / n).sqrt(),
        "mean N1 {}",
        sum_n / n
    );
}

#[test]
fn edge_cases() {
    let t5 = SpanCorruption::default();
    let mut rng = StdRng::seed_from_u64(3);
    // L = 0: only EOS on either side.
    assert_eq!(
        span_corrupt(&[], &t5, &SENTINELS, EOS, &mut rng).unwrap(),
        (vec![EOS], vec![EOS])
    );
    // L = 1: no noise. The reference's targets turn the one kept run into a sentinel: S0 EOS.
    assert_eq!(t5.noise_mask(1, &mut rng), [false]);
    assert_eq!(
        span_corrupt(&[42], &t5, &SENTINELS, EOS, &mut rng).unwrap(),
        (vec![42, EOS], vec![S0, EOS])
    );
    assert_eq!(t5.lengths(1), (2, 2));
    // L = 2: m = 1, s = 1, and the only layout is N1 = first token, X1 = last.
    for _ in 0..20 {
        assert_eq!(t5.noise_mask(2, &mut rng), [false, true]);
    }
    assert_eq!(
        span_corrupt(&[42, 43], &t5, &SENTINELS, EOS, &mut rng).unwrap(),
        (vec![42, S0, EOS], vec![S0, 43, EOS])
    );
    // m clipped up to 1: r = 0.01, L = 10 gives 0.1 -> 0 -> 1, s = 1: nine kept, then one noise.
    let sparse = SpanCorruption {
        noise_density: 0.01,
        mean_span: 3.0,
    };
    let mut expected = vec![false; 10];
    expected[9] = true;
    assert_eq!(sparse.noise_mask(10, &mut rng), expected);
    // m clipped down to L' - 1: r = 1, μ = 100, L = 10 gives m = 9, s = 1: one kept, nine noise.
    let dense = SpanCorruption {
        noise_density: 1.0,
        mean_span: 100.0,
    };
    let mut expected = vec![true; 10];
    expected[0] = false;
    assert_eq!(dense.noise_mask(10, &mut rng), expected);
    // r = 0: no noise at all (the reference returns before counting).
    let none = SpanCorruption {
        noise_density: 0.0,
        mean_span: 3.0,
    };
    assert_eq!(none.noise_mask(10, &mut rng), vec![false; 10]);
    let (inputs, targets) = span_corrupt(&ordinary(10), &none, &SENTINELS, EOS, &mut rng).unwrap();
    assert_eq!(
        (inputs[..10].to_vec(), inputs[10], targets),
        (ordinary(10), EOS, vec![S0, EOS])
    );
    // More spans than tokens can hold: r = 0.5, μ = 0.5, L = 10 gives m = 5 and round(10) = 10
    // spans, capped at 5, so every run has one token and the mask alternates.
    let tiny_spans = SpanCorruption {
        noise_density: 0.5,
        mean_span: 0.5,
    };
    assert_eq!(tiny_spans.counts(10), (5, 5));
    let alternating: Vec<bool> = (0..10).map(|i| i % 2 == 1).collect();
    assert_eq!(tiny_spans.noise_mask(10, &mut rng), alternating);
}

#[test]
fn a_seed_fixes_the_mask() {
    let t5 = SpanCorruption::default();
    let draw = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..20).map(|_| t5.noise_mask(200, &mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));
}

#[test]
fn errors_name_the_problem() {
    let mut rng = StdRng::seed_from_u64(0);
    let tokens = ordinary(20);
    let bad_r = SpanCorruption {
        noise_density: 1.5,
        mean_span: 3.0,
    };
    let e = span_corrupt(&tokens, &bad_r, &SENTINELS, EOS, &mut rng).unwrap_err();
    assert_eq!(e, "span corruption: noise_density = 1.5 is outside [0, 1]");
    let nan_r = SpanCorruption {
        noise_density: f64::NAN,
        mean_span: 3.0,
    };
    assert!(nan_r.validate().unwrap_err().contains("noise_density = NaN"));
    let bad_mu = SpanCorruption {
        noise_density: 0.15,
        mean_span: 0.0,
    };
    let e = span_corrupt(&tokens, &bad_mu, &SENTINELS, EOS, &mut rng).unwrap_err();
    assert!(e.contains("mean_span = 0"), "{e}");

    let t5 = SpanCorruption::default();
    // A token at the first sentinel's id: the vocabulary has no room left for the sentinels.
    let e = span_corrupt(&[10, 900, 11], &t5, &SENTINELS, EOS, &mut rng).unwrap_err();
    assert!(
        e.contains("token id 900") && e.contains("too small") && e.contains("1000"),
        "{e}"
    );
    // L = 300 needs s = 15 spans; 10 sentinels are not enough.
    let few = Sentinels {
        vocab_size: 1000,
        count: 10,
    };
    let e = span_corrupt(&ordinary(300), &t5, &few, EOS, &mut rng).unwrap_err();
    assert!(e.contains("15 noise spans") && e.contains("10 sentinels"), "{e}");
    // Three kept runs in the targets need three sentinels.
    let two = Sentinels {
        vocab_size: 1000,
        count: 2,
    };
    let mask = [false, true, false, true, false];
    let e = apply_noise_mask(&ordinary(5), &mask, &two, EOS).unwrap_err();
    assert!(e.contains("3 kept spans"), "{e}");
    // T5 has 100 sentinels, no more.
    let many = Sentinels {
        vocab_size: 1000,
        count: 101,
    };
    assert!(apply_noise_mask(&[10], &[false], &many, EOS)
        .unwrap_err()
        .contains("at most 100"));
    // The mask must cover the tokens; EOS must not be a sentinel.
    let e = apply_noise_mask(&ordinary(3), &[false, true], &SENTINELS, EOS).unwrap_err();
    assert!(e.contains("2 entries for 3 tokens"), "{e}");
    let e = apply_noise_mask(&ordinary(3), &[false, false, true], &SENTINELS, S0).unwrap_err();
    assert!(e.contains("eos = 999 is a sentinel"), "{e}");
}

#[test]
fn both_tokenizers_with_sentinels_above_their_vocabulary() {
    let text = load_text(Path::new("data/tinyshakespeare.txt")).unwrap();
    let sample: String = text.chars().take(50_000).collect();
    let tokenizers = [
        Tokenizer::Char(CharTokenizer::from_text(&sample)),
        Tokenizer::Bpe(BpeTokenizer::train(&sample, 256 + 100 + 5)),
    ];
    let t5 = SpanCorruption::default();
    let sentence = "First Citizen:\nBefore we proceed any further, hear me speak. You are all resolved \
                    rather to die than to famish? Resolved. resolved.";
    for tok in &tokenizers {
        let sentinels = Sentinels {
            vocab_size: tok.vocab_size() + 100,
            count: 100,
        };
        assert_eq!(sentinels.first(), tok.vocab_size());
        // Text never encodes to a sentinel, not even text that spells one.
        for s in [sentence, "<extra_id_0> <extra_id_99>", "[MASK] 日本語 😀"] {
            assert!(
                tok.encode(s).iter().all(|&id| id < tok.vocab_size()),
                "{}: {s}",
                tok.kind()
            );
        }
        let eos = tok.special("[SEP]");
        let tokens = tok.encode(sentence);
        let (m, s) = t5.counts(tokens.len());
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let (inputs, targets) = span_corrupt(&tokens, &t5, &sentinels, eos, &mut rng).unwrap();
            assert_eq!((inputs.len(), targets.len()), (tokens.len() - m + s + 1, m + s + 1));
            let used: Vec<usize> = inputs.iter().copied().filter(|&t| sentinels.contains(t)).collect();
            assert_eq!(used, (0..s).map(|k| tok.vocab_size() + 99 - k).collect::<Vec<_>>());
            let back = reconstruct(&inputs, &targets, &sentinels, eos);
            assert_eq!(back, tokens, "{} seed {seed}", tok.kind());
            assert_eq!(tok.decode(&back), sentence);
        }
    }
}
