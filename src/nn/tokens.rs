//! A batch of token ids as the stacks take it.

use crate::ops::AttentionMask;

/// B sequences of T token ids (row-major), with optional per-sequence lengths (positions at or
/// past a sequence's length are padding) and optional segment ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokens {
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

impl Tokens {
    /// B sequences of T ids, none padded. Panics if `ids` does not hold B * T ids.
    pub fn new(ids: Vec<usize>, batch: usize, seq_len: usize) -> Tokens {
        assert!(
            ids.len() == batch * seq_len,
            "Tokens: {} ids do not make {batch} sequences of {seq_len}",
            ids.len()
        );
        Tokens {
            ids,
            batch,
            seq_len,
            lengths: None,
            segments: None,
        }
    }

    /// Mark sequence b's positions at or past `lengths[b]` as padding.
    pub fn with_lengths(mut self, lengths: Vec<usize>) -> Tokens {
        assert!(
            lengths.len() == self.batch,
            "Tokens: {} lengths for {} sequences",
            lengths.len(),
            self.batch
        );
        if let Some(&bad) = lengths.iter().find(|&&l| l > self.seq_len) {
            panic!("Tokens: length {bad} exceeds the sequence length {}", self.seq_len);
        }
        self.lengths = Some(lengths);
        self
    }

    /// Attach segment ids, one per token.
    pub fn with_segments(mut self, segments: Vec<usize>) -> Tokens {
        assert!(
            segments.len() == self.ids.len(),
            "Tokens: {} segment ids for {} tokens",
            segments.len(),
            self.ids.len()
        );
        self.segments = Some(segments);
        self
    }

    /// The attention mask these tokens need: key padding from the lengths, plus causal if asked.
    pub fn attention_mask(&self, causal: bool) -> AttentionMask {
        AttentionMask {
            causal,
            key_lengths: self.lengths.clone(),
        }
    }
}
