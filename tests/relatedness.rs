//! The relatedness task and the span positives (issue 30): retrieval on a hand-made similarity
//! matrix (ties included), alignment and uniformity from cosines, TF-IDF by hand, the halves of
//! held-out speeches, span pairs that stay inside one speech and never share a line, the split
//! that training spans never cross, and mean pooling inside the loss.

mod common;

use common::tiny_encoder_config;
use microlm::data::speeches::{body_lines, part, span_pair, speech_halves};
use microlm::data::Batch;
use microlm::objectives::sentence_embeddings::{alignment_uniformity, choice_accuracy, retrieval, Pooling};
use microlm::objectives::simcse::{info_nce, mean_pool, SimCse, TEMPERATURE};
use microlm::objectives::tfidf::{sparse_cosines, words, TfIdf};
use microlm::recipe::relatedness::{PairSource, Positives};
use microlm::recipe::Recipe;
use microlm::{Params, Tape};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Row 0: its own candidate is best (top-1, rank 1). Row 1: one candidate better (0.8), one tied
/// (0.3): top-1 0, top-5 1, rank 1 + 1 + 1/2 = 2.5. Row 2: all three tied at 0: top-1 1/3,
/// rank 1 + 2/2 = 2. So top-1 = (1 + 0 + 1/3)/3 = 4/9, top-5 = 1, mean rank = 5.5/3.
#[test]
fn retrieval_on_a_hand_made_similarity_matrix() {
    let s = vec![vec![0.9f32, 0.5, 0.1], vec![0.8, 0.3, 0.3], vec![0.0, 0.0, 0.0]];
    let r = retrieval(&s);
    assert!((r.top1 - 4.0 / 9.0).abs() < 1e-12, "{r:?}");
    assert!((r.top5 - 1.0).abs() < 1e-12, "{r:?}");
    assert!((r.mean_rank - 5.5 / 3.0).abs() < 1e-12, "{r:?}");
    // Among 8 candidates, 6 strictly better: the own one is 7th, outside the top 5.
    let row = vec![0.5f32, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1];
    let mut s8 = vec![vec![0.0f32; 8]; 8];
    for (i, r) in s8.iter_mut().enumerate() {
        r[i] = 1.0;
    }
    s8[0] = row;
    let r = retrieval(&s8);
    assert!(
        (r.top5 - 7.0 / 8.0).abs() < 1e-12 && (r.mean_rank - 14.0 / 8.0).abs() < 1e-12,
        "{r:?}"
    );
}

/// The same matrix as a 2-way choice: row 0 always wins (1); row 1 draws the better candidate
/// or the tied one, each half the time, and wins a tie half the time (1/4); row 2 draws a tied
/// one and wins half the time (1/2); mean 7/12. A choice among all n is top-1 (4/9).
#[test]
fn choice_accuracy_on_a_hand_made_similarity_matrix() {
    let s = vec![vec![0.9f32, 0.5, 0.1], vec![0.8, 0.3, 0.3], vec![0.0, 0.0, 0.0]];
    assert!((choice_accuracy(&s, 2) - 7.0 / 12.0).abs() < 1e-12);
    assert!((choice_accuracy(&s, 3) - 4.0 / 9.0).abs() < 1e-12);
    assert!((choice_accuracy(&s, 1) - 1.0).abs() < 1e-12);
}

/// Two pairs with cosines 1 and 0 align at (0 + 2)/2 = 1; two queries at cosine 0 have
/// uniformity log e^{-2 * 2} = -4.
#[test]
fn alignment_and_uniformity_from_cosines() {
    let pairs = vec![vec![1.0f32, 0.2], vec![0.3, 0.0]];
    let queries = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
    let (a, u) = alignment_uniformity(&pairs, &queries);
    assert!((a - 1.0).abs() < 1e-9 && (u + 4.0).abs() < 1e-6, "{a} {u}");
}

/// Reference texts "a b" and "a c" (N = 2): idf(a) = ln(3/3) + 1 = 1, idf(b) = ln(3/2) + 1 =
/// 1.405465, an unseen term ln 3 + 1 = 2.098612. "a b b" weighs (1, 2.810930), norm 2.983510, so
/// f = (0.335176, 0.942155); its cosine with "b" (f = (0, 1)) is 0.942155, with "z" 0.
#[test]
fn tfidf_by_hand() {
    let t = TfIdf::fit(&["a b", "A c"], words);
    assert!((t.idf("a") - 1.0).abs() < 1e-6);
    assert!((t.idf("b") - 1.405465).abs() < 1e-5);
    assert!((t.idf("z") - 2.098612).abs() < 1e-5);
    let f = t.vectors(&["a b b", "b", "z"]);
    assert_eq!(f[0].len(), 2);
    assert!(
        (f[0][0].1 - 0.335176).abs() < 1e-5 && (f[0][1].1 - 0.942155).abs() < 1e-5,
        "{:?}",
        f[0]
    );
    let s = sparse_cosines(&f[..1], &f[1..]);
    assert!((s[0][0] - 0.942155).abs() < 1e-5 && s[0][1] == 0.0, "{s:?}");
}

