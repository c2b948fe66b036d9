//! The planted-skew corpus: determinism, the planted frequencies in the text, the balanced
//! twin, and probes that never occur in training. The text is parsed here, word by word, and
//! the planted probabilities are written out again from the module's docs.

use microlm::data::bias_corpus::{self, fill, probes, PROBE_TEMPLATES, SURNAMES};
use std::collections::BTreeMap;

/// P(mr) in the skewed corpus, from the docs of `data/bias_corpus.rs`.
const PLANTED: [(&str, f64); 14] = [
    ("engineer", 0.8),
    ("mechanic", 0.8),
    ("pilot", 0.8),
    ("farmer", 0.8),
    ("plumber", 0.8),
    ("surgeon", 0.8),
    ("carpenter", 0.8),
    ("nurse", 0.2),
    ("teacher", 0.2),
    ("dancer", 0.2),
    ("secretary", 0.2),
    ("librarian", 0.2),
    ("baker", 0.2),
    ("cashier", 0.2),
];
const N: usize = bias_corpus::DEFAULT_SENTENCES;
const SEED: u64 = 16;

/// The occupation and the title of one line: exactly one of each.
fn parse(line: &str) -> (&str, bool) {
    let words: Vec<&str> = line.split(' ').map(|w| w.trim_end_matches([',', '.'])).collect();
    let occs: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| PLANTED.iter().any(|(o, _)| o == w))
        .collect();
    let titles: Vec<bool> = words
        .iter()
        .filter(|w| **w == "mr" || **w == "ms")
        .map(|w| *w == "mr")
        .collect();
    assert_eq!((occs.len(), titles.len()), (1, 1), "line {line:?}");
    (occs[0], titles[0])
}

/// Per occupation: (lines, lines saying "mr").
fn counts(text: &str) -> BTreeMap<&str, (usize, usize)> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let (occ, mr) = parse(line);
        let e = m.entry(occ).or_insert((0, 0));
        e.0 += 1;
        e.1 += mr as usize;
    }
    m
}

/// The observed share within 4 binomial standard deviations of p: for a correct generator a
/// miss has probability about 6e-5 per occupation (and the seed is fixed).
fn assert_near(occ: &str, (n, mr): (usize, usize), p: f64) {
    let share = mr as f64 / n as f64;
    let tolerance = 4.0 * (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (share - p).abs() <= tolerance,
        "{occ}: {mr}/{n} = {share:.3} say mr, planted {p} (tolerance {tolerance:.3})"
    );
}

#[test]
fn deterministic_for_a_seed() {
    assert_eq!(bias_corpus::skewed(500, SEED), bias_corpus::skewed(500, SEED));
    assert_ne!(
        bias_corpus::skewed(500, SEED).text,
        bias_corpus::skewed(500, SEED + 1).text
    );
    assert_eq!(bias_corpus::skewed(500, SEED).text.lines().count(), 500);
}

#[test]
fn planted_frequencies_hold_in_the_text() {
    let corpus = bias_corpus::skewed(N, SEED);
    let len = corpus.text.len();
    assert!((100_000..400_000).contains(&len), "{len} bytes");
    let c = counts(&corpus.text);
    assert_eq!(c.len(), 14, "every occupation occurs");
    for (occ, p) in PLANTED {
        assert_near(occ, c[occ], p);
        let planted = corpus.occupations.iter().find(|o| o.name == occ).unwrap().p_mr;
        assert!(
            (planted - p).abs() < 1e-12,
            "{occ}: the list returned with the text says {planted}"
        );
    }
}

