//! Baselines a fine-tuned encoder has to beat, beside the majority class: a multinomial
//! logistic regression on fixed features, fitted to convergence, and its use on a bag of
//! characters.
//!
//! ```text
//! z = (x - mu) / sigma                 features standardised with the training set's statistics
//! s = W z + c                          [K]
//! L = -(1/N) sum_n log softmax(s_n)_{y_n} + (lambda/2) |W|^2
//! ```
//!
//! fitted by full-batch gradient descent with Adam (lr 0.05, `steps` steps) in f64. A bag of
//! characters counts each character of the text, divided by the text's length: if such a model
//! tells two classes apart, the task can be solved without reading order or words. A bag of
//! character pairs (bigrams) counts each pair of neighbouring characters seen in training: the
//! simplest model that can see a shuffle ("hvae" has pairs "have" has not), learnt from the
//! task's own labelled texts alone, as a randomly initialised encoder must.

use crate::data::labelled::{LabelledText, TextTask};
use crate::tokenizer::Tokenizer;

/// A fitted logistic regression.
#[derive(Clone, Debug)]
pub struct Logistic {
    mu: Vec<f64>,
    sigma: Vec<f64>,
    w: Vec<Vec<f64>>, // [K][D]
    c: Vec<f64>,
}

impl Logistic {
    /// Fit on features `x` (each of the same length) and classes `y` < `classes`, with L2
    /// strength `lambda`, for `steps` full-batch Adam steps.
    pub fn fit(x: &[Vec<f64>], y: &[usize], classes: usize, lambda: f64, steps: usize) -> Logistic {
        assert!(
            !x.is_empty() && x.len() == y.len(),
            "Logistic::fit: {} rows, {} labels",
            x.len(),
            y.len()
        );
        let (n, d) = (x.len() as f64, x[0].len());
        let mu: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let sigma: Vec<f64> = (0..d)
            .map(|j| {
                let var = x.iter().map(|r| (r[j] - mu[j]).powi(2)).sum::<f64>() / n;
                if var > 1e-12 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let mut m = Logistic {
            mu,
            sigma,
            w: vec![vec![0.0; d]; classes],
            c: vec![0.0; classes],
        };
        let z: Vec<Vec<f64>> = x.iter().map(|r| m.standardise(r)).collect();
        let k1 = classes * (d + 1); // every parameter, W then c, in one vector for Adam
        let (mut am, mut av) = (vec![0.0; k1], vec![0.0; k1]);
        let (lr, b1, b2) = (0.05, 0.9, 0.999);
        for t in 1..=steps {
            let mut g = vec![0.0; k1];
            for (zn, &yn) in z.iter().zip(y) {
                let p = softmax(&m.scores_z(zn));
                for k in 0..classes {
                    let e = (p[k] - if k == yn { 1.0 } else { 0.0 }) / n; // dL/ds_k
                    for j in 0..d {
                        g[k * d + j] += e * zn[j];
                    }
                    g[classes * d + k] += e;
                }
            }
            for k in 0..classes {
                for j in 0..d {
                    g[k * d + j] += lambda * m.w[k][j];
                }
            }
            for (i, gi) in g.iter().enumerate() {
                am[i] = b1 * am[i] + (1.0 - b1) * gi;
                av[i] = b2 * av[i] + (1.0 - b2) * gi * gi;
                let step =
                    lr * (am[i] / (1.0 - b1.powi(t as i32))) / ((av[i] / (1.0 - b2.powi(t as i32))).sqrt() + 1e-8);
                if i < classes * d {
                    m.w[i / d][i % d] -= step;
                } else {
                    m.c[i - classes * d] -= step;
                }
            }
        }
        m
    }

    fn standardise(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mu)
            .zip(&self.sigma)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }

    fn scores_z(&self, z: &[f64]) -> Vec<f64> {
        self.w
            .iter()
            .zip(&self.c)
            .map(|(wk, ck)| ck + wk.iter().zip(z).map(|(a, b)| a * b).sum::<f64>())
            .collect()
    }

    /// The same model on raw features: (W', c') with W' z-free, s = W' x + c', where
    /// W'_kj = W_kj / sigma_j and c'_k = c_k - sum_j W_kj mu_j / sigma_j.
    pub fn unstandardised(&self) -> (Vec<Vec<f64>>, Vec<f64>) {
        let w: Vec<Vec<f64>> = self
            .w
            .iter()
            .map(|wk| wk.iter().zip(&self.sigma).map(|(a, s)| a / s).collect())
            .collect();
        let c = self
            .c
            .iter()
            .zip(&w)
            .map(|(ck, wk)| ck - wk.iter().zip(&self.mu).map(|(a, m)| a * m).sum::<f64>())
            .collect();
        (w, c)
    }

    /// The most likely class of `x` (the lowest index on a tie).
    pub fn predict(&self, x: &[f64]) -> usize {
        let s = self.scores_z(&self.standardise(x));
        (0..s.len()).fold(0, |best, k| if s[k] > s[best] { k } else { best })
    }

    /// Accuracy on features `x` with classes `y`.
    pub fn accuracy(&self, x: &[Vec<f64>], y: &[usize]) -> f64 {
        let right = x.iter().zip(y).filter(|(xn, &yn)| self.predict(xn) == yn).count();
        right as f64 / x.len().max(1) as f64
    }
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// Each token's share of `text`: its count divided by the number of tokens, one feature per id.
pub fn bag_of_characters(text: &str, tokenizer: &Tokenizer) -> Vec<f64> {
    let ids = tokenizer.encode(text);
    let mut f = vec![0.0; tokenizer.vocab_size()];
    for &i in &ids {
        f[i] += 1.0 / ids.len() as f64;
    }
    f
}

/// Test accuracy of a logistic regression (lambda 1e-3, 500 steps) on the bag of characters
/// of every training example of `task`.
pub fn bag_of_characters_accuracy(task: &TextTask, tokenizer: &Tokenizer) -> f64 {
    let features = |text: &str| bag_of_characters(text, tokenizer);
    let (train, test): (Vec<&LabelledText>, Vec<&LabelledText>) =
        (task.train.iter().collect(), task.test.iter().collect());
    fitted_accuracy(&train, &test, task.names.len(), &features)
}

/// The pairs of neighbouring characters of `text`, in order ("abc" -> "ab", "bc").
fn pairs(text: &str) -> Vec<(char, char)> {
    let c: Vec<char> = text.chars().collect();
    c.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Each pair of `known`'s share of `text`'s pairs of neighbouring characters, one feature per
/// entry of `known` (pairs not in it are not counted).
pub fn bag_of_bigrams(text: &str, known: &[(char, char)]) -> Vec<f64> {
    let p = pairs(text);
    let mut f = vec![0.0; known.len()];
    for pair in &p {
        if let Ok(i) = known.binary_search(pair) {
            f[i] += 1.0 / p.len() as f64;
        }
    }
    f
}

/// Test accuracy on `test` of a logistic regression (lambda 1e-3, 500 steps) on the bag of
/// bigrams of `train` (of `classes` classes), over the pairs that occur in at least 3 of its
/// texts (2 for fewer than 300 texts).
pub fn bag_of_bigrams_accuracy(train: &[&LabelledText], test: &[LabelledText], classes: usize) -> f64 {
    let mut seen = std::collections::BTreeMap::new();
    for e in train {
        let mut p = pairs(&e.text);
        p.sort();
        p.dedup();
        for pair in p {
            *seen.entry(pair).or_insert(0) += 1;
        }
    }
    let least = if train.len() < 300 { 2 } else { 3 };
    let known: Vec<(char, char)> = seen.into_iter().filter(|(_, n)| *n >= least).map(|(p, _)| p).collect();
    let test: Vec<&LabelledText> = test.iter().collect();
    fitted_accuracy(train, &test, classes, &|text: &str| bag_of_bigrams(text, &known))
}

/// Test accuracy on `test` of a logistic regression (lambda 1e-3, 500 steps) fitted on
/// `features` of `train`, `classes` classes.
fn fitted_accuracy(
    train: &[&LabelledText],
    test: &[&LabelledText],
    classes: usize,
    features: &dyn Fn(&str) -> Vec<f64>,
) -> f64 {
    let xy = |split: &[&LabelledText]| -> (Vec<Vec<f64>>, Vec<usize>) {
        split.iter().map(|e| (features(&e.text), e.class)).unzip()
    };
    let (x, y) = xy(train);
    let model = Logistic::fit(&x, &y, classes, 1e-3, 500);
    let (xt, yt) = xy(test);
    model.accuracy(&xt, &yt)
}
