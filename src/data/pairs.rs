//! Sentence pairs for next-sentence prediction (NSP, BERT) and sentence-order prediction (SOP,
//! ALBERT), built as BERT's `create_instances_from_document` builds them (`docs/objectives.md`
//! §2 and §2b), with two changes that keep the signal in the pair: segments are whole
//! sentences, and a NotNext segment comes from another play.
//!
//! 1. Per document, a target length T = n_max - 3, replaced with probability 0.1 by a length
//!    drawn uniformly from {2, ..., n_max - 3} (BERT draws it once per document; so do we).
//! 2. Sentences go into a chunk until its length reaches T or the document ends.
//! 3. a_end ~ uniform{1, ..., |chunk| - 1} (1 for a one-sentence chunk); A is the chunk's first
//!    a_end sentences.
//! 4. NSP: with a one-sentence chunk, or else with probability 0.5, the pair is NotNext: B
//!    starts at a uniformly drawn sentence of a uniformly drawn document *of another play* and
//!    takes whole sentences until |B| >= T - |A| (or that document ends); the chunk's unused
//!    sentences go back into the stream. Otherwise the pair is IsNext and B is the rest of the
//!    chunk.
//!    SOP: a one-sentence chunk makes no pair; B is the rest of the chunk, and with
//!    probability 0.5 (drawn after step 5) A and B swap places: NotNext, "B does not follow A".
//! 5. While |A| + |B| > n_max - 3, one whole *sentence* comes off the longer segment (B on a
//!    tie): off A's front or B's back, so the junction between A and B is never touched. No
//!    sentence may be longer than (n_max - 3) / 2 tokens (`plays::word_pieces` cuts longer ones
//!    between words), so the longer segment always has a sentence to spare.
//! 6. The model reads `[CLS] A [SEP] B [SEP]`; segment ids are 0 through the first `[SEP]`,
//!    1 after.
//!
//! BERT trims one token at a time from a random end (so an IsNext B can start mid-word) and
//! draws NotNext from any other document; on Tiny Shakespeare that left NSP at its word-overlap
//! baseline (NOTES.md §11.4).

use super::batch::Batch;
use super::documents::Document;
use crate::tokenizer::SpecialIds;
use rand::Rng;
use std::collections::BTreeMap;
use std::ops::Range;

/// Which pair task the pairs are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairTask {
    /// Next-sentence prediction: NotNext B from another play.
    Nsp,
    /// Sentence-order prediction: NotNext is the two segments of one chunk, swapped.
    Sop,
}

impl PairTask {
    /// "nsp" or "sop".
    pub fn name(self) -> &'static str {
        match self {
            PairTask::Nsp => "nsp",
            PairTask::Sop => "sop",
        }
    }
}

/// Whether B followed A in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NspLabel {
    /// B is the text after A (class 0).
    IsNext,
    /// B is not the text after A (class 1): from another play (NSP), or the text *before* A (SOP).
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

/// Where a segment came from: a document and a run of its sentences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The document's index.
    pub document: usize,
    /// The sentences, as indices into the document's.
    pub sentences: Range<usize>,
}

/// One pair, with where its segments came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// Segment A's ids: the sentences of `a_span`.
    pub a: Vec<usize>,
    /// Segment B's ids: the sentences of `b_span`.
    pub b: Vec<usize>,
    /// IsNext or NotNext.
    pub label: NspLabel,
    /// Where A came from (after trimming).
    pub a_span: Span,
    /// Where B came from (after trimming).
    pub b_span: Span,
    /// Whether step 5 took any sentence off.
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

/// The pairs of every document for `task`, in document order; `plays[d]` is document d's play.
/// Errors: `n_max` below 5 (too short for `[CLS] A [SEP] B [SEP]`), a sentence longer than
/// (n_max - 3) / 2 tokens, `plays` of the wrong length, NSP with fewer than two plays, or no
/// pair at all.
pub fn make_pairs(
    documents: &[Document],
    plays: &[usize],
    n_max: usize,
    task: PairTask,
    rng: &mut impl Rng,
) -> Result<Vec<Pair>, String> {
    if n_max < 5 {
        return Err(format!(
            "sentence pairs: n_max = {n_max} cannot hold [CLS] A [SEP] B [SEP] with |A|, |B| >= 1 (needs at least 5)"
        ));
    }
    if plays.len() != documents.len() {
        return Err(format!(
            "sentence pairs: {} play ids for {} documents",
            plays.len(),
            documents.len()
        ));
    }
    let max_sentence = (n_max - 3) / 2;
    for (d, doc) in documents.iter().enumerate() {
        if let Some(s) = doc.sentences.iter().position(|s| s.len() > max_sentence) {
            return Err(format!(
                "sentence pairs: sentence {s} of document {d} has {} tokens, more than (n_max - 3) / 2 = {max_sentence}; cut long sentences between words first (plays::word_pieces)",
                doc.sentences[s].len()
            ));
        }
    }
    // The documents of every other play, for NotNext draws.
    let mut by_play: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (d, &p) in plays.iter().enumerate() {
        by_play.entry(p).or_default().push(d);
    }
    if task == PairTask::Nsp && by_play.len() < 2 {
        return Err(format!(
            "sentence pairs: next-sentence prediction draws NotNext from another play, but the text has {} play(s)",
            by_play.len()
        ));
    }
    let others: BTreeMap<usize, Vec<usize>> = by_play
        .keys()
        .map(|&p| (p, (0..documents.len()).filter(|&d| plays[d] != p).collect()))
        .collect();
    let mut pairs = Vec::new();
    for d in 0..documents.len() {
        document_pairs(documents, d, &others[&plays[d]], n_max, task, rng, &mut pairs);
    }
    if pairs.is_empty() {
        return Err("sentence pairs: no document has a chunk of two sentences".to_string());
    }
    Ok(pairs)
}

