//! A corpus: a UTF-8 text file, read with clear errors, and split into training and validation.
//!
//! - [`load_text`] reads any UTF-8 file, with a clear error for a missing file, an empty file
//!   and invalid UTF-8 (naming the byte offset).
//! - [`split`]: the first 90% of the tokens train and the last 10% validate, as nanoGPT's
//!   shakespeare_char does.
//! - [`fingerprint`]: a short digest of a text, stored in checkpoints so that a run is never
//!   resumed on another corpus.

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
