//! Tokenizers: text to ids and back.
//!
//! - [`CharTokenizer`]: one id per character seen in the training text, after five special
//!   tokens with fixed ids.
//! - [`BpeTokenizer`]: byte-level byte-pair encoding trained from scratch, in the manner of
//!   karpathy/minbpe.
//! - [`WordTokenizer`]: one id per word of a given closed vocabulary (the shapes world's
//!   captions), after the same five specials.
//! - [`Tokenizer`]: the one interface all three share (encode, decode, vocabulary size, which ids are
//!   special, checkpoint metadata), so the objectives never ask which tokenizer they have.

pub mod bpe;
pub mod char;
pub mod word;

pub use bpe::BpeTokenizer;
pub use char::CharTokenizer;
pub use word::WordTokenizer;

/// The special tokens, in id order for [`CharTokenizer`] and [`WordTokenizer`] (ids 0 to 4).
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

use std::collections::BTreeMap;

/// Where the five special tokens sit in a vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialIds {
    /// `[PAD]`
    pub pad: usize,
    /// `[UNK]`
    pub unk: usize,
    /// `[CLS]`
    pub cls: usize,
    /// `[SEP]`
    pub sep: usize,
    /// `[MASK]`
    pub mask: usize,
}

impl SpecialIds {
    /// True if `id` is one of the five.
    pub fn contains(&self, id: usize) -> bool {
        [self.pad, self.unk, self.cls, self.sep, self.mask].contains(&id)
    }
}

/// Any of the tokenizers, for programs that let the user choose (`--tokenizer char|bpe`), with its
/// vocabulary stored as checkpoint metadata so a checkpoint carries the tokenizer it was trained
/// with.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokenizer {
    /// One id per character.
    Char(CharTokenizer),
    /// Byte-level BPE.
    Bpe(BpeTokenizer),
    /// One id per word of a closed vocabulary.
    Word(WordTokenizer),
}

impl Tokenizer {
    /// Text to ids.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        match self {
            Tokenizer::Char(t) => t.encode(text),
            Tokenizer::Bpe(t) => t.encode(text),
            Tokenizer::Word(t) => t.encode(text),
        }
    }

    /// Ids to text.
    pub fn decode(&self, ids: &[usize]) -> String {
        match self {
            Tokenizer::Char(t) => t.decode(ids),
            Tokenizer::Bpe(t) => t.decode(ids),
            Tokenizer::Word(t) => t.decode(ids),
        }
    }

    /// One token as a reader should see it: [`Tokenizer::decode`] of it alone, except that a
    /// BPE token holding part of a multi-byte character shows those bytes as `<0xNN>`
    /// ([`BpeTokenizer::token_text`]) instead of U+FFFD.
    pub fn token_text(&self, id: usize) -> String {
        match self {
            Tokenizer::Bpe(t) => t.token_text(id),
            _ => self.decode(&[id]),
        }
    }

    /// Number of ids, specials included.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char(t) => t.vocab_size(),
            Tokenizer::Bpe(t) => t.vocab_size(),
            Tokenizer::Word(t) => t.vocab_size(),
        }
    }

    /// The id of a special token, by its name in [`SPECIALS`] (e.g. `"[MASK]"`).
    pub fn special(&self, name: &str) -> usize {
        let k = SPECIALS
            .iter()
            .position(|s| *s == name)
            .unwrap_or_else(|| panic!("Tokenizer::special: '{name}' is not one of {SPECIALS:?}"));
        match self {
            Tokenizer::Char(_) | Tokenizer::Word(_) => k,
            Tokenizer::Bpe(t) => t.special(k),
        }
    }

    /// The five special ids as a list (`[PAD]` `[UNK]` `[CLS]` `[SEP]` `[MASK]`): never text a
    /// model should write, so every sampler and every argmax that produces text bans them
    /// ([`crate::generate::argmax_excluding`], [`crate::generate::Settings::banned`]).
    pub fn special_ids(&self) -> Vec<usize> {
        let s = self.specials();
        vec![s.pad, s.unk, s.cls, s.sep, s.mask]
    }

    /// The ids of all five special tokens.
    pub fn specials(&self) -> SpecialIds {
        SpecialIds {
            pad: self.special("[PAD]"),
            unk: self.special("[UNK]"),
            cls: self.special("[CLS]"),
            sep: self.special("[SEP]"),
            mask: self.special("[MASK]"),
        }
    }

    /// `"char"`, `"bpe"` or `"word"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Tokenizer::Char(_) => "char",
            Tokenizer::Bpe(_) => "bpe",
            Tokenizer::Word(_) => "word",
        }
    }

    /// `tokenizer.kind` and the vocabulary (`tokenizer.chars`; `tokenizer.merges` as
    /// "left right" pairs separated by commas; or `tokenizer.words` separated by single spaces).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        match self {
            Tokenizer::Char(t) => {
                m.insert("tokenizer.kind".into(), "char".into());
                m.insert("tokenizer.chars".into(), t.chars().iter().collect());
            }
            Tokenizer::Bpe(t) => {
                m.insert("tokenizer.kind".into(), "bpe".into());
                let merges: Vec<String> = t.merges().iter().map(|(a, b)| format!("{a} {b}")).collect();
                m.insert("tokenizer.merges".into(), merges.join(","));
            }
            Tokenizer::Word(t) => {
                m.insert("tokenizer.kind".into(), "word".into());
                m.insert("tokenizer.words".into(), t.words().join(" "));
            }
        }
        m
    }

    /// Rebuild what [`Tokenizer::to_metadata`] stored; the error names the missing or bad field.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Tokenizer, String> {
        let field = |k: &str| m.get(k).ok_or_else(|| format!("no '{k}' in the metadata"));
        match field("tokenizer.kind")?.as_str() {
            "char" => Ok(Tokenizer::Char(CharTokenizer::from_text(field("tokenizer.chars")?))),
            "bpe" => {
                let mut merges = Vec::new();
                for (i, pair) in field("tokenizer.merges")?
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .enumerate()
                {
                    let ids: Vec<usize> = pair.split(' ').filter_map(|t| t.parse().ok()).collect();
                    match ids[..] {
                        [a, b] if a < 256 + i && b < 256 + i => merges.push((a, b)),
                        _ => return Err(format!("tokenizer.merges: merge {i} '{pair}' is not two known ids")),
                    }
                }
                Ok(Tokenizer::Bpe(BpeTokenizer::from_merges(merges)))
            }
            "word" => {
                let words: Vec<&str> = field("tokenizer.words")?.split(' ').filter(|w| !w.is_empty()).collect();
                let tok = WordTokenizer::try_new(&words).map_err(|e| format!("tokenizer.words: {e}"))?;
                Ok(Tokenizer::Word(tok))
            }
            other => Err(format!("tokenizer.kind '{other}' is not 'char', 'bpe' or 'word'")),
        }
    }
}