/// A text of 3 speeches: the first (4 lines) gives halves of 2 and 2 lines, the second (one
/// line) has no halves, the third (3 lines) 2 and 1; the name lines are never part of a half.
/// A repeat of the first speech is skipped, and `limit` stops early.
#[test]
fn held_out_speech_halves() {
    let text = "ROMEO:\nOne a.\nTwo a.\nThree a.\nFour a.\n\nJULIET:\nAlone.\n\nNURSE:\nOne c.\nTwo c.\nThree c.\n\nROMEO:\nOne a.\nTwo a.\nThree a.\nFour a.\n";
    let h = speech_halves(text, 100, 10);
    assert_eq!(h.first, ["One a.\nTwo a.", "One c.\nTwo c."]);
    assert_eq!(h.second, ["Three a.\nFour a.", "Three c."]);
    assert_eq!(speech_halves(text, 100, 1).first.len(), 1);
    // A half keeps whole lines within the limit ("One a.\nTwo a." is 13 characters): the
    // first half the lines nearest the middle, the second half those from the middle.
    let short = speech_halves(text, 12, 10);
    assert_eq!(
        (short.first[0].as_str(), short.second[0].as_str()),
        ("Two a.", "Three a.")
    );
    assert_eq!(body_lines("ROMEO:\nAy.\n"), ["Ay."]);
    assert_eq!(part(&["abcdef", "g"], 3), "abc");
}

