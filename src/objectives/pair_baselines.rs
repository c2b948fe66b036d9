//! The non-neural baselines a sentence-pair task (NSP or SOP) has to beat, each fitted on
//! training pairs and scored on held-out ones:
//!
//! - [`majority_baseline`]: always the training pairs' more frequent label.
//! - [`overlap_baseline`]: logistic regression on how much A and B share (word and
//!   character-bigram Jaccard). It sees topic, not order: on SOP pairs, where A and B are the
//!   same two pieces in either order, it cannot beat chance.
//! - [`boundary_baseline`]: logistic regression on the character n-grams around the junction
//!   `A | B` (the end of A, the start of B, and the n-grams that run across). It sees whether
//!   B reads as the continuation of A, locally.
//!
//! Both regressions are [`fit_logistic`]: full-batch gradient descent on the mean log loss,
//! from zero weights, so the same pairs give the same figure on every run.

use crate::data::Pair;
use std::collections::{BTreeMap, BTreeSet};

/// Characters taken from each side of the junction by [`boundary_features`].
pub const BOUNDARY_CHARS: usize = 8;
/// The longest n-gram [`boundary_features`] takes.
pub const BOUNDARY_NGRAM: usize = 4;

/// The share of `test` pairs whose label is the more frequent one among `train`'s (IsNext on
/// a tie).
pub fn majority_baseline(train: &[Pair], test: &[Pair]) -> f64 {
    let not_next = train.iter().filter(|p| p.label.class() == 1).count();
    let majority = usize::from(2 * not_next > train.len());
    let hits = test.iter().filter(|p| p.label.class() == majority).count();
    hits as f64 / test.len().max(1) as f64
}

/// A logistic regression over sparse features: P(NotNext | x) = sigmoid(w . x + c).
#[derive(Clone, Debug)]
pub struct Logistic {
    /// One weight per feature index.
    pub w: Vec<f64>,
    /// The bias.
    pub c: f64,
}

impl Logistic {
    /// The logit w . x + c of sparse features `x` (index, value).
    pub fn logit(&self, x: &[(usize, f64)]) -> f64 {
        x.iter().map(|&(k, v)| self.w[k] * v).sum::<f64>() + self.c
    }
}

/// Fit a [`Logistic`] over `dim` features to labels `y` in {0, 1} by `steps` of full-batch
/// gradient descent at `rate` on L = mean_i log(1 + e^{-s_i z_i}) + (l2 / 2) |w|^2 (s_i =
/// 2 y_i - 1, z_i the logit), whose gradient is dL/dz_i = (sigmoid(z_i) - y_i) / n and
/// dL/dw = sum_i dL/dz_i x_i + l2 w (the bias is not decayed).
pub fn fit_logistic(x: &[Vec<(usize, f64)>], y: &[f64], dim: usize, steps: usize, rate: f64, l2: f64) -> Logistic {
    let n = x.len().max(1) as f64;
    let mut model = Logistic {
        w: vec![0.0; dim],
        c: 0.0,
    };
    let sigmoid = |t: f64| 1.0 / (1.0 + (-t).exp());
    for _ in 0..steps {
        let (mut gw, mut gc) = (vec![0.0f64; dim], 0.0f64);
        for (x_i, &y_i) in x.iter().zip(y) {
            let err = sigmoid(model.logit(x_i)) - y_i; // dL/dz_i, times n
            for &(k, v) in x_i {
                gw[k] += err * v;
            }
            gc += err;
        }
        for (w_k, g_k) in model.w.iter_mut().zip(&gw) {
            *w_k -= rate * (g_k / n + l2 * *w_k);
        }
        model.c -= rate * gc / n;
    }
    model
}

/// The share of `x` whose predicted label (logit > 0: NotNext) is `y`.
fn accuracy(model: &Logistic, x: &[Vec<(usize, f64)>], y: &[f64]) -> f64 {
    let hits = x
        .iter()
        .zip(y)
        .filter(|(x_i, &y_i)| f64::from(u8::from(model.logit(x_i) > 0.0)) == y_i)
        .count();
    hits as f64 / x.len().max(1) as f64
}

/// Labels as numbers: 1 for NotNext.
fn labels(pairs: &[Pair]) -> Vec<f64> {
    pairs.iter().map(|p| p.label.class() as f64).collect()
}

