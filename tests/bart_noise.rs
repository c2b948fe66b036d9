//! BART's noise (`docs/objectives.md` §5a): the worked examples, the statistics and the edge
//! cases of the spec. Expected values come from the spec or are worked out by hand here, never
//! from the code under test.

use microlm::data::bart_noise::{
    corrupt, delete_at, delete_tokens, frame, infill_spans, insert_tokens, mask_tokens, permute_sentences,
    random_rotation, rotate, share_count, span_length_pmf, span_lengths, text_infilling, BartNoise, Masking, NoiseIds,
    MAX_SPAN,
};
use microlm::data::documents::split_sentences;
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use rand::rngs::StdRng;
use rand::SeedableRng;

// A tiny id space: three specials, the letters A to F, and random replacements 100 to 109.
const BOS: usize = 0;
const EOS: usize = 1;
const MASK: usize = 2;
const A: usize = 10;
const B: usize = 11;
const C: usize = 12;
const D: usize = 13;
const E: usize = 14;
const F: usize = 15;

fn ids() -> NoiseIds {
    NoiseIds {
        bos: BOS,
        eos: EOS,
        mask: MASK,
        random: (100..110).collect(),
        spacing: Vec::new(),
    }
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `<s> A B C D E F </s>`
fn abcdef() -> Vec<usize> {
    vec![BOS, A, B, C, D, E, F, EOS]
}

/// A framed document of n distinct body tokens 1000, 1001, ..., so that a survivor is known.
fn numbered(n: usize) -> Vec<usize> {
    let mut doc = vec![BOS];
    doc.extend(1000..1000 + n);
    doc.push(EOS);
    doc
}

/// Sentence s of `count`, each `len` tokens long, every token distinct.
fn sentences(count: usize, len: usize) -> Vec<Vec<usize>> {
    (0..count)
        .map(|s| (0..len).map(|t| 1000 + 100 * s + t).collect())
        .collect()
}

fn count(doc: &[usize], id: usize) -> usize {
    doc.iter().filter(|&&t| t == id).count()
}

fn noise(masking: Masking) -> BartNoise {
    BartNoise {
        masking,
        permute: 0.0,
        ..BartNoise::default()
    }
}

#[test]
fn worked_example_text_infilling() {
    // A span of length 2 at C (index 3) and one of length 0 just before F (index 6).
    let spans = [(3, 2), (6, 0)];
    assert_eq!(
        infill_spans(&abcdef(), &spans, MASK, false),
        [BOS, A, B, MASK, E, MASK, F, EOS]
    );
    // keep_length: C and D each become a mask; the empty span writes nothing.
    assert_eq!(
        infill_spans(&abcdef(), &spans, MASK, true),
        [BOS, A, B, MASK, MASK, E, F, EOS]
    );
}

#[test]
fn worked_example_deletion_and_rotation() {
    assert_eq!(delete_at(&abcdef(), &[2, 4]), [BOS, A, C, E, F, EOS]);
    assert_eq!(rotate(&abcdef(), 3), [BOS, C, D, E, F, A, B, EOS]);
    // o is drawn from {1, ..., n_total - 1} = {1, ..., 7}; at both ends nothing moves:
    // o = 1 gives x[1..7) then x[1..1) (empty); o = 7 gives x[7..7) (empty) then x[1..7).
    assert_eq!(rotate(&abcdef(), 1), abcdef());
    assert_eq!(rotate(&abcdef(), 7), abcdef());
}

#[test]
fn overlapping_spans_merge_and_spans_stop_at_eos() {
    // (2, 3) covers B C D and (3, 2) covers C D: C, a start inside B's tail, goes with it.
    assert_eq!(
        infill_spans(&abcdef(), &[(2, 3), (3, 2)], MASK, false),
        [BOS, A, MASK, E, F, EOS]
    );
    // A span of 10 at E stops at EOS.
    assert_eq!(
        infill_spans(&abcdef(), &[(5, 10)], MASK, false),
        [BOS, A, B, C, D, MASK, EOS]
    );
    assert_eq!(
        infill_spans(&abcdef(), &[(5, 10)], MASK, true),
        [BOS, A, B, C, D, MASK, MASK, EOS]
    );
}

#[test]
fn every_span_empty_leaves_only_inserted_masks() {
    let spans = [(1, 0), (4, 0), (7, 0)];
    assert_eq!(
        infill_spans(&abcdef(), &spans, MASK, false),
        [BOS, MASK, A, B, C, MASK, D, E, F, MASK, EOS]
    );
    assert_eq!(infill_spans(&abcdef(), &spans, MASK, true), abcdef());
}

/// Poisson(3) cut off at 17 and renormalised, by hand: 3^k / k! over its sum.
fn truncated_poisson3() -> Vec<f64> {
    let factorial = |k: i32| (1..=k).map(f64::from).product::<f64>();
    let w: Vec<f64> = (0..=17).map(|k| 3f64.powi(k) / factorial(k)).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

#[test]
fn span_length_pmf_is_the_truncated_poisson() {
    let pmf = span_length_pmf(3.0);
    assert_eq!(pmf.len(), MAX_SPAN + 1);
    for (got, want) in pmf.iter().zip(truncated_poisson3()) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // The cut-off moves P(0) from e^-3 = 0.0497870684 by only 1.8e-10.
    assert!((pmf[0] - (-3f64).exp()).abs() < 1e-9);
}

#[test]
fn span_length_statistics() {
    // About 10^4 draws: a budget of 30,000 over E[l] = 3. All but the last are untrimmed draws.
    let mut lengths = span_lengths(30_000, 3.0, &mut rng(1));
    assert_eq!(lengths.iter().sum::<usize>(), 30_000);
    lengths.pop();
    let m = lengths.len() as f64;
    assert!(m > 9_000.0);
    let pmf = truncated_poisson3();
    let p0 = pmf[0]; // 0.0497870685
    let mean: f64 = pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum(); // 2.99999995
    let zeros = lengths.iter().filter(|&&l| l == 0).count() as f64 / m;
    let avg = lengths.iter().sum::<usize>() as f64 / m;
    // sd of the share of zeros: sqrt(p0 (1 - p0) / m) = 0.0022; of the mean: sqrt(3 / m) = 0.018.
    assert!(
        (zeros - p0).abs() < 5.0 * (p0 * (1.0 - p0) / m).sqrt(),
        "P(l = 0) = {zeros}"
    );
    assert!((avg - mean).abs() < 5.0 * (3.0 / m).sqrt(), "E[l] = {avg}");
    assert!(lengths.iter().all(|&l| l <= 17));
}

#[test]
fn span_lengths_are_cut_off_at_17() {
    // With λ = 30 the weights 30^k/k! still grow at k = 17, so 17 is the likeliest length:
    // w16/w17 = 17/30, w15/w17 = (17·16)/30², ... Its probability is 1 / Σ_j Π_{i<j} (17-i)/30.
    let mut ratio = 1.0;
    let mut total = 1.0;
    for i in 0..17 {
        ratio *= (17 - i) as f64 / 30.0;
        total += ratio;
    }
    let p17 = 1.0 / total; // 0.4673

    // One long run of about 62,600 draws (mean length 15.98); the last, trimmed one is dropped.
    let mut draws = span_lengths(1_000_000, 30.0, &mut rng(2));
    assert!(draws.iter().all(|&l| l <= 17));
    draws.pop();
    let m = draws.len() as f64;
    let share = count(&draws, 17) as f64 / m;
    // sd sqrt(p17 (1 - p17) / m) = 0.002
    assert!(
        (share - p17).abs() < 5.0 * (p17 * (1.0 - p17) / m).sqrt(),
        "P(17) = {share}, expected {p17}"
    );
}

#[test]
fn span_lengths_meet_the_budget_exactly() {
    let mut r = rng(3);
    assert!(span_lengths(0, 3.0, &mut r).is_empty());
    for budget in [1, 2, 5, 300] {
        for _ in 0..200 {
            let lengths = span_lengths(budget, 3.0, &mut r);
            assert_eq!(lengths.iter().sum::<usize>(), budget);
            assert!(*lengths.last().unwrap() > 0);
        }
    }
}

#[test]
fn infilling_1000_tokens_at_p_03() {
    // Spec: B = 300 over E[l] = 3 gives about 100 spans (renewal theory: B/μ + (σ² + μ²)/(2μ²)
    // = 100.67), within ±10%.
    let mut r = rng(4);
    let draws = 1000;
    let spans: usize = (0..draws).map(|_| span_lengths(300, 3.0, &mut r).len()).sum();
    let spans = spans as f64 / draws as f64;
    assert!((90.0..=110.0).contains(&spans), "{spans} spans");

    // The spans overlap (distinct starts, as in fairseq), so fewer tokens are covered and fewer
    // masks survive. By hand: the m spans of length ≥ 1 have mean μ1 = 3/(1 - p0), so
    // m = 300/μ1 = 95.0 and z = m·p0/(1 - p0) = 5.0 spans are empty. A position is a start with
    // chance ρ = m/1000; it is left alone if no position d before it starts a span longer than d:
    // Π_{d≥0} (1 - ρ·P(l > d | l ≥ 1)). A start survives as a mask if it lies in no other span's
    // tail (the same product over d ≥ 1). Hence covered = 267.1 and masks = 81.9; a separate
    // Python run of fairseq's loop gave 266.9 and 82.5. Tolerance: 3%, above the approximation
    // and the sampling sd of the mean over 1000 documents (about 0.2 tokens).
    let pmf = truncated_poisson3();
    let longer = |d: usize| pmf[d + 1..].iter().sum::<f64>() / (1.0 - pmf[0]);
    let m = 300.0 * (1.0 - pmf[0]) / 3.0;
    let rho = m / 1000.0;
    let alone_from = |d0: usize| (d0..17).map(|d| 1.0 - rho * longer(d)).product::<f64>();
    let want_covered = 1000.0 * (1.0 - alone_from(0));
    let want_masks = m * alone_from(1) + m * pmf[0] / (1.0 - pmf[0]);

    let doc = numbered(1000);
    let (mut covered, mut masks) = (0, 0);
    for _ in 0..draws {
        let out = text_infilling(&doc, 0.3, 3.0, false, MASK, &mut r);
        let survivors = out.iter().filter(|&&t| t >= 1000).count();
        assert!(1000 - survivors <= 300, "never more than B = 300 tokens removed");
        covered += 1000 - survivors;
        masks += count(&out, MASK);
        let kept = text_infilling(&doc, 0.3, 3.0, true, MASK, &mut r);
        assert_eq!(kept.len(), doc.len(), "keep_length never changes the length");
        assert!(count(&kept, MASK) <= 300);
    }
    let covered = covered as f64 / draws as f64;
    let masks = masks as f64 / draws as f64;
    assert!(
        (covered / want_covered - 1.0).abs() < 0.03,
        "{covered} covered, expected {want_covered}"
    );
    assert!(
        (masks / want_masks - 1.0).abs() < 0.03,
        "{masks} masks, expected {want_masks}"
    );
}

#[test]
fn token_masking_and_deletion_counts() {
    let doc = numbered(1000);
    let mut r = rng(5);
    for _ in 0..20 {
        let masked = mask_tokens(&doc, 0.3, MASK, &mut r);
        assert_eq!(masked.len(), doc.len());
        assert_eq!(count(&masked, MASK), 300, "exactly ⌈0.3·1000⌉ masks");
        assert!(masked.iter().zip(&doc).all(|(&m, &d)| m == d || m == MASK));
        let deleted = delete_tokens(&doc, 0.3, &mut r);
        assert_eq!(deleted.len(), 2 + 1000 - 300);
        assert!(
            deleted.windows(2).all(|w| w[0] < w[1] || w[1] == EOS),
            "survivors keep their order"
        );
    }
}

#[test]
fn mask_random_one_leaves_no_mask_only_random_ids() {
    let sents = sentences(10, 100);
    let original = frame(&sents, &ids());
    let mut r = rng(6);
    let tokens = BartNoise {
        mask_random: 1.0,
        ..noise(Masking::Tokens)
    };
    let out = corrupt(&sents, &tokens, &ids(), &mut r).unwrap();
    assert_eq!(count(&out, MASK), 0);
    let changed: Vec<usize> = out
        .iter()
        .zip(&original)
        .filter(|(o, d)| o != d)
        .map(|(&o, _)| o)
        .collect();
    assert_eq!(changed.len(), 300);
    assert!(changed.iter().all(|t| (100..110).contains(t)));
    let spans = BartNoise {
        mask_random: 1.0,
        insert: 0.1,
        ..BartNoise::default()
    };
    let out = corrupt(&sents, &spans, &ids(), &mut r).unwrap();
    assert_eq!(count(&out, MASK), 0);
    assert!(out.iter().any(|t| (100..110).contains(t)));
}

#[test]
fn insertion_adds_masks_inside_the_body() {
    let doc = numbered(100);
    let mut r = rng(7);
    for _ in 0..50 {
        let out = insert_tokens(&doc, 0.1, MASK, &mut r);
        assert_eq!(out.len(), doc.len() + 10);
        assert_eq!(count(&out, MASK), 10);
        assert_eq!((out[0], out[out.len() - 1]), (BOS, EOS));
        let without: Vec<usize> = out.into_iter().filter(|&t| t != MASK).collect();
        assert_eq!(without, doc);
    }
}

#[test]
fn a_rotated_body_is_a_cyclic_shift() {
    let doc = numbered(30);
    let body = &doc[1..31];
    let mut r = rng(8);
    let mut moved = 0;
    for _ in 0..200 {
        let out = random_rotation(&doc, &mut r);
        assert_eq!((out[0], out[31]), (BOS, EOS));
        let shift = out[1] - 1000;
        let cycled: Vec<usize> = (0..30).map(|i| body[(i + shift) % 30]).collect();
        assert_eq!(&out[1..31], &cycled[..]);
        moved += usize::from(shift != 0);
    }
    // Offsets 2 to 30 move the body; 1 and 31 do not: 29/31 of 200 draws, about 187.
    assert!(moved > 150, "{moved}");
}

#[test]
fn permutation_keeps_the_sentences_and_p1_changes_the_order() {
    let sents = sentences(5, 3);
    let mut sorted = sents.clone();
    sorted.sort();
    let mut r = rng(9);
    let mut unchanged = 0;
    for _ in 0..1000 {
        let out = permute_sentences(&sents, 1.0, &mut r);
        let mut multiset = out.clone();
        multiset.sort();
        assert_eq!(multiset, sorted);
        unchanged += usize::from(out == sents);
    }
    // A full shuffle of 5 keeps the order with chance 1/120: 8.3 of 1000, sd 2.9; 5 sd: 23.
    assert!(unchanged <= 23, "{unchanged} of 1000 unchanged");
    for _ in 0..100 {
        assert_eq!(permute_sentences(&sents, 0.0, &mut r), sents);
        // ⌈0.4·5⌉ = 2 sentences are chosen, so at most 2 leave their place.
        let out = permute_sentences(&sents, 0.4, &mut r);
        assert!(out.iter().zip(&sents).filter(|(o, s)| o != s).count() <= 2);
    }
}

#[test]
fn bos_and_eos_stay_first_and_last() {
    let mut r = rng(10);
    let maskings = [
        Masking::Off,
        Masking::Tokens,
        Masking::Delete,
        Masking::Spans {
            lambda: 3.0,
            keep_length: false,
        },
        Masking::Spans {
            lambda: 3.0,
            keep_length: true,
        },
    ];
    for masking in maskings {
        for len in [1, 2, 7] {
            let sents = sentences(4, len);
            let all = BartNoise {
                masking,
                p: 0.5,
                mask_random: 0.3,
                permute: 1.0,
                insert: 0.3,
                rotate: 1.0,
            };
            for _ in 0..100 {
                let out = corrupt(&sents, &all, &ids(), &mut r).unwrap();
                assert_eq!((out[0], out[out.len() - 1]), (BOS, EOS));
                assert_eq!(count(&out, BOS) + count(&out, EOS), 2);
            }
        }
    }
}

#[test]
fn edge_cases() {
    let mut r = rng(11);
    // n = 0: nothing is corrupted, whatever the settings.
    let every = BartNoise {
        p: 1.0,
        insert: 1.0,
        rotate: 1.0,
        mask_random: 1.0,
        ..BartNoise::default()
    };
    assert_eq!(corrupt(&[], &every, &ids(), &mut r).unwrap(), [BOS, EOS]);
    assert_eq!(text_infilling(&[BOS, EOS], 0.3, 3.0, false, MASK, &mut r), [BOS, EOS]);
    // n = 1: ⌈0.3·1⌉ = 1, so the one token is always corrupted.
    assert_eq!(share_count(0.3, 1), 1);
    assert_eq!(mask_tokens(&[BOS, A, EOS], 0.3, MASK, &mut r), [BOS, MASK, EOS]);
    assert_eq!(delete_tokens(&[BOS, A, EOS], 0.3, &mut r), [BOS, EOS]);
    for _ in 0..50 {
        let out = text_infilling(&[BOS, A, EOS], 0.3, 3.0, false, MASK, &mut r);
        assert!(!out.contains(&A) && count(&out, MASK) == out.len() - 2 && out.len() >= 3);
    }
    // ⌈p·n⌉ in exact arithmetic: 0.07·100 is 7.000000000000001 in f64.
    assert_eq!(share_count(0.07, 100), 7);
    assert_eq!(share_count(0.3, 1000), 300);
    assert_eq!(share_count(0.3, 0), 0);
    assert_eq!(share_count(0.31, 10), 4);
}

#[test]
fn bad_settings_are_errors_that_name_the_setting() {
    let cases = [
        (
            BartNoise {
                p: -0.1,
                ..BartNoise::default()
            },
            "p = -0.1",
        ),
        (
            BartNoise {
                p: 1.5,
                ..BartNoise::default()
            },
            "p = 1.5",
        ),
        (
            BartNoise {
                p: f64::NAN,
                ..BartNoise::default()
            },
            "p = NaN",
        ),
        (
            BartNoise {
                mask_random: 1.1,
                ..BartNoise::default()
            },
            "mask_random = 1.1",
        ),
        (
            BartNoise {
                permute: -1.0,
                ..BartNoise::default()
            },
            "permute = -1",
        ),
        (
            BartNoise {
                insert: 2.0,
                ..BartNoise::default()
            },
            "insert = 2",
        ),
        (
            BartNoise {
                rotate: f64::NAN,
                ..BartNoise::default()
            },
            "rotate = NaN",
        ),
        (
            noise(Masking::Spans {
                lambda: 0.0,
                keep_length: false,
            }),
            "lambda = 0",
        ),
        (
            noise(Masking::Spans {
                lambda: f64::NAN,
                keep_length: false,
            }),
            "lambda = NaN",
        ),
        (
            noise(Masking::Spans {
                lambda: f64::INFINITY,
                keep_length: false,
            }),
            "lambda = inf",
        ),
    ];
    for (settings, name) in cases {
        let e = settings.validate().unwrap_err();
        assert!(e.contains(name), "{e}");
        assert_eq!(
            corrupt(&sentences(2, 2), &settings, &ids(), &mut rng(0)).unwrap_err(),
            e
        );
    }
    assert_eq!(
        BartNoise::default(),
        BartNoise {
            p: 0.3,
            masking: Masking::Spans {
                lambda: 3.0,
                keep_length: false
            },
            mask_random: 0.0,
            permute: 1.0,
            insert: 0.0,
            rotate: 0.0
        }
    );
    assert!(BartNoise::default().validate().is_ok());
}

#[test]
fn bad_input_is_an_error_that_names_the_sentence() {
    let d = BartNoise::default();
    let e = corrupt(&[vec![A], vec![], vec![B]], &d, &ids(), &mut rng(0)).unwrap_err();
    assert!(e.contains("sentence 1") && e.contains("empty"), "{e}");
    let e = corrupt(&[vec![A], vec![B], vec![C, MASK]], &d, &ids(), &mut rng(0)).unwrap_err();
    assert!(e.contains("sentence 2") && e.contains("special id 2"), "{e}");
    let no_random = NoiseIds {
        random: vec![],
        ..ids()
    };
    let e = corrupt(
        &[vec![A]],
        &BartNoise { mask_random: 0.1, ..d },
        &no_random,
        &mut rng(0),
    )
    .unwrap_err();
    assert!(e.contains("mask_random"), "{e}");
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let sents = sentences(8, 25);
    let d = BartNoise {
        insert: 0.1,
        rotate: 0.5,
        mask_random: 0.1,
        ..BartNoise::default()
    };
    let run = |seed| corrupt(&sents, &d, &ids(), &mut rng(seed)).unwrap();
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn noise_works_for_both_tokenizers() {
    let text = "To be, or not to be: that is the question. Whether 'tis nobler in the mind to suffer!\n\
                The slings and arrows of [MASK] fortune? Or to take [CLS] arms against a [SEP] sea.\n";
    for tok in [
        Tokenizer::Char(CharTokenizer::from_text(text)),
        Tokenizer::Bpe(BpeTokenizer::train(text, 256 + 40 + 5)),
    ] {
        let s = tok.specials();
        // Ordinary text, even the literal names of the specials, never encodes to a special id.
        for probe in [text, "[MASK]", "[CLS]", "[SEP]", "[SEP] [MASK][CLS]"] {
            assert!(
                tok.encode(probe).iter().all(|&id| !s.contains(id)),
                "{}: {probe}",
                tok.kind()
            );
        }
        let ids = NoiseIds {
            bos: tok.special("[CLS]"),
            eos: tok.special("[SEP]"),
            mask: tok.special("[MASK]"),
            random: (0..tok.vocab_size()).filter(|&id| !s.contains(id)).collect(),
            spacing: Vec::new(),
        };
        let sents: Vec<Vec<usize>> = split_sentences(text).iter().map(|t| tok.encode(t)).collect();
        assert_eq!(tok.decode(&frame(&sents, &ids)), format!("[CLS]{text}[SEP]"));
        let d = BartNoise {
            mask_random: 0.1,
            insert: 0.05,
            rotate: 0.5,
            ..BartNoise::default()
        };
        let mut r = rng(12);
        for _ in 0..20 {
            let out = corrupt(&sents, &d, &ids, &mut r).unwrap();
            assert_eq!((out[0], out[out.len() - 1]), (ids.bos, ids.eos));
            let inside = &out[1..out.len() - 1];
            assert!(inside
                .iter()
                .all(|&id| id == ids.mask || (!s.contains(id) && id < tok.vocab_size())));
            assert!(count(&out, ids.mask) > 0);
        }
    }
}
