//! Tokenizers: text to ids and back.
//!
//! - [`CharTokenizer`]: one id per character seen in the training text, after five special
//!   tokens with fixed ids.
//! - [`BpeTokenizer`]: byte-level byte-pair encoding trained from scratch, in the manner of
//!   karpathy/minbpe.

pub mod bpe;
pub mod char;

pub use bpe::BpeTokenizer;
pub use char::CharTokenizer;

/// The special tokens, in id order for [`CharTokenizer`] (ids 0 to 4).
pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/// Padding.
pub const PAD: usize = 0;
/// An unknown character.
pub const UNK: usize = 1;
/// Start of a sequence (BERT's classification token).
pub const CLS: usize = 2;
/// Separator between segments.
pub const SEP: usize = 3;
/// A masked position, for masked language modelling.
pub const MASK: usize = 4;
