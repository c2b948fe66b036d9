//! Whole-word text infilling (`src/data/whole_words.rs`): word starts, word spans as token
//! spans and the infilled document, worked by hand; the share hidden on 10^3 words against the
//! figure derived by hand for tokens; gaps that never split a word; errors.

use microlm::data::bart_noise::{corrupt, infill_spans, BartNoise, Masking, NoiseIds};
use microlm::data::whole_words::{whole_word_spans, word_spans_to_tokens, word_starts, Spacing};
use microlm::objectives::Noise;
use rand::rngs::StdRng;
use rand::SeedableRng;

const BOS: usize = 0;
const EOS: usize = 1;
const MASK: usize = 2;
const SP: usize = 3; // " "
const LEAD: usize = 4; // a BPE-like " x": begins with a space
const A: usize = 10;
const B: usize = 11;
const C: usize = 12;
const D: usize = 13;
const E: usize = 14;
const F: usize = 15;

fn ids() -> NoiseIds {
    let mut spacing = vec![Spacing::of("x"); 2000];
    spacing[SP] = Spacing::of(" ");
    spacing[LEAD] = Spacing::of(" x");
    NoiseIds {
        bos: BOS,
        eos: EOS,
        mask: MASK,
        random: vec![A, B],
        spacing,
    }
}

/// `<s> A B ␣ C D ␣ E F </s>`: the words `AB␣` (1..4), `CD␣` (4..7) and `EF` (7..9).
fn three_words() -> Vec<usize> {
    vec![BOS, A, B, SP, C, D, SP, E, F, EOS]
}

#[test]
fn spacing_of_texts() {
    assert_eq!(
        Spacing::of(" "),
        Spacing {
            blank: true,
            leading: true,
            trailing: true
        }
    );
    assert_eq!(
        Spacing::of("\n"),
        Spacing {
            blank: true,
            leading: true,
            trailing: true
        }
    );
    assert_eq!(
        Spacing::of(" the"),
        Spacing {
            blank: false,
            leading: true,
            trailing: false
        }
    );
    assert_eq!(Spacing::of("a"), Spacing::default());
    assert_eq!(Spacing::of(""), Spacing::default());
}

#[test]
fn word_starts_worked_by_hand() {
    assert_eq!(word_starts(&three_words(), &ids().spacing).unwrap(), [1, 4, 7]);
    // A leading space and a double space start nothing; the first letter after them does.
    assert_eq!(
        word_starts(&[BOS, SP, A, SP, SP, B, EOS], &ids().spacing).unwrap(),
        [2, 5]
    );
    // A token that carries its leading space starts a word; the letter after it does not.
    assert_eq!(word_starts(&[BOS, A, LEAD, B, EOS], &ids().spacing).unwrap(), [1, 2]);
    assert_eq!(
        word_starts(&[BOS, SP, EOS], &ids().spacing).unwrap(),
        Vec::<usize>::new()
    );
}

#[test]
fn word_spans_become_token_spans_worked_by_hand() {
    let (starts, eos) = ([1, 4, 7], 9);
    let spans = [(1, 1), (0, 2), (2, 5), (3, 0), (1, 0)];
    // CD␣ = 4..7; AB␣CD␣ = 1..7; EF and beyond stops at EOS = 7..9; empty before EOS; empty before CD␣.
    let want = [(4, 3), (1, 6), (7, 2), (9, 0), (4, 0)];
    assert_eq!(word_spans_to_tokens(&starts, eos, &spans), want);
    // The middle word as one mask; two words from the first; an empty span before the last.
    let doc = three_words();
    assert_eq!(
        infill_spans(&doc, &[(4, 3)], MASK, false),
        [BOS, A, B, SP, MASK, E, F, EOS]
    );
    assert_eq!(infill_spans(&doc, &[(1, 6)], MASK, false), [BOS, MASK, E, F, EOS]);
    assert_eq!(
        infill_spans(&doc, &[(7, 0)], MASK, false),
        [BOS, A, B, SP, C, D, SP, MASK, E, F, EOS]
    );
}

/// 1,000 words of four letters and a space (the last without), each token distinct, framed.
fn thousand_words() -> (Vec<usize>, NoiseIds) {
    let mut doc = vec![BOS];
    for w in 0..1000 {
        doc.extend((0..4).map(|t| 1000 + 4 * w + t));
        if w < 999 {
            doc.push(SP);
        }
    }
    doc.push(EOS);
    let mut ids = ids();
    ids.spacing = vec![Spacing::default(); 5000];
    ids.spacing[SP] = Spacing::of(" ");
    (doc, ids)
}

#[test]
fn infilling_1000_words_hides_whole_words_at_the_tokens_rate() {
    // With words as the unit, the budget is ceil(0.3 * 1000) = 300 words and the spans are
    // Poisson(3) words, so the words covered are what tokens_covered derives by hand for 1,000
    // tokens in tests/bart_noise.rs (267.1 of 1,000; fairseq's loop in Python: 266.9): 26.7%
    // of the words, and so of the letters, since every word has four. Tolerance: 3%.
    let (doc, ids) = thousand_words();
    let mut rng = StdRng::seed_from_u64(5);
    let draws = 300;
    let mut covered = 0;
    for _ in 0..draws {
        let spans = whole_word_spans(&doc, 0.3, 3.0, &ids.spacing, &mut rng).unwrap();
        let out = infill_spans(&doc, &spans, MASK, false);
        let kept: Vec<usize> = out.iter().copied().filter(|&t| t >= 1000).collect();
        // A word survives whole or not at all: its letters are kept four by four, in order.
        assert_eq!(kept.len() % 4, 0);
        for word in kept.chunks(4) {
            assert_eq!(word[0] % 4, 0, "a word lost its first letter: {word:?}");
            assert_eq!(word, [word[0], word[0] + 1, word[0] + 2, word[0] + 3]);
        }
        covered += 4000 - kept.len();
    }
    let share = covered as f64 / draws as f64 / 4000.0;
    assert!((share / 0.2671 - 1.0).abs() < 0.03, "{share} of the letters hidden");
}

#[test]
fn corrupt_with_words_and_its_errors() {
    let noise = BartNoise {
        masking: Masking::Words {
            lambda: 3.0,
            keep_length: true,
        },
        permute: 0.0,
        ..BartNoise::default()
    };
    // keep_length: every token of a hidden word becomes a mask; the length never changes.
    let sentence = three_words()[1..9].to_vec();
    let out = corrupt(&[sentence], &noise, &ids(), &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(out.len(), 10);
    let hidden: Vec<usize> = (1..9).filter(|&i| out[i] == MASK).collect();
    assert!(
        [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8]].contains(&hidden),
        "ceil(0.3 * 3) = 1 word, whole: {hidden:?}"
    );
    // An id the spacing does not know is an error naming it.
    let few = NoiseIds {
        spacing: vec![Spacing::default(); 12],
        ..ids()
    };
    let e = corrupt(&[vec![A, E]], &noise, &few, &mut StdRng::seed_from_u64(1)).unwrap_err();
    assert!(e.contains("id 14") && e.contains("spacing"), "{e}");
    // The checkpoint's metadata keeps the masking.
    let noise = Noise::Bart(noise);
    assert_eq!(Noise::from_metadata(&noise.to_metadata()).unwrap(), noise);
}
