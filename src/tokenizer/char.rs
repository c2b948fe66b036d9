//! Character-level tokenizer.
//!
//! Ids 0..5 are the specials `[PAD] [UNK] [CLS] [SEP] [MASK]`; ids 5.. are the distinct
//! characters of the training text in sorted order. A character not seen in training encodes
//! to `[UNK]`.
//!
//! ```
//! use microlm::tokenizer::{CharTokenizer, UNK};
//! let tok = CharTokenizer::from_text("hello");
//! assert_eq!(tok.vocab_size(), 5 + 4); // e, h, l, o
//! let ids = tok.encode("hole!");
//! assert_eq!(ids[4], UNK); // '!' was never seen
//! assert_eq!(tok.decode(&ids), "hole[UNK]");
//! ```

use super::{SPECIALS, UNK};
use std::collections::HashMap;

/// One id per character; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct CharTokenizer {
    /// chars[i] has id SPECIALS.len() + i.
    chars: Vec<char>,
    ids: HashMap<char, usize>,
}

impl CharTokenizer {
    /// The vocabulary of `text`: its distinct characters, sorted, after the specials.
    pub fn from_text(text: &str) -> CharTokenizer {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        let ids = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, SPECIALS.len() + i))
            .collect();
        CharTokenizer { chars, ids }
    }

    /// The characters, in id order (the first has id 5).
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Specials plus characters.
    pub fn vocab_size(&self) -> usize {
        SPECIALS.len() + self.chars.len()
    }

    /// One id per character; unseen characters become `[UNK]`.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        text.chars().map(|c| self.ids.get(&c).copied().unwrap_or(UNK)).collect()
    }

    /// The text of `ids`; a special token is written as its name, e.g. `[MASK]`. Panics on an
    /// id outside the vocabulary, naming it.
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter().map(|&id| self.token(id)).collect()
    }

    /// The text of one id.
    pub fn token(&self, id: usize) -> String {
        match id.checked_sub(SPECIALS.len()) {
            None => SPECIALS[id].to_string(),
            Some(i) => match self.chars.get(i) {
                Some(c) => c.to_string(),
                None => panic!(
                    "CharTokenizer: id {id} is out of range for a vocabulary of {}",
                    self.vocab_size()
                ),
            },
        }
    }
}
