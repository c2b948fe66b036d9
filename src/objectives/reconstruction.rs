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