/// Over many draws from a speech of 6 numbered lines of 6 characters: the anchor is a run of
/// consecutive lines ending right before the positive, a run of consecutive lines of the same
/// speech; within 19 characters a part holds at most 2 lines (3 would take 6 + 1 + 6 + 1 + 6 = 20),
/// and every cut from 1 to 5 is drawn.
#[test]
fn span_pairs_stay_in_their_speech_and_share_no_line() {
    let lines: Vec<String> = (0..6).map(|i| format!("line {i}")).collect();
    let number = |l: &str| l.strip_prefix("line ").unwrap().parse::<usize>().unwrap();
    let rng = &mut StdRng::seed_from_u64(3);
    let mut cuts = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (a, p) = span_pair(&lines, 19, rng);
        let (a, p): (Vec<usize>, Vec<usize>) = (a.lines().map(number).collect(), p.lines().map(number).collect());
        for run in [&a, &p] {
            assert!(
                (1..=2).contains(&run.len()) && run.windows(2).all(|w| w[1] == w[0] + 1),
                "{run:?}"
            );
        }
        assert_eq!(a.last().unwrap() + 1, p[0], "{a:?} {p:?}");
        assert!(
            a.len() == 2 || a[0] == 0,
            "the anchor takes 2 lines when there are: {a:?}"
        );
        cuts.insert(p[0]);
    }
    assert_eq!(cuts.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

/// A corpus of 30 speeches whose lines are all distinct: every training span comes from the
/// first 90% of the text, and no line of a held-out half is a line of the training text.
#[test]
fn training_spans_never_cross_the_split() {
    let dir = std::env::temp_dir().join(format!("microlm-relatedness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("speeches.txt");
    let text: String = (0..30)
        .map(|s| format!("SPEAKER:\nspeech {s} says one\nspeech {s} says two\nspeech {s} says three\n\n"))
        .collect();
    std::fs::write(&path, &text).unwrap();
    let recipe = Recipe {
        corpus: path,
        seq_len: 16,
        batch: 4,
        ..Recipe::default()
    };
    let data = recipe.load_data().unwrap();
    let train = data.tokenizer.decode(&data.train);
    let train_lines: Vec<&str> = train.lines().collect();
    let source = recipe.pair_source(&data, Positives::Span, 0.0).unwrap();
    let PairSource::Speeches(speeches) = &source else {
        panic!("span positives draw from speeches")
    };
    assert!(speeches.len() >= 25, "{} speeches", speeches.len());
    for speech in speeches {
        let id: Vec<&str> = speech.iter().map(|l| l.split(" says").next().unwrap()).collect();
        assert!(id.iter().all(|s| *s == id[0]), "{speech:?}");
        assert!(speech.iter().all(|l| train.contains(l.as_str())), "{speech:?}");
    }
    let halves = recipe.speech_halves(&data).unwrap();
    for half in halves.first.iter().chain(&halves.second) {
        assert!(
            half.lines().all(|l| !train_lines.contains(&l)),
            "{half:?} is in the training text"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// docs/objectives.md §6c's example: states (1, 0), (1, 2) and a padding state (9, 9) at length
/// 2 pool to (1, 1); a second row of length 3 pools to the mean of its three states.
#[test]
fn mean_pool_by_hand() {
    let mut tape = Tape::new();
    let states = vec![1.0f32, 0.0, 1.0, 2.0, 9.0, 9.0, 4.0, 0.0, 5.0, 1.0, 6.0, 2.0];
    let h = tape.input(ArrayD::from_shape_vec(IxDyn(&[2, 3, 2]), states).unwrap());
    let x = Batch::new(vec![0; 6], 2, 3).with_lengths(vec![2, 3]);
    let m = mean_pool(&mut tape, h, &x);
    assert_eq!(
        tape.value(m).iter().copied().collect::<Vec<_>>(),
        vec![1.0, 1.0, 5.0, 1.0]
    );
}

/// §6c's two speeches: h_A = h_A+ = (1, 1), h_B = (0, 1), h_B+ = (1, -1) give the logits
/// [[20, 0], [14.142136, -14.142136]], l_A = ln(1 + e^-20), l_B = 28.284271, L = 14.142136.
#[test]
fn span_example_loss_by_hand() {
    let mut tape = Tape::new();
    let h = tape.input(ndarray::array![[1.0f32, 1.0], [0.0, 1.0]].into_dyn());
    let h_plus = tape.input(ndarray::array![[1.0f32, 1.0], [1.0, -1.0]].into_dyn());
    let l = info_nce(&mut tape, h, h_plus, TEMPERATURE).unwrap();
    assert!(
        (tape.scalar(l.mean) - 14.142136).abs() < 1e-4,
        "{}",
        tape.scalar(l.mean)
    );
}

/// With mean pooling and no dropout, a batch paired with itself gives every diagonal logit
/// 1/τ, and the loss is the same for the two batches swapped in order (the rows are permuted
/// together); the checkpoint metadata records the pooling.
#[test]
fn mean_pooled_loss_on_identical_pairs() {
    let config = tiny_encoder_config(12);
    let mut params = Params::new();
    let model = SimCse::new(&mut params, &config, &mut StdRng::seed_from_u64(2))
        .unwrap()
        .with_pool(Pooling::Mean);
    assert_eq!(model.metadata()["simcse.pool"], "mean");
    let x = Batch::new(vec![2, 5, 6, 7, 2, 8, 9, 0], 2, 4).with_lengths(vec![4, 3]);
    let y = Batch::new(vec![2, 8, 9, 0, 2, 5, 6, 7], 2, 4).with_lengths(vec![3, 4]);
    let rng = &mut StdRng::seed_from_u64(1);
    let loss = |a: &Batch, b: &Batch, rng: &mut StdRng| {
        let mut tape = Tape::new();
        let l = model.loss(&mut tape, &params, a, b, rng).unwrap();
        tape.scalar(l.mean)
    };
    let (xy, yx) = (loss(&x, &x, rng), loss(&y, &y, rng));
    assert!((xy - yx).abs() < 1e-5, "{xy} {yx}");
    // Identical views: l_i = ln(1 + e^{(cos_ij - 1)/τ}) <= ln 2.
    assert!(xy > 0.0 && xy <= std::f32::consts::LN_2 + 1e-6, "{xy}");
}

/// Dropout views need dropout: `--positives dropout --dropout 0` is refused by name; spans and
/// edits train without it by default, dropout views with SimCSE's 0.1.
#[test]
fn dropout_views_without_dropout_are_refused() {
    let e = Positives::Dropout.check_dropout(0.0).unwrap_err();
    assert!(e.starts_with("--dropout 0 with --positives dropout"), "{e}");
    assert!(Positives::Span.check_dropout(0.0).is_ok() && Positives::Dropout.check_dropout(0.1).is_ok());
    assert_eq!(Positives::Dropout.default_dropout(), 0.1);
    assert_eq!(
        (Positives::Span.default_dropout(), Positives::Edit.default_dropout()),
        (0.0, 0.0)
    );
    assert!(Positives::parse("spans").unwrap_err().contains("--positives \"spans\""));
}
