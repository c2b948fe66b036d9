//! Scoring a denoiser's reconstructions: the character error rate and the exact-match rate,
//! and the identity baseline they are compared with.
//!
//! - **Character error rate**: CER = edit(hypothesis, reference) / |reference|, where edit is
//!   the Levenshtein distance over characters (the fewest insertions, deletions and
//!   substitutions turning one into the other) and |reference| counts characters. Over a set,
//!   the edits are summed and divided by the summed lengths, so long documents weigh more.
//! - **Exact match**: the share of documents reconstructed character for character.
//! - **Identity baseline**: the corrupted input itself, its masks and special tokens removed,
//!   scored the same way. It is what a model that copies its input would score, so a model that
//!   learned anything must beat it.

/// Levenshtein distance between `a` and `b`, over characters, by the two-row dynamic program:
/// `d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + (a_i != b_j))`.
///
/// ```
/// use microlm::objectives::reconstruction::edit_distance;
/// assert_eq!(edit_distance("kitten", "sitting"), 3);
/// assert_eq!(edit_distance("", "abc"), 3);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect(); // d[0][j] = j
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1; // d[i][0] = i
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Sums over (hypothesis, reference) pairs, turned into rates at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReconstructionScore {
    /// Summed edit distances.
    pub edits: usize,
    /// Summed reference lengths, in characters.
    pub characters: usize,
    /// Documents reproduced exactly.
    pub exact: usize,
    /// Documents scored.
    pub documents: usize,
}

impl ReconstructionScore {
    /// Score one hypothesis against its reference.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        self.edits += edit_distance(hypothesis, reference);
        self.characters += reference.chars().count();
        self.exact += usize::from(hypothesis == reference);
        self.documents += 1;
    }

    /// Summed edits over summed reference characters (0 when nothing was scored).
    pub fn cer(&self) -> f64 {
        if self.characters == 0 {
            0.0
        } else {
            self.edits as f64 / self.characters as f64
        }
    }

    /// Share of documents reproduced exactly (0 when nothing was scored).
    pub fn exact_match(&self) -> f64 {
        if self.documents == 0 {
            0.0
        } else {
            self.exact as f64 / self.documents as f64
        }
    }
}

/// The ids left after dropping every id in `remove` (masks, sentinels, BOS, EOS): the
/// identity baseline's text, before decoding.
pub fn without(ids: &[usize], remove: impl Fn(usize) -> bool) -> Vec<usize> {
    ids.iter().copied().filter(|&id| !remove(id)).collect()
}

/// Which characters of `reference` an optimal alignment with `hypothesis` matches: the
/// Levenshtein table of [`edit_distance`] in full, then a walk back from its corner that takes a
/// match (equal characters, no cost) wherever one lies on an optimal path, else a substitution,
/// else a deletion from the hypothesis, else a skipped reference character. `true` at reference
/// character j if an equal hypothesis character is aligned to it.
///
/// ```
/// use microlm::objectives::reconstruction::aligned_matches;
/// assert_eq!(aligned_matches("ac", "abc"), vec![true, false, true]); // b is missing
/// assert_eq!(aligned_matches("axc", "abc"), vec![true, false, true]); // b is wrong
/// ```
pub fn aligned_matches(hypothesis: &str, reference: &str) -> Vec<bool> {
    let (a, b): (Vec<char>, Vec<char>) = (hypothesis.chars().collect(), reference.chars().collect());
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1]; // d[i][j]: edits from a[..i] to b[..j]
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        d[i][0] = i;
        for j in 1..=m {
            let substitute = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = substitute.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    let mut matched = vec![false; m];
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let equal = a[i - 1] == b[j - 1];
        if d[i][j] == d[i - 1][j - 1] + usize::from(!equal) {
            matched[j - 1] = equal;
            (i, j) = (i - 1, j - 1);
        } else if d[i][j] == d[i - 1][j] + 1 {
            i -= 1; // a hypothesis character with no partner
        } else {
            j -= 1; // a reference character left out
        }
    }
    matched
}

/// Counts for "the characters the noise hid, restored exactly": a reference character is
/// **hidden** if the alignment of the identity text (the corrupted input, masks removed) does
/// not match it, and **restored** by a text whose alignment does. Only the noises that remove
/// or mask text hide characters; a permutation or rotation hides some too, by moving them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Restored {
    /// Hidden reference characters.
    pub hidden: usize,
    /// Of them, matched in the model's reconstruction.
    pub by_model: usize,
}

impl Restored {
    /// Add one document: its reference, its identity text and the model's reconstruction.
    pub fn add(&mut self, reference: &str, identity: &str, hypothesis: &str) {
        let seen = aligned_matches(identity, reference);
        let written = aligned_matches(hypothesis, reference);
        for (&s, &w) in seen.iter().zip(&written) {
            self.hidden += usize::from(!s);
            self.by_model += usize::from(!s && w);
        }
    }

    /// The share of hidden characters restored (0 when none were hidden).
    pub fn share(&self) -> f64 {
        self.by_model as f64 / self.hidden.max(1) as f64
    }
}

/// Does `text` give `sentences` in their order? Each sentence of `text` (cut by `split`) is
/// assigned the nearest of `sentences` by edit distance (the first on a tie); the order is
/// recovered if that gives 0, 1, ..., k - 1 exactly.
///
/// ```
/// use microlm::objectives::reconstruction::order_recovered;
/// let split = |t: &str| t.split_inclusive('.').map(str::to_string).collect::<Vec<_>>();
/// let s = ["Ab cd.".to_string(), " Ef gh.".to_string()];
/// assert!(order_recovered("Ab cx. Ef gh.", &s, split)); // a typo does not matter
/// assert!(!order_recovered(" Ef gh.Ab cd.", &s, split));
/// ```
pub fn order_recovered(text: &str, sentences: &[String], split: impl Fn(&str) -> Vec<String>) -> bool {
    let order: Vec<usize> = split(text)
        .iter()
        .map(|piece| {
            (0..sentences.len())
                .min_by_key(|&i| edit_distance(piece, &sentences[i]))
                .unwrap_or(0)
        })
        .collect();
    order.len() == sentences.len() && order.iter().enumerate().all(|(i, &k)| i == k)
}

/// Does `text` begin where `reference` begins: are its first `n` characters the reference's
/// (all of it, if the reference is shorter)? The measure of document rotation: a model that
/// found the rotation point starts its output at the true beginning.
pub fn starts_like(text: &str, reference: &str, n: usize) -> bool {
    let head: String = reference.chars().take(n).collect();
    text.starts_with(&head)
}