/// Steps 1-5 over document `d`, appending its pairs; `others` are the documents of other plays.
fn document_pairs(
    documents: &[Document],
    d: usize,
    others: &[usize],
    n_max: usize,
    task: PairTask,
    rng: &mut impl Rng,
    out: &mut Vec<Pair>,
) {
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
        i += 1;
        (chunk_start, chunk_len) = (i, 0);
        if task == PairTask::Sop && chunk.len() == 1 {
            continue; // SOP needs two segments from the chunk
        }
        let a_end = chunk.start
            + if chunk.len() >= 2 {
                rng.random_range(1..chunk.len())
            } else {
                1
            }; // step 3
        let a = Span {
            document: d,
            sentences: chunk.start..a_end,
        };
        let is_next = task == PairTask::Sop || (chunk.len() > 1 && rng.random::<f64>() >= 0.5);
        let b = if is_next {
            Span {
                document: d,
                sentences: a_end..chunk.end,
            }
        } else {
            // Step 4, NotNext: B from a document of another play; the unused sentences go back.
            let other = others[rng.random_range(0..others.len())];
            let theirs = &documents[other].sentences;
            let start = rng.random_range(0..theirs.len());
            let target_b = target.saturating_sub(length(documents, &a));
            let (mut end, mut len) = (start, 0);
            while end < theirs.len() && (end == start || len < target_b) {
                len += theirs[end].len();
                end += 1;
            }
            (i, chunk_start) = (a_end, a_end);
            Span {
                document: other,
                sentences: start..end,
            }
        };
        let (a, b, trimmed) = trim_spans(documents, a, b, max_tokens); // step 5
                                                                       // SOP: a coin, drawn after trimming, swaps the two segments.
        let swapped = task == PairTask::Sop && rng.random::<f64>() < 0.5;
        let label = if is_next && !swapped {
            NspLabel::IsNext
        } else {
            NspLabel::NotNext
        };
        let (a, b) = if swapped { (b, a) } else { (a, b) };
        out.push(Pair {
            a: ids(documents, &a),
            b: ids(documents, &b),
            label,
            a_span: a,
            b_span: b,
            trimmed,
        });
    }
}

/// A span's length in tokens.
fn length(documents: &[Document], span: &Span) -> usize {
    documents[span.document].sentences[span.sentences.clone()]
        .iter()
        .map(Vec::len)
        .sum()
}

/// A span's ids, its sentences run together.
fn ids(documents: &[Document], span: &Span) -> Vec<usize> {
    documents[span.document].sentences[span.sentences.clone()].concat()
}

/// Step 5: while |A| + |B| > `max_tokens`, one whole sentence comes off the longer span (B on a
/// tie), off A's front or B's back. Returns A, B and whether anything came off. Panics if the
/// longer span is down to one sentence, which [`make_pairs`]'s check on sentence lengths rules
/// out.
pub fn trim_spans(documents: &[Document], mut a: Span, mut b: Span, max_tokens: usize) -> (Span, Span, bool) {
    let mut trimmed = false;
    loop {
        let (len_a, len_b) = (length(documents, &a), length(documents, &b));
        if len_a + len_b <= max_tokens {
            return (a, b, trimmed);
        }
        trimmed = true;
        let longer = if len_a > len_b {
            &mut a.sentences
        } else {
            &mut b.sentences
        };
        assert!(
            longer.len() >= 2,
            "trim_spans: a one-sentence segment of more than max_tokens / 2 tokens"
        );
        if len_a > len_b {
            longer.start += 1; // off A's front
        } else {
            longer.end -= 1; // off B's back
        }
    }
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
