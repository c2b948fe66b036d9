//! Text data: loading a corpus, splitting it, and drawing batches of windows.
//!
//! - [`load_text`] reads any UTF-8 file, with a clear error for a missing file, an empty file
//!   and invalid UTF-8 (naming the byte offset).
//! - [`split`]: the first 90% of the tokens train and the last 10% validate, as nanoGPT's
//!   shakespeare_char does.
//! - [`Windows`]: a batch is B windows of T consecutive tokens, each starting at a uniformly
//!   random offset of the token stream. No `[CLS]`/`[SEP]` framing and no padding: every window is
//!   full length. The same seed gives the same batches.

use rand::Rng;
use std::path::Path;

/// Read a UTF-8 text file. Errors name the file and what is wrong with it.
///
/// ```
/// let e = microlm::data::load_text(std::path::Path::new("no/such/file.txt")).unwrap_err();
/// assert!(e.contains("no/such/file.txt"));
/// ```
pub fn load_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        format!(
            "{} is not valid UTF-8: invalid byte 0x{:02x} at byte offset {offset}",
            path.display(),
            e.as_bytes()[offset]
        )
    })
}

/// The first `train_fraction` of the tokens for training, the rest for validation (0.9 as in
/// nanoGPT's shakespeare_char).
pub fn split(ids: &[usize], train_fraction: f64) -> (&[usize], &[usize]) {
    assert!(
        (0.0..=1.0).contains(&train_fraction),
        "split: train_fraction {train_fraction} is not in [0, 1]"
    );
    let n = (ids.len() as f64 * train_fraction) as usize;
    ids.split_at(n)
}

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

    /// B windows, row after row: B * seq_len ids. Each starts at a uniform random offset in
    /// 0..=len - seq_len.
    pub fn batch(&self, batch: usize, rng: &mut impl Rng) -> Vec<usize> {
        let last_start = self.ids.len() - self.seq_len;
        let mut out = Vec::with_capacity(batch * self.seq_len);
        for _ in 0..batch {
            let start = rng.random_range(0..=last_start);
            out.extend_from_slice(&self.ids[start..start + self.seq_len]);
        }
        out
    }
}