/// Logistic regression on two features per pair, the Jaccard overlap of A's and B's
/// lower-cased word sets and of their character-bigram sets, standardised with `train`'s mean
/// and deviation; 2,000 steps at rate 0.5. Returns its accuracy on `test`. `text` decodes a
/// segment's ids.
pub fn overlap_baseline(train: &[Pair], test: &[Pair], text: impl Fn(&[usize]) -> String) -> f64 {
    let features = |pairs: &[Pair]| -> Vec<[f64; 2]> {
        pairs
            .iter()
            .map(|p| {
                let (a, b) = (text(&p.a).to_lowercase(), text(&p.b).to_lowercase());
                let words = |s: &str| -> BTreeSet<String> {
                    s.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect()
                };
                let bigrams = |s: &str| -> BTreeSet<(char, char)> { s.chars().zip(s.chars().skip(1)).collect() };
                [jaccard(&words(&a), &words(&b)), jaccard(&bigrams(&a), &bigrams(&b))]
            })
            .collect()
    };
    let (fit, eval) = (features(train), features(test));
    let n = fit.len().max(1) as f64;
    let mean: Vec<f64> = (0..2).map(|k| fit.iter().map(|x| x[k]).sum::<f64>() / n).collect();
    let sd: Vec<f64> = (0..2)
        .map(|k| {
            (fit.iter().map(|x| (x[k] - mean[k]).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let z = |x: &[f64; 2]| vec![(0, (x[0] - mean[0]) / sd[0]), (1, (x[1] - mean[1]) / sd[1])];
    let fit: Vec<_> = fit.iter().map(z).collect();
    let eval: Vec<_> = eval.iter().map(z).collect();
    let model = fit_logistic(&fit, &labels(train), 2, 2000, 0.5, 0.0);
    accuracy(&model, &eval, &labels(test))
}

/// |a ∩ b| / |a ∪ b| (0 for two empty sets).
fn jaccard<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// The n-grams around the junction of `a` and `b`: in the last [`BOUNDARY_CHARS`] characters
/// of `a`, a `|`, and the first [`BOUNDARY_CHARS`] of `b`, every n-gram of 1 to
/// [`BOUNDARY_NGRAM`] characters, named by its offset from the junction (negative in A) and its
/// text, `|` included where it runs across.
///
/// ```
/// use microlm::objectives::pair_baselines::boundary_features;
/// let f = boundary_features("so.\n", "Ay");
/// assert!(f.contains(&"-1:\n".to_string()));       // A ends with a line end
/// assert!(f.contains(&"-2:.\n|A".to_string()));     // runs across the junction
/// assert!(f.contains(&"1:Ay".to_string()));         // B starts with "Ay"
/// ```
pub fn boundary_features(a: &str, b: &str) -> Vec<String> {
    let tail: Vec<char> = a
        .chars()
        .rev()
        .take(BOUNDARY_CHARS)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: Vec<char> = b.chars().take(BOUNDARY_CHARS).collect();
    let mut window = tail.clone();
    window.push('|');
    window.extend(&head);
    let junction = tail.len(); // index of '|'
    let mut features = Vec::new();
    for start in 0..window.len() {
        if start == junction {
            continue; // the bare '|' says nothing
        }
        for n in 1..=BOUNDARY_NGRAM.min(window.len() - start) {
            let offset = start as i64 - junction as i64; // -1 is A's last character, 1 B's first
            let gram: String = window[start..start + n].iter().collect();
            features.push(format!("{offset}:{gram}"));
        }
    }
    features
}

/// How [`boundary_baseline`] fits its regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundaryFit {
    /// Keep a feature only if at least this many training pairs have it.
    pub min_count: usize,
    /// Gradient steps.
    pub steps: usize,
    /// Step size.
    pub rate: f64,
    /// L2 penalty on the weights.
    pub l2: f64,
}

impl Default for BoundaryFit {
    /// The setting chosen on Tiny Shakespeare's NSP and SOP pairs (NOTES.md §11.4).
    fn default() -> BoundaryFit {
        BoundaryFit {
            min_count: 2,
            steps: 300,
            rate: 2.0,
            l2: 0.0,
        }
    }
}

/// Logistic regression on [`boundary_features`] (binary; fitted as [`BoundaryFit::default`]
/// says). Returns its accuracy on `test`. `text` decodes a segment's ids.
pub fn boundary_baseline(train: &[Pair], test: &[Pair], text: impl Fn(&[usize]) -> String) -> f64 {
    boundary_baseline_with(train, test, text, BoundaryFit::default())
}

/// [`boundary_baseline`] with its fit spelled out.
pub fn boundary_baseline_with(
    train: &[Pair],
    test: &[Pair],
    text: impl Fn(&[usize]) -> String,
    fit_with: BoundaryFit,
) -> f64 {
    let grams = |pairs: &[Pair]| -> Vec<Vec<String>> {
        pairs
            .iter()
            .map(|p| boundary_features(&text(&p.a), &text(&p.b)))
            .collect()
    };
    let (fit, eval) = (grams(train), grams(test));
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for f in fit.iter().flat_map(|fs| fs.iter().collect::<BTreeSet<_>>()) {
        *seen.entry(f).or_default() += 1;
    }
    let index: BTreeMap<&str, usize> = seen
        .into_iter()
        .filter(|&(_, count)| count >= fit_with.min_count)
        .enumerate()
        .map(|(k, (f, _))| (f, k))
        .collect();
    let sparse = |fs: &Vec<String>| -> Vec<(usize, f64)> {
        let ks: BTreeSet<usize> = fs.iter().filter_map(|f| index.get(f.as_str()).copied()).collect();
        ks.into_iter().map(|k| (k, 1.0)).collect()
    };
    let fit_x: Vec<_> = fit.iter().map(sparse).collect();
    let eval_x: Vec<_> = eval.iter().map(sparse).collect();
    let model = fit_logistic(
        &fit_x,
        &labels(train),
        index.len(),
        fit_with.steps,
        fit_with.rate,
        fit_with.l2,
    );
    accuracy(&model, &eval_x, &labels(test))
}
