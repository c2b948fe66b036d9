//! A batch of token ids: what the data stage hands out and every model takes.

/// B sequences of T token ids (row-major), with optional per-sequence lengths (positions at or
/// past a sequence's length are padding) and optional segment ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// B * T ids, sequence after sequence.
    pub ids: Vec<usize>,
    /// B
    pub batch: usize,
    /// T
    pub seq_len: usize,
    /// Real length of each sequence, if some are padded.
    pub lengths: Option<Vec<usize>>,
    /// B * T segment (token type) ids, if the model uses them.
    pub segments: Option<Vec<usize>>,
}

impl Batch {
    /// B sequences of T ids, none padded. Panics if `ids` does not hold B * T ids.
    pub fn new(ids: Vec<usize>, batch: usize, seq_len: usize) -> Batch {
        assert!(
            ids.len() == batch * seq_len,
            "Batch: {} ids do not make {batch} sequences of {seq_len}",
            ids.len()
        );
        Batch {
            ids,
            batch,
            seq_len,
            lengths: None,
            segments: None,
        }
    }

    /// Mark sequence b's positions at or past `lengths[b]` as padding.
    pub fn with_lengths(mut self, lengths: Vec<usize>) -> Batch {
        assert!(
            lengths.len() == self.batch,
            "Batch: {} lengths for {} sequences",
            lengths.len(),
            self.batch
        );
        if let Some(&bad) = lengths.iter().find(|&&l| l > self.seq_len) {
            panic!("Batch: length {bad} exceeds the sequence length {}", self.seq_len);
        }
        self.lengths = Some(lengths);
        self
    }

    /// Attach segment ids, one per token.
    pub fn with_segments(mut self, segments: Vec<usize>) -> Batch {
        assert!(
            segments.len() == self.ids.len(),
            "Batch: {} segment ids for {} tokens",
            segments.len(),
            self.ids.len()
        );
        self.segments = Some(segments);
        self
    }

    /// The real length of sequence b: its entry in `lengths`, or T when nothing is padded.
    pub fn length(&self, b: usize) -> usize {
        self.lengths.as_ref().map_or(self.seq_len, |l| l[b])
    }

    /// Sequences `start..end` as a batch of their own, padded only to the longest of them:
    /// every position cut off was padding in each of them, so each sequence reads the same.
    pub fn rows(&self, start: usize, end: usize) -> Batch {
        assert!(
            start < end && end <= self.batch,
            "Batch::rows: {start}..{end} of {} sequences",
            self.batch
        );
        let t = (start..end).map(|b| self.length(b)).max().unwrap_or(1).max(1);
        let cut = |v: &[usize]| -> Vec<usize> {
            (start..end)
                .flat_map(|b| v[b * self.seq_len..b * self.seq_len + t].iter().copied())
                .collect()
        };
        let mut out = Batch::new(cut(&self.ids), end - start, t);
        if let Some(lengths) = &self.lengths {
            out = out.with_lengths(lengths[start..end].to_vec());
        }
        if let Some(segments) = &self.segments {
            out = out.with_segments(cut(segments));
        }
        out
    }

    /// Sequence b's ids, padding included: `ids[b T .. (b + 1) T]`.
    pub fn row(&self, b: usize) -> &[usize] {
        &self.ids[b * self.seq_len..(b + 1) * self.seq_len]
    }
}
