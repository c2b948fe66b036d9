//! The acceptability task (real line or corrupted), the logistic-regression baselines, the
//! seed statistics and tables of a comparison, and the learning curve's error bars. Every
//! expected value is worked out by hand or is an invariant the corruption must keep.

use microlm::data::acceptability::{acceptability_task, corrupt, held_out, word_spans, Corruption, FrequentWords};
use microlm::data::labelled::{LabelledText, TextTask};
use microlm::learning_curve::{learning_curve_svg, Series};
use microlm::recipe::baselines::{
    bag_of_bigrams, bag_of_bigrams_accuracy, bag_of_characters, bag_of_characters_accuracy, Logistic,
};
use microlm::recipe::comparison::{Comparison, Curve, SeedStats};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn words(line: &str) -> Vec<&str> {
    word_spans(line).into_iter().map(|(s, e)| &line[s..e]).collect()
}

fn sorted_chars(s: &str) -> Vec<char> {
    let mut c: Vec<char> = s.chars().collect();
    c.sort();
    c
}

#[test]
fn word_spans_are_runs_of_ascii_letters() {
    assert_eq!(word_spans("O, Romeo's  end!"), [(0, 1), (3, 8), (9, 10), (12, 15)]);
    assert_eq!(word_spans(""), []);
    assert_eq!(word_spans("-- ."), []);
    assert_eq!(words("fair and virtuous?"), ["fair", "and", "virtuous"]);
}

const LINE: &str = "And you, good sir! Pray, have you not a daughter";

