//! Random windows of consecutive tokens: a batch is B windows of T tokens, each starting at a
//! uniformly random offset of the token stream. No `[CLS]`/`[SEP]` framing and no padding: every
//! window is full length. The same generator state gives the same batch.

use super::batch::Batch;
use rand::Rng;

/// Random windows of `seq_len` consecutive tokens from one token stream.
#[derive(Clone, Debug)]
pub struct Windows<'a> {
    ids: &'a [usize],
    seq_len: usize,
}

impl<'a> Windows<'a> {
    /// Windows of `seq_len` tokens over `ids`; `what` names the stream in the error when it is
    /// shorter than one window.
    pub fn new(ids: &'a [usize], seq_len: usize, what: &str) -> Result<Windows<'a>, String> {
        if seq_len == 0 {
            return Err("Windows: seq_len must be at least 1".into());
        }
        if ids.len() < seq_len {
            return Err(format!(
                "{what} has {} tokens, shorter than one training sequence of {seq_len}",
                ids.len()
            ));
        }
        Ok(Windows { ids, seq_len })
    }

    /// B windows as a [`Batch`] of B sequences of `seq_len` ids. Each starts at a uniform random
    /// offset in 0..=len - seq_len.
    pub fn batch(&self, batch: usize, rng: &mut impl Rng) -> Batch {
        let last_start = self.ids.len() - self.seq_len;
        let mut out = Vec::with_capacity(batch * self.seq_len);
        for _ in 0..batch {
            let start = rng.random_range(0..=last_start);
            out.extend_from_slice(&self.ids[start..start + self.seq_len]);
        }
        Batch::new(out, batch, self.seq_len)
    }

    /// Tokens per window, T.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }
}

/// Every token of `ids` as a next-token target exactly once: windows of `seq_len` tokens that
/// overlap by one (window w starts at w (seq_len - 1)), in batches of up to `rows` windows.
/// A window scores its tokens 1.., so together they score every token but the first; a tail
/// shorter than a window is left out.
///
/// ```
/// let ids: Vec<usize> = (0..10).collect();
/// let batches = microlm::data::windows::covering_batches(&ids, 4, 2);
/// assert_eq!(batches[0].ids, vec![0, 1, 2, 3, 3, 4, 5, 6]);
/// assert_eq!(batches[1].ids, vec![6, 7, 8, 9]); // one window in the last batch
/// ```
pub fn covering_batches(ids: &[usize], seq_len: usize, rows: usize) -> Vec<Batch> {
    assert!(
        seq_len >= 2 && rows >= 1,
        "covering_batches: seq_len >= 2 and rows >= 1"
    );
    let windows: Vec<&[usize]> = (0..)
        .map(|w| w * (seq_len - 1))
        .take_while(|&start| start + seq_len <= ids.len())
        .map(|start| &ids[start..start + seq_len])
        .collect();
    windows
        .chunks(rows)
        .map(|chunk| Batch::new(chunk.concat(), chunk.len(), seq_len))
        .collect()
}
