//! Word-level tokenizer, for a closed vocabulary such as the shapes world's captions.
//!
//! Ids 0..5 are the specials `[PAD] [UNK] [CLS] [SEP] [MASK]`; ids 5.. are the given words in
//! the given order. Text is split on whitespace; a word outside the vocabulary encodes to
//! `[UNK]`, and a special's name (e.g. `[MASK]`) to its id, so decoding and encoding again
//! gives back the same ids.
//!
//! ```
//! use microlm::tokenizer::{WordTokenizer, MASK, UNK};
//! let tok = WordTokenizer::new(&["a", "red", "circle"]);
//! assert_eq!(tok.vocab_size(), 5 + 3);
//! let ids = tok.encode("a  red [MASK] hexagon");
//! assert_eq!(ids, vec![5, 6, MASK, UNK]); // "hexagon" is not a word of the vocabulary
//! assert_eq!(tok.decode(&ids), "a red [MASK] [UNK]");
//! ```

use super::{SPECIALS, UNK};
use std::collections::HashMap;

/// One id per word; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct WordTokenizer {
    /// words[i] has id SPECIALS.len() + i.
    words: Vec<String>,
    ids: HashMap<String, usize>,
}

impl WordTokenizer {
    /// The vocabulary `words`, in order, after the specials. Panics with the reason if a word
    /// is empty, holds whitespace, repeats, or is a special's name.
    pub fn new(words: &[&str]) -> WordTokenizer {
        WordTokenizer::try_new(words).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`WordTokenizer::new`], with the reason as an error instead of a panic.
    pub fn try_new(words: &[&str]) -> Result<WordTokenizer, String> {
        let mut ids: HashMap<String, usize> = SPECIALS.iter().enumerate().map(|(i, s)| (s.to_string(), i)).collect();
        for (i, &word) in words.iter().enumerate() {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(format!("WordTokenizer: word {i} {word:?} is empty or holds whitespace"));
            }
            if ids.insert(word.to_string(), SPECIALS.len() + i).is_some() {
                return Err(format!("WordTokenizer: word {i} {word:?} repeats a word or special"));
            }
        }
        let words = words.iter().map(|w| w.to_string()).collect();
        Ok(WordTokenizer { words, ids })
    }

    /// The words, in id order (the first has id 5).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Specials plus words.
    pub fn vocab_size(&self) -> usize {
        SPECIALS.len() + self.words.len()
    }

    /// One id per whitespace-separated word; unknown words become `[UNK]`.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        text.split_whitespace()
            .map(|w| self.ids.get(w).copied().unwrap_or(UNK))
            .collect()
    }

    /// The words of `ids`, one space between them; a special token is written as its name,
    /// e.g. `[MASK]`. Panics on an id outside the vocabulary, naming it.
    pub fn decode(&self, ids: &[usize]) -> String {
        let words: Vec<&str> = ids.iter().map(|&id| self.token(id)).collect();
        words.join(" ")
    }

    /// The text of one id.
    pub fn token(&self, id: usize) -> &str {
        match id.checked_sub(SPECIALS.len()) {
            None => SPECIALS[id],
            Some(i) => match self.words.get(i) {
                Some(w) => w,
                None => panic!(
                    "WordTokenizer: id {id} is out of range for a vocabulary of {}",
                    self.vocab_size()
                ),
            },
        }
    }
}