#[test]
fn a_swap_trades_two_different_lowercase_words_and_keeps_every_character() {
    let none = FrequentWords::default();
    for seed in 0..50 {
        let bad = corrupt(LINE, Corruption::Swap, 1, &none, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_eq!(sorted_chars(&bad), sorted_chars(LINE), "{bad}");
        let (a, b) = (words(LINE), words(&bad));
        let moved: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(moved.len(), 2, "{bad}");
        let (i, j) = (moved[0], moved[1]);
        assert_eq!((a[i], a[j]), (b[j], b[i]), "{bad}");
        assert!(
            a[i].bytes().all(|c| c.is_ascii_lowercase()),
            "{bad}: capitals never move"
        );
    }
    // One lowercase word, or two equal ones: nothing to swap.
    assert_eq!(
        corrupt(
            "And Romeo too",
            Corruption::Swap,
            1,
            &none,
            &mut StdRng::seed_from_u64(0)
        ),
        None
    );
    assert_eq!(
        corrupt("the, the", Corruption::Swap, 1, &none, &mut StdRng::seed_from_u64(0)),
        None
    );
}

#[test]
fn a_shuffle_scrambles_the_inner_letters_of_distinct_words_and_keeps_their_ends() {
    let none = FrequentWords::default();
    // Eligible: "have" and "daughter" (lowercase, four letters or more, inner letters not all
    // equal: "good" has only "oo" inside, "Pray" a capital). Asking for 5 scrambles both.
    for (edits, want) in [(1, 1), (2, 2), (5, 2)] {
        for seed in 0..20 {
            let bad = corrupt(
                LINE,
                Corruption::Shuffle,
                edits,
                &none,
                &mut StdRng::seed_from_u64(seed),
            )
            .unwrap();
            assert_eq!(bad.len(), LINE.len());
            let (a, b) = (words(LINE), words(&bad));
            let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            assert_eq!(changed.len(), want, "{edits}: {bad}");
            for i in changed {
                assert!(["have", "daughter"].contains(&a[i]), "{bad}");
                assert_eq!(sorted_chars(a[i]), sorted_chars(b[i]));
                assert_eq!(a[i].as_bytes()[0], b[i].as_bytes()[0]);
                assert_eq!(a[i].as_bytes()[a[i].len() - 1], b[i].as_bytes()[b[i].len() - 1]);
            }
        }
    }
    assert_eq!(
        corrupt(
            "I see a deed",
            Corruption::Shuffle,
            1,
            &none,
            &mut StdRng::seed_from_u64(0)
        ),
        None
    );
}

#[test]
fn frequent_words_count_lowercase_words_by_length_and_draw_by_count() {
    let words = FrequentWords::count("the cat, the dog. The cat and the end; a cat", 2);
    // "the" x3 (the capital "The" is not lowercase), "cat" x3; "dog", "and", "end", "a" once.
    assert_eq!(words.by_length.len(), 1);
    assert_eq!(words.by_length[&3], [("cat".to_string(), 3), ("the".to_string(), 3)]);
    let words = FrequentWords::count(&"aa bb bb bb ".repeat(10), 1);
    let rng = &mut StdRng::seed_from_u64(5);
    let n = 20_000;
    let bb = (0..n).filter(|_| words.draw(2, "cc", rng) == Some("bb")).count() as f64 / n as f64;
    assert!((bb - 0.75).abs() < 0.015, "P(bb) = {bb}, want 3/4");
    assert_eq!(words.draw(2, "bb", rng), Some("aa"), "never the word replaced");
    assert_eq!(words.draw(3, "xyz", rng), None);
}

#[test]
fn a_replacement_puts_a_frequent_word_of_the_same_length_in_one_place() {
    let words = FrequentWords::count(&"sir lord good king ".repeat(10), 5);
    for seed in 0..30 {
        let bad = corrupt(LINE, Corruption::Replace, 1, &words, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_eq!(bad.len(), LINE.len());
        let (a, b) = (words_of(LINE), words_of(&bad));
        let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(changed.len(), 1, "{bad}");
        assert!(
            ["sir", "lord", "good", "king"].contains(&b[changed[0]].as_str()),
            "{bad}"
        );
    }
}

fn words_of(line: &str) -> Vec<String> {
    words(line).into_iter().map(str::to_string).collect()
}

/// A corpus of 400 numbered lines; the last 10% of its characters are held out.
fn corpus() -> String {
    (0..400)
        .map(|i| format!("line {i:03} where the good lord walks home\n"))
        .collect()
}

#[test]
fn the_task_pairs_each_held_out_line_with_its_corruption_in_one_split() {
    let text = corpus();
    let held: Vec<&str> = held_out(&text).lines().filter(|l| l.len() >= 20).collect();
    let task = acceptability_task(&text, &[Corruption::Shuffle], 2, 0).unwrap();
    assert_eq!(task.names, ["real", "corrupted"]);
    let total = task.train.len() + task.val.len() + task.test.len();
    assert_eq!(total, 2 * held.len(), "every held-out line once real, once corrupted");
    for split in [&task.train, &task.val, &task.test] {
        assert_eq!(task.class_counts(split), [split.len() / 2, split.len() / 2]);
        for pair in split.chunks(2) {
            assert_eq!((pair[0].class, pair[1].class), (0, 1));
            assert!(held.contains(&pair[0].text.as_str()), "{}", pair[0].text);
            assert_ne!(pair[0].text, pair[1].text);
            assert_eq!(sorted_chars(&pair[0].text), sorted_chars(&pair[1].text));
        }
    }
    // Line i goes to test if i % 10 == 0, validation if 1, training otherwise.
    assert_eq!(task.test[0].text, held[0]);
    assert_eq!(task.val[0].text, held[1]);
    assert_eq!(task.train[0].text, held[2]);
    assert_eq!(task.test[2].text, held[10]);
    let e = acceptability_task("short\n", &[Corruption::Swap], 1, 0).unwrap_err();
    assert!(e.contains("too few"), "{e}");
}

#[test]
fn corruptions_parse_by_name_and_errors_name_the_flag() {
    assert_eq!(
        Corruption::parse_list("swap, shuffle").unwrap(),
        [Corruption::Swap, Corruption::Shuffle]
    );
    let e = Corruption::parse_list("swap,drop").unwrap_err();
    assert!(e.contains("--corruptions") && e.contains("'drop'"), "{e}");
}

#[test]
fn logistic_regression_separates_what_is_separable_and_its_raw_form_agrees() {
    // Class = whether x0 + x1 > 1, features on very different scales.
    let x: Vec<Vec<f64>> = (0..200)
        .map(|i| vec![(i % 17) as f64 / 8.0, 1000.0 * ((i * 7) % 13) as f64 / 6.0])
        .collect();
    let y: Vec<usize> = x.iter().map(|r| usize::from(r[0] + r[1] / 1000.0 > 1.0)).collect();
    let m = Logistic::fit(&x, &y, 2, 1e-4, 2000);
    assert!(m.accuracy(&x, &y) >= 0.97, "{}", m.accuracy(&x, &y));
    let (w, c) = m.unstandardised();
    for r in &x {
        let s: Vec<f64> = (0..2).map(|k| c[k] + w[k][0] * r[0] + w[k][1] * r[1]).collect();
        assert_eq!(usize::from(s[1] > s[0]), m.predict(r), "{r:?}");
    }
}

fn tok() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abc"))
}

#[test]
fn a_bag_of_characters_counts_shares_and_cannot_tell_anagrams_apart() {
    let t = tok();
    let f = bag_of_characters("abca", &t);
    let (a, b, c) = (t.encode("a")[0], t.encode("b")[0], t.encode("c")[0]);
    assert_eq!((f[a], f[b], f[c]), (0.5, 0.25, 0.25));
    assert_eq!(f.iter().sum::<f64>(), 1.0);
    // Each text beside an anagram of it in the other class: no bag of characters can beat 1/2.
    let pairs = ["abc", "aab", "cab", "bbc", "acc", "abcab"];
    let split = |from: usize| -> Vec<LabelledText> {
        pairs[from..from + 3]
            .iter()
            .flat_map(|p| {
                let rev: String = p.chars().rev().collect();
                [
                    LabelledText {
                        class: 0,
                        text: p.to_string(),
                    },
                    LabelledText { class: 1, text: rev },
                ]
            })
            .collect()
    };
    let task = TextTask {
        title: "anagrams".into(),
        unit: "texts".into(),
        names: vec!["forward".into(), "reversed".into()],
        train: split(0),
        val: split(0),
        test: split(3),
    };
    assert_eq!(bag_of_characters_accuracy(&task, &t), 0.5);
}

/// A bag of character pairs counts each known pair's share of the text's pairs, and sees
/// order where a bag of characters cannot: on the anagram task above (text against its
/// reversal) it tells the two apart.
#[test]
fn a_bag_of_bigrams_counts_pair_shares_and_tells_anagrams_apart() {
    let known = [('a', 'b'), ('b', 'a'), ('b', 'c')]; // sorted, as the baseline keeps them
                                                      // "abab": pairs ab, ba, ab -> ab 2/3, ba 1/3, bc 0.
    assert_eq!(bag_of_bigrams("abab", &known), vec![2.0 / 3.0, 1.0 / 3.0, 0.0]);
    // "abcx": ab, bc, cx; cx is not known and counts in the denominator only.
    assert_eq!(bag_of_bigrams("abcx", &known), vec![1.0 / 3.0, 0.0, 1.0 / 3.0]);
    // Forward words start with "ab", their reversals end with "ba": pairs tell them apart.
    let text = |class: usize, s: &str| LabelledText {
        class,
        text: if class == 0 {
            s.to_string()
        } else {
            s.chars().rev().collect()
        },
    };
    let words = ["abc", "abcc", "abcac", "abccc", "abcca", "abcaa"];
    let train: Vec<LabelledText> = words.iter().flat_map(|w| [text(0, w), text(1, w)]).collect();
    let test: Vec<LabelledText> = ["abca", "abccca"]
        .iter()
        .flat_map(|w| [text(0, w), text(1, w)])
        .collect();
    let refs: Vec<&LabelledText> = train.iter().collect();
    assert_eq!(bag_of_bigrams_accuracy(&refs, &test, 2), 1.0);
}

#[test]
fn seed_stats_are_the_mean_and_the_sample_standard_deviation() {
    let s = SeedStats::of(vec![0.5, 0.7, 0.6]);
    assert!((s.mean - 0.6).abs() < 1e-12);
    assert!((s.sd - 0.1).abs() < 1e-12, "sqrt((0.01 + 0.01 + 0) / 2) = 0.1");
    assert_eq!(SeedStats::of(vec![0.4]).sd, 0.0);
}

#[test]
fn the_table_prints_mean_and_sd_per_count_and_the_baselines() {
    let c = Comparison {
        title: "t".into(),
        unit: "lines".into(),
        all: 1200,
        seeds: 2,
        counts: vec![100, 1200],
        curves: vec![Curve {
            name: "(a) x".into(),
            points: vec![
                (100, SeedStats::of(vec![0.6, 0.8])),
                (1200, SeedStats::of(vec![0.9, 0.9])),
            ],
        }],
        baselines: vec![("majority class".into(), 0.5)],
    };
    let t = c.table();
    assert!(t.contains("| start | 100 | 1,200 (all) |"), "{t}");
    assert!(t.contains("| (a) x | 0.700 ± 0.141 | 0.900 ± 0.000 |"), "{t}");
    assert!(t.contains("| majority class | 0.500 | 0.500 |"), "{t}");
    assert_eq!(c.mean("(a)", 1200).map(|s| s.mean), Some(0.9));
}

#[test]
fn the_learning_curve_draws_one_error_bar_per_point_clamped_to_the_axis() {
    let series = [Series {
        name: "a".into(),
        points: vec![(10.0, 0.5, 0.1), (100.0, 0.95, 0.1)],
    }];
    let svg = learning_curve_svg("t", "lines", &series, None);
    // y(acc) = 40 + (1 - acc) * 310: 0.4 -> 226, 0.6 -> 164; the second bar runs from 0.85 ->
    // 86.5 and stops at 1.0 -> 40 (not 1.05).
    let bars: Vec<&str> = svg
        .lines()
        .filter(|l| l.contains("stroke-width=\"1\"") && l.contains("#1f77b4"))
        .collect();
    assert_eq!(bars.len(), 6, "a bar and two caps per point: {bars:?}");
    assert!(
        bars.iter()
            .any(|l| l.contains(r#"y1="226.00""#) && l.contains(r#"y2="164.00""#)),
        "{bars:?}"
    );
    assert!(
        bars.iter()
            .any(|l| l.contains(r#"y1="86.50""#) && l.contains(r#"y2="40.00""#)),
        "{bars:?}"
    );
    assert!(svg.contains("labelled training lines (log scale)"));
}