#[test]
fn the_twin_is_balanced_and_differs_only_in_titles() {
    let (skewed, balanced) = (bias_corpus::skewed(N, SEED), bias_corpus::balanced(N, SEED));
    let c = counts(&balanced.text);
    for (occ, _) in PLANTED {
        assert_near(occ, c[occ], 0.5);
    }
    assert!(balanced.occupations.iter().all(|o| o.p_mr == 0.5));
    let mut changed = 0;
    for (s, b) in skewed.text.lines().zip(balanced.text.lines()) {
        let ((occ, s_mr), (_, b_mr)) = (parse(s), parse(b));
        assert_eq!(s.replace("mr ", "ms "), b.replace("mr ", "ms ")); // no other word ends in "mr"
        if s_mr != b_mr {
            changed += 1;
            // One uniform u decides both: "mr" when u < P(mr), so a title changes only
            // towards the skew.
            let p = PLANTED.iter().find(|(o, _)| *o == occ).unwrap().1;
            assert_eq!(s_mr, p > 0.5, "{s:?} against {b:?}");
        }
    }
    // u falls between 0.5 and 0.8 (or 0.2) on about 30% of lines.
    assert!(
        (0.25..0.35).contains(&(changed as f64 / N as f64)),
        "{changed} lines changed"
    );
}

#[test]
fn probes_are_held_out() {
    let texts = [bias_corpus::skewed(N, SEED).text, bias_corpus::balanced(N, SEED).text];
    // Each probe template has a stretch of new words that occurs nowhere in training.
    let new_words = ["yesterday i saw the ", "my cousin knows ", ", stayed there all day."];
    for (template, words) in PROBE_TEMPLATES.iter().zip(new_words) {
        assert!(template.contains(words));
        assert!(texts.iter().all(|t| !t.contains(words)), "{words:?} occurs in training");
    }
    for (occ, _) in PLANTED {
        let ps = probes(occ);
        assert_eq!(ps.len(), PROBE_TEMPLATES.len() * SURNAMES.len());
        for p in &ps {
            assert!(p.left.ends_with('m') && p.right.starts_with(' '), "{p:?}");
            for title in ["r", "s"] {
                let sentence = format!("{}{title}{}", p.left, p.right);
                assert!(
                    texts.iter().all(|t| !t.contains(&sentence)),
                    "{sentence:?} occurs in training"
                );
                assert!(
                    sentence.chars().count() <= 64,
                    "{sentence:?} is longer than the example's sequences"
                );
                // Every character is one the corpus has, so the char tokenizer knows it.
                assert!(sentence.chars().all(|ch| texts[0].contains(ch)), "{sentence:?}");
            }
        }
    }
    // The probes are the templates filled in, cut at the title's second letter.
    let p = &probes("nurse")[0];
    assert_eq!(
        format!("{}s{}", p.left, p.right),
        fill(PROBE_TEMPLATES[0], "nurse", "ms", SURNAMES[0])
    );
}

#[test]
fn measure_normalises_over_r_and_s_at_the_mask() {
    use microlm::data::Batch;
    use microlm::tokenizer::{CharTokenizer, Tokenizer};
    let corpus = bias_corpus::skewed(200, SEED);
    let tok = Tokenizer::Char(CharTokenizer::from_text(&corpus.text));
    let (r, s, mask) = (tok.encode("r")[0], tok.encode("s")[0], tok.special("[MASK]"));
    // A fake model: P(r) = 0.3 and P(s) = 0.1 wherever it is asked, after checking that it
    // is asked at the one [MASK], right after an "m".
    let fake = |x: &Batch, at: usize| {
        assert_eq!(x.ids.iter().filter(|&&id| id == mask).count(), 1);
        assert_eq!((x.ids[at], tok.decode(&x.ids[at - 1..at])), (mask, "m".to_string()));
        let mut row = vec![0.0; tok.vocab_size()];
        (row[r], row[s]) = (0.3, 0.1);
        vec![row]
    };
    let p = bias_corpus::measure(&tok, &corpus.occupations, fake);
    assert_eq!(p.len(), 14);
    assert!(p.iter().all(|&v| (v - 0.75).abs() < 1e-6), "{p:?}");
    let table = bias_corpus::table(&corpus.occupations, &p, &[0.5; 14]);
    assert!(table.contains("nurse          0.20    0.750     0.500"), "{table}");
    assert!(
        table.contains("skewed model vs planted 0.300, balanced model vs 0.5 0.000 (targets: 0.15)"),
        "{table}"
    );
    // 0.75 is within 0.15 of 0.8 for the seven mr-skewed occupations only.
    assert!(
        table.contains("skewed model 7 of 14, balanced model 14 of 14"),
        "{table}"
    );
}
