//! Sentence pairs for next-sentence prediction, built as BERT's `create_instances_from_document`
//! builds them (`docs/objectives.md` §2):
//!
//! 1. Per document, a target length T = n_max - 3, replaced with probability 0.1 by a length
//!    drawn uniformly from {2, ..., n_max - 3} (BERT draws it once per document; so do we).
//! 2. Sentences go into a chunk until its length reaches T or the document ends.
//! 3. a_end ~ uniform{1, ..., |chunk| - 1} (1 for a one-sentence chunk); A is the chunk's first
//!    a_end sentences.
//! 4. With a one-sentence chunk, or else with probability 0.5, the pair is NotNext: B starts at
//!    a uniformly drawn sentence of a uniformly drawn *other* document and takes consecutive
//!    sentences until |B| >= T - |A| (or that document ends); the chunk's unused sentences go
//!    back into the stream. Otherwise the pair is IsNext and B is the rest of the chunk.
//! 5. While |A| + |B| > n_max - 3, one token comes off the longer segment (B on a tie), from
//!    the front or the back by a coin.
//! 6. The model reads `[CLS] A [SEP] B [SEP]`; segment ids are 0 through the first `[SEP]`,
//!    1 after.

use super::batch::Batch;
use super::documents::Document;
use crate::tokenizer::SpecialIds;
use rand::Rng;

/// Whether B followed A in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NspLabel {
    /// B is the text after A (class 0).
    IsNext,
    /// B comes from another document (class 1).
    NotNext,
}

impl NspLabel {
    /// The class index: 0 for IsNext, 1 for NotNext (BERT's convention).
    pub fn class(self) -> usize {
        match self {
            NspLabel::IsNext => 0,
            NspLabel::NotNext => 1,
        }
    }
}

/// One pair, with where its segments came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// Segment A's ids (after trimming).
    pub a: Vec<usize>,
    /// Segment B's ids (after trimming).
    pub b: Vec<usize>,
    /// IsNext or NotNext.
    pub label: NspLabel,
    /// The document A came from.
    pub a_document: usize,
    /// The document and first sentence B came from.
    pub b_source: (usize, usize),
    /// The index of A's last sentence in its document.
    pub a_last_sentence: usize,
    /// Whether step 5 took any token off.
    pub trimmed: bool,
}

impl Pair {
    /// `[CLS] A [SEP] B [SEP]` and its segment ids.
    pub fn tokens(&self, specials: &SpecialIds) -> (Vec<usize>, Vec<usize>) {
        let mut ids = vec![specials.cls];
        ids.extend(&self.a);
        ids.push(specials.sep);
        let first = ids.len(); // segment 0 runs through the first [SEP]
        ids.extend(&self.b);
        ids.push(specials.sep);
        let segments = (0..ids.len()).map(|i| usize::from(i >= first)).collect();
        (ids, segments)
    }
}

/// Probability that a document's target length is drawn short (BERT's `short_seq_prob`).
pub const SHORT_SEQ_PROB: f64 = 0.1;

/// The pairs of every document, in document order. Errors: fewer than two documents (NotNext
/// needs another one), or `n_max` below 5, too short for `[CLS] A [SEP] B [SEP]` with |A|, |B| >= 1.
pub fn make_pairs(documents: &[Document], n_max: usize, rng: &mut impl Rng) -> Result<Vec<Pair>, String> {
    if n_max < 5 {
        return Err(format!(
            "sentence pairs: n_max = {n_max} cannot hold [CLS] A [SEP] B [SEP] with |A|, |B| >= 1 (needs at least 5)"
        ));
    }
    if documents.len() < 2 {
        return Err(format!(
            "sentence pairs: next-sentence prediction needs at least 2 documents, the text has {}",
            documents.len()
        ));
    }
    let mut pairs = Vec::new();
    for d in 0..documents.len() {
        document_pairs(documents, d, n_max, rng, &mut pairs);
    }
    Ok(pairs)
}

