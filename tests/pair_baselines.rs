//! The baselines a pair task must beat: each learns the signal it is built to see, and nothing
//! from labels it cannot see.

use microlm::data::{NspLabel, Pair, Span};
use microlm::objectives::pair_baselines::{
    boundary_baseline, boundary_features, fit_logistic, majority_baseline, overlap_baseline,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn pair(a: &[usize], b: &[usize], label: NspLabel) -> Pair {
    let span = Span {
        document: 0,
        sentences: 0..1,
    };
    Pair {
        a: a.to_vec(),
        b: b.to_vec(),
        label,
        a_span: span.clone(),
        b_span: span,
        trimmed: false,
    }
}

/// ids are letters: 0 -> "a", ...; 26 is a space.
fn text(ids: &[usize]) -> String {
    ids.iter()
        .map(|&i| if i == 26 { ' ' } else { (b'a' + i as u8) as char })
        .collect()
}

fn label(not_next: bool) -> NspLabel {
    if not_next {
        NspLabel::NotNext
    } else {
        NspLabel::IsNext
    }
}

/// 2,000 pairs of random letters with coin-flip labels.
fn random_pairs(seed: u64) -> Vec<Pair> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..2000)
        .map(|_| {
            let a: Vec<usize> = (0..8).map(|_| rng.random_range(0..27)).collect();
            let b: Vec<usize> = (0..8).map(|_| rng.random_range(0..27)).collect();
            pair(&a, &b, label(rng.random()))
        })
        .collect()
}

/// Two steps by hand: x = (1), (2) with y = 1, 0, rate 1, l2 0.1. Step 1 (sigmoid(0) = 0.5):
/// dw = ((0.5 - 1) 1 + (0.5 - 0) 2) / 2 = 0.25, dc = 0, so w = -0.25. Step 2: the errors are
/// sigmoid(-0.25) - 1 = -0.5621765 and sigmoid(-0.5) = 0.3775407, so
/// w = -0.25 - ((-0.5621765 + 0.7550813) / 2 + 0.1 (-0.25)) = -0.3214524 and
/// c = -(-0.5621765 + 0.3775407) / 2 = 0.0923179.
#[test]
fn logistic_regression_steps_by_hand() {
    let x = vec![vec![(0, 1.0)], vec![(0, 2.0)]];
    let one = fit_logistic(&x, &[1.0, 0.0], 1, 1, 1.0, 0.1);
    assert!((one.w[0] + 0.25).abs() < 1e-12 && one.c.abs() < 1e-12, "{one:?}");
    let two = fit_logistic(&x, &[1.0, 0.0], 1, 2, 1.0, 0.1);
    assert!((two.w[0] + 0.3214524).abs() < 1e-7, "{two:?}");
    assert!((two.c - 0.0923179).abs() < 1e-7, "{two:?}");
}

/// Perfect when IsNext pairs share their words and NotNext pairs share none, and at chance
/// (within 0.05 over 1,000 pairs) when the overlap says nothing of the label.
#[test]
fn overlap_baseline_learns_overlap_and_nothing_else() {
    let mut telling = Vec::new();
    for k in 0..200usize {
        let w = [k % 26, (k / 26) % 26, 26, (k * 7) % 26];
        telling.push(pair(&w, &w, NspLabel::IsNext));
        let v = [(k + 13) % 26, 26, (k + 5) % 26];
        telling.push(pair(&w[..2], &v, NspLabel::NotNext));
    }
    assert_eq!(overlap_baseline(&telling, &telling, text), 1.0);
    let random = random_pairs(9);
    let acc = overlap_baseline(&random[..1000], &random[1000..], text);
    assert!(
        (acc - 0.5).abs() < 0.05,
        "accuracy {acc} on labels the overlap cannot see"
    );
}

/// The features of a junction, by hand: "ab|c" with offsets -2, -1 (A) and 1 (B).
#[test]
fn boundary_features_by_hand() {
    let mut f = boundary_features("ab", "c");
    f.sort();
    let mut expected = vec!["-2:a", "-2:ab", "-2:ab|", "-2:ab|c", "-1:b", "-1:b|", "-1:b|c", "1:c"];
    expected.sort();
    assert_eq!(f, expected);
    // Only the last 8 characters of A and the first 8 of B are read.
    let far = boundary_features("zzzzzzzzzzzz12345678", "abcdefghZZZZ");
    assert!(far.iter().all(|g| !g.contains('z') && !g.contains('Z')), "{far:?}");
}

/// Labels set by the junction alone (IsNext: A ends in "q", B starts with "r"; NotNext: B
/// starts with "s"; the rest random): the boundary baseline finds them (above 0.95), the
/// overlap baseline cannot (within 0.06 of chance). Labels it cannot see: chance within 0.05.
#[test]
fn boundary_baseline_reads_the_junction() {
    let mut rng = StdRng::seed_from_u64(4);
    let pairs: Vec<Pair> = (0..2000)
        .map(|_| {
            let not_next: bool = rng.random();
            let mut a: Vec<usize> = (0..10).map(|_| rng.random_range(0..27)).collect();
            let mut b: Vec<usize> = (0..10).map(|_| rng.random_range(0..27)).collect();
            a.push(16); // "q"
            b.insert(0, if not_next { 18 } else { 17 }); // "s" or "r"
            pair(&a, &b, label(not_next))
        })
        .collect();
    let acc = boundary_baseline(&pairs[..1000], &pairs[1000..], text);
    assert!(acc > 0.95, "boundary baseline {acc}");
    let overlap = overlap_baseline(&pairs[..1000], &pairs[1000..], text);
    assert!((overlap - 0.5).abs() < 0.06, "overlap baseline {overlap}");
    let random = random_pairs(10);
    let acc = boundary_baseline(&random[..1000], &random[1000..], text);
    assert!(
        (acc - 0.5).abs() < 0.05,
        "accuracy {acc} on labels the junction cannot see"
    );
}

/// The more frequent training label, scored on the test pairs.
#[test]
fn majority_baseline_by_hand() {
    let p = |not_next| pair(&[0], &[1], label(not_next));
    let train = [p(true), p(true), p(false)];
    let test = [p(true), p(false), p(false), p(false)];
    assert_eq!(majority_baseline(&train, &test), 0.25);
    assert_eq!(majority_baseline(&test, &test), 0.75);
}
