//! The baselines a sentence embedding has to beat on retrieval: bags of words and bags of
//! characters, weighted by TF-IDF and compared by cosine. If a bag finds the answer, the task
//! asks for shared surface (the same names, the same rare words), not for meaning.
//!
//! ```text
//! idf(t)  = ln((1 + N) / (1 + df(t))) + 1      N reference texts, df(t) of them contain t
//! v(x)_t  = count(t, x) · idf(t),   f(x) = v(x) / |v(x)|
//! ```
//!
//! (the smoothed IDF of scikit-learn's `TfidfVectorizer`, which counts every term of every
//! text; Spärck Jones, 1972, for the weighting). The IDF is fitted on reference texts (the
//! training split's speeches), never on the texts being scored.

use std::collections::HashMap;

/// The words of `text`: runs of letters and apostrophes, lower-cased, apostrophes at either end
/// trimmed.
///
/// ```
/// use microlm::objectives::tfidf::words;
/// assert_eq!(words("'Tis Romeo's ROMEO!"), ["tis", "romeo's", "romeo"]);
/// ```
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic() && c != '\'')
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The characters of `text`, each a term (white space and punctuation included).
pub fn characters(text: &str) -> Vec<String> {
    text.chars().map(String::from).collect()
}

/// A sparse unit vector: (term index, weight), sorted by index.
pub type Sparse = Vec<(usize, f32)>;

/// The IDF of every term seen in the reference texts.
#[derive(Clone, Debug)]
pub struct TfIdf {
    index: HashMap<String, usize>,
    idf: Vec<f32>,
    unseen_idf: f32,
    bag: fn(&str) -> Vec<String>,
}

impl TfIdf {
    /// Fit the IDF on `reference` texts, with `bag` cutting a text into terms ([`words`] or
    /// [`characters`]). A term no reference text holds gets the IDF of df = 0.
    pub fn fit(reference: &[&str], bag: fn(&str) -> Vec<String>) -> TfIdf {
        let mut index = HashMap::new();
        let mut df: Vec<usize> = Vec::new();
        for text in reference {
            let mut terms = bag(text);
            terms.sort();
            terms.dedup();
            for t in terms {
                let next = index.len();
                let i = *index.entry(t).or_insert(next);
                if i == df.len() {
                    df.push(0);
                }
                df[i] += 1;
            }
        }
        let n = reference.len() as f32;
        let idf = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        TfIdf {
            index,
            idf,
            unseen_idf: (1.0 + n).ln() + 1.0,
            bag,
        }
    }

    /// The IDF of `term`.
    pub fn idf(&self, term: &str) -> f32 {
        self.index.get(term).map_or(self.unseen_idf, |&i| self.idf[i])
    }

    /// f(x): counts times IDF, divided by the norm (a text without terms gives an empty vector).
    /// Unseen terms get indices past the fitted ones, the same index for the same term.
    pub fn vector(&self, text: &str, unseen: &mut HashMap<String, usize>) -> Sparse {
        let mut counts: HashMap<usize, f32> = HashMap::new();
        for t in (self.bag)(text) {
            let i = match self.index.get(&t) {
                Some(&i) => i,
                None => {
                    let next = self.idf.len() + unseen.len();
                    *unseen.entry(t.clone()).or_insert(next)
                }
            };
            *counts.entry(i).or_insert(0.0) += 1.0;
        }
        let weight = |i: usize| self.idf.get(i).copied().unwrap_or(self.unseen_idf);
        let mut v: Sparse = counts.into_iter().map(|(i, c)| (i, c * weight(i))).collect();
        v.sort_by_key(|&(i, _)| i);
        let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        v.iter_mut().for_each(|(_, w)| *w /= norm.max(1e-12));
        v
    }

    /// f(x) for each text, unseen terms indexed consistently across them.
    pub fn vectors(&self, texts: &[&str]) -> Vec<Sparse> {
        let mut unseen = HashMap::new();
        texts.iter().map(|t| self.vector(t, &mut unseen)).collect()
    }
}

/// The dot product of two sparse vectors (their cosine, as both are unit vectors).
pub fn sparse_dot(a: &Sparse, b: &Sparse) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// Entry `[i][j]` is the cosine of `a[i]` and `b[j]`.
pub fn sparse_cosines(a: &[Sparse], b: &[Sparse]) -> Vec<Vec<f32>> {
    a.iter().map(|x| b.iter().map(|y| sparse_dot(x, y)).collect()).collect()
}