/// Steps 1-5 over document `d`, appending its pairs.
fn document_pairs(documents: &[Document], d: usize, n_max: usize, rng: &mut impl Rng, out: &mut Vec<Pair>) {
    let sentences = &documents[d].sentences;
    let max_tokens = n_max - 3;
    let mut target = max_tokens; // step 1
    if rng.random::<f64>() < SHORT_SEQ_PROB {
        target = rng.random_range(2..=max_tokens);
    }
    let (mut chunk_start, mut chunk_len) = (0, 0);
    let mut i = 0;
    while i < sentences.len() {
        chunk_len += sentences[i].len(); // step 2
        if i + 1 < sentences.len() && chunk_len < target {
            i += 1;
            continue;
        }
        let chunk = chunk_start..i + 1;
        let a_end = if chunk.len() >= 2 {
            rng.random_range(1..chunk.len())
        } else {
            1
        }; // step 3
        let a: Vec<usize> = sentences[chunk.start..chunk.start + a_end].concat();
        let a_last_sentence = chunk.start + a_end - 1;
        let (b, label, b_source) = if chunk.len() == 1 || rng.random::<f64>() < 0.5 {
            // Step 4, NotNext: B from another document; the unused sentences go back.
            let other = {
                let k = rng.random_range(0..documents.len() - 1);
                if k >= d {
                    k + 1
                } else {
                    k
                }
            };
            let theirs = &documents[other].sentences;
            let start = rng.random_range(0..theirs.len());
            let target_b = target.saturating_sub(a.len());
            let mut b = Vec::new();
            for s in &theirs[start..] {
                b.extend(s);
                if b.len() >= target_b {
                    break;
                }
            }
            i = a_last_sentence; // re-read the chunk's unused sentences
            (b, NspLabel::NotNext, (other, start))
        } else {
            let b = sentences[chunk.start + a_end..chunk.end].concat();
            (b, NspLabel::IsNext, (d, chunk.start + a_end))
        };
        let (a, b, trimmed) = trim_pair(a, b, max_tokens, rng); // step 5
        out.push(Pair {
            a,
            b,
            label,
            a_document: d,
            b_source,
            a_last_sentence,
            trimmed,
        });
        i += 1;
        chunk_start = i;
        chunk_len = 0;
    }
}

/// Step 5: while |A| + |B| > `max_tokens`, take one token off the longer segment (B on a tie),
/// from the front or the back by a coin. Returns A, B and whether anything came off.
pub fn trim_pair(
    mut a: Vec<usize>,
    mut b: Vec<usize>,
    max_tokens: usize,
    rng: &mut impl Rng,
) -> (Vec<usize>, Vec<usize>, bool) {
    let trimmed = a.len() + b.len() > max_tokens;
    while a.len() + b.len() > max_tokens {
        let longer = if a.len() > b.len() { &mut a } else { &mut b };
        if rng.random::<f64>() < 0.5 {
            longer.remove(0);
        } else {
            longer.pop();
        }
    }
    (a, b, trimmed)
}

/// A batch of pairs: `[CLS] A [SEP] B [SEP]` padded to n_max with `[PAD]`, with lengths,
/// segment ids (0 on padding), and the labels.
#[derive(Clone, Debug)]
pub struct PairBatch {
    /// B rows of n_max ids.
    pub x: Batch,
    /// One label per row.
    pub labels: Vec<NspLabel>,
}

/// Pack `pairs` into one padded batch of rows of `n_max`.
pub fn pair_batch(pairs: &[&Pair], n_max: usize, specials: &SpecialIds) -> PairBatch {
    let (mut ids, mut segments, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for pair in pairs {
        let (row, seg) = pair.tokens(specials);
        assert!(
            row.len() <= n_max,
            "pair_batch: a pair of {} tokens exceeds n_max = {n_max}",
            row.len()
        );
        lengths.push(row.len());
        ids.extend(&row);
        ids.extend(std::iter::repeat_n(specials.pad, n_max - row.len()));
        segments.extend(&seg);
        segments.extend(std::iter::repeat_n(0, n_max - row.len()));
    }
    PairBatch {
        x: Batch::new(ids, pairs.len(), n_max)
            .with_lengths(lengths)
            .with_segments(segments),
        labels: pairs.iter().map(|p| p.label).collect(),
    }
}

/// `batch` pairs drawn uniformly (with replacement) from `pairs`.
pub fn random_pair_batch(
    pairs: &[Pair],
    batch: usize,
    n_max: usize,
    specials: &SpecialIds,
    rng: &mut impl Rng,
) -> PairBatch {
    let chosen: Vec<&Pair> = (0..batch).map(|_| &pairs[rng.random_range(0..pairs.len())]).collect();
    pair_batch(&chosen, n_max, specials)
}
