//! A corpus: a UTF-8 text file, read with clear errors, and split into training and validation.
//!
//! - [`load_text`] reads any UTF-8 file, with a clear error for a missing file, an empty file
//!   and invalid UTF-8 (naming the byte offset).
//! - [`split`]: the first 90% of the tokens train and the last 10% validate, as nanoGPT's
//!   shakespeare_char does.
//! - [`Corpus`]: a corpus read, tokenized and split, ready to be cut into windows.
//! - [`fingerprint`]: a short digest of a text, stored in checkpoints so that a run is never
//!   resumed on another corpus.

use super::windows::Windows;
use crate::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
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

/// A 64-bit FNV-1a digest of the text's bytes and its length in bytes, as `"fnv1a64:<hex>:<len>"`.
/// Two different corpora give the same fingerprint only by a 2^-64 accident.
///
/// ```
/// use microlm::data::fingerprint;
/// assert_eq!(fingerprint(""), "fnv1a64:cbf29ce484222325:0"); // FNV-1a's offset basis
/// assert_ne!(fingerprint("to be"), fingerprint("to bee"));
/// ```
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a 64-bit offset basis
    for &byte in text.as_bytes() {
        h ^= byte as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3); // the FNV 64-bit prime
    }
    format!("fnv1a64:{h:016x}:{}", text.len())
}

/// A corpus read and tokenized: the tokenizer, and the first 90% and last 10% of its ids.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Characters, or BPE trained on the training split.
    pub tokenizer: Tokenizer,
    /// The first 90% of the ids.
    pub train: Vec<usize>,
    /// The last 10%.
    pub val: Vec<usize>,
    /// [`fingerprint`] of the corpus text, stored in checkpoints.
    pub fingerprint: String,
    /// The corpus file, for messages.
    pub name: String,
    /// Tokens per sequence.
    pub seq_len: usize,
}

impl Corpus {
    /// Read the text file at `path`, build the tokenizer (`"char"`, or `"bpe"` with `bpe_vocab`
    /// ids trained on the training 90% only), split the ids 90/10, and say what was read.
    /// Errors name the file, or the split too short for one sequence of `seq_len`.
    pub fn load(path: &Path, tokenizer: &str, bpe_vocab: usize, seq_len: usize) -> Result<Corpus, String> {
        let text = load_text(path)?;
        let chars = text.chars().count();
        let train_end = text.char_indices().nth(chars * 9 / 10).map_or(text.len(), |(i, _)| i);
        let tokenizer = match tokenizer {
            "char" => Tokenizer::Char(CharTokenizer::from_text(&text)),
            "bpe" => {
                println!("training a {bpe_vocab}-id BPE on the training split ...");
                Tokenizer::Bpe(BpeTokenizer::train(&text[..train_end], bpe_vocab))
            }
            other => return Err(format!("tokenizer {other:?}: expected char or bpe")),
        };
        let ids = tokenizer.encode(&text);
        let (train, val) = split(&ids, 0.9);
        let name = path.display().to_string();
        println!(
            "corpus {name}: {} tokens ({} train, {} validation), vocabulary {} ({})",
            ids.len(),
            train.len(),
            val.len(),
            tokenizer.vocab_size(),
            tokenizer.kind()
        );
        let (train, val) = (train.to_vec(), val.to_vec());
        let corpus = Corpus {
            tokenizer,
            train,
            val,
            fingerprint: fingerprint(&text),
            name,
            seq_len,
        };
        corpus.train_windows()?;
        corpus.val_windows()?;
        Ok(corpus)
    }

    /// Random training windows.
    pub fn train_windows(&self) -> Result<Windows<'_>, String> {
        Windows::new(&self.train, self.seq_len, &format!("the training 90% of {}", self.name))
    }

    /// Random validation windows.
    pub fn val_windows(&self) -> Result<Windows<'_>, String> {
        Windows::new(&self.val, self.seq_len, &format!("the validation 10% of {}", self.name))
    }
}
