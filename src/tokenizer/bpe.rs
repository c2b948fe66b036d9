//! Byte-level byte-pair encoding, trained from scratch (Sennrich et al., 2016). The idea and the
//! shape of the code come from karpathy/minbpe; the chunking and the tie-break below are ours.
//!
//! - Ids 0..256 are the bytes, so every string encodes, whatever its characters.
//! - **Chunks.** The text's bytes are first cut into chunks, and no pair is ever counted or merged
//!   across two chunks. A new chunk starts at every space and at every newline, and also right
//!   after every newline. So a space stays at the front of the word that follows it (`" word"`),
//!   and each newline is a chunk of its own: `"To be,\n or"` gives `"To"`, `" be,"`, `"\n"`,
//!   `" or"`. No other byte (tab, `\r`, punctuation) cuts. minbpe's `BasicTokenizer` does not cut
//!   at all; its `RegexTokenizer` cuts with the GPT-2 / GPT-4 regular expression. This rule is a
//!   much simpler cut in the same spirit: a merge never glues the end of one word to the next.
//! - **Training** counts each distinct chunk once, weighted by how often it occurs in the text.
//!   Then, for new ids 256, 257, ... in turn: count every adjacent pair of ids inside the chunks
//!   (weighted), take the most frequent pair, and replace its occurrences in every chunk by the
//!   new id, scanning left to right without overlap (`a a a` with the pair `(a, a)` becomes
//!   `X a`). It stops at the requested vocabulary size, or earlier when no chunk has two ids left.
//! - **Tie-break.** Among pairs with the same count, the smallest pair wins: the smaller first id,
//!   then the smaller second id. So training is deterministic. (minbpe takes the pair it met
//!   first in the text.)
//! - **Encoding** cuts the text into chunks the same way. In each chunk it repeatedly finds, among
//!   the adjacent pairs present, the one whose merge was learned earliest (the lowest new id), and
//!   replaces all its occurrences, until no learned pair is left. Merges are applied in the order
//!   they were learned, as in minbpe's `encode`.
//! - The five specials `[PAD] [UNK] [CLS] [SEP] [MASK]` take the last five ids. Merges never
//!   produce them and `encode` never emits them: text that reads `"[MASK]"` is encoded as bytes.
//! - decode(encode(s)) == s for every string; decoding an arbitrary id sequence that splits a
//!   multi-byte character yields U+FFFD there.
//!
//! ```
//! use microlm::tokenizer::BpeTokenizer;
//! let tok = BpeTokenizer::train("aaab aaab aaab", 256 + 2 + 5); // two merges
//! // "aa" (6 times) first; then "aa"+"a" and "a"+"b" tie at 3 and the smaller pair wins.
//! assert_eq!(tok.merges(), &[(97, 97), (97, 98)]);
//! let ids = tok.encode("aaab");
//! assert_eq!(ids, vec![256, 257]);
//! assert_eq!(tok.decode(&ids), "aaab");
//! ```

use super::SPECIALS;
use std::collections::HashMap;
use std::path::Path;

/// A trained byte-level BPE; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct BpeTokenizer {
    /// Merge i joins merges[i].0 and merges[i].1 into id 256 + i.
    merges: Vec<(usize, usize)>,
    /// (left, right) -> the id they merge into; a lower id means an earlier (higher-priority) merge.
    ranks: HashMap<(usize, usize), usize>,
    /// The bytes each non-special id stands for.
    vocab: Vec<Vec<u8>>,
}

/// Cut bytes into chunks: a chunk starts at every space, at every newline, and right after every
/// newline (see the module docs).
fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        if bytes[i] == b' ' || bytes[i] == b'\n' || bytes[i - 1] == b'\n' {
            out.push(&bytes[start..i]);
            start = i;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

/// Replace every occurrence of `pair` in `ids` by `new_id`.
fn merge(ids: &[usize], pair: (usize, usize), new_id: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(ids.len());
    let mut i = 0;
    while i < ids.len() {
        if i + 1 < ids.len() && (ids[i], ids[i + 1]) == pair {
            out.push(new_id);
            i += 2;
        } else {
            out.push(ids[i]);
            i += 1;
        }
    }
    out
}

impl BpeTokenizer {
    /// Train on `text` until the vocabulary holds `vocab_size` ids: 256 bytes, the merges, and
    /// the 5 specials (so vocab_size - 261 merges). Stops early if no pair is left to merge.
    pub fn train(text: &str, vocab_size: usize) -> BpeTokenizer {
        let min = 256 + SPECIALS.len();
        assert!(
            vocab_size >= min,
            "BpeTokenizer::train: vocab_size {vocab_size} is below {min} (256 bytes + 5 specials)"
        );
        // Each distinct chunk once, with its count.
        let mut counts: HashMap<&[u8], usize> = HashMap::new();
        for c in chunks(text.as_bytes()) {
            *counts.entry(c).or_insert(0) += 1;
        }
        let mut words: Vec<(Vec<usize>, usize)> = counts
            .into_iter()
            .map(|(c, n)| (c.iter().map(|&b| b as usize).collect(), n))
            .collect();
        words.sort_unstable(); // a fixed order, so that nothing depends on the hash map's
        let mut tok = BpeTokenizer::from_merges(Vec::new());
        for new_id in 256..vocab_size - SPECIALS.len() {
            let mut pair_counts: HashMap<(usize, usize), usize> = HashMap::new();
            for (ids, n) in &words {
                for w in ids.windows(2) {
                    *pair_counts.entry((w[0], w[1])).or_insert(0) += n;
                }
            }
            // The most frequent pair; on a tie, the smallest pair.
            let Some((&pair, _)) = pair_counts
                .iter()
                .max_by(|(pa, ca), (pb, cb)| ca.cmp(cb).then(pb.cmp(pa)))
            else {
                break; // every chunk is a single token
            };
            for (ids, _) in words.iter_mut() {
                if ids.len() > 1 {
                    *ids = merge(ids, pair, new_id);
                }
            }
            tok.push_merge(pair);
        }
        tok
    }

    /// A tokenizer with the given merges, in order.
    pub fn from_merges(merges: Vec<(usize, usize)>) -> BpeTokenizer {
        let mut tok = BpeTokenizer {
            merges: Vec::new(),
            ranks: HashMap::new(),
            vocab: (0..=255u8).map(|b| vec![b]).collect(),
        };
        for pair in merges {
            tok.push_merge(pair);
        }
        tok
    }

    fn push_merge(&mut self, (a, b): (usize, usize)) {
        let new_id = self.vocab.len();
        let bytes = [self.vocab[a].as_slice(), self.vocab[b].as_slice()].concat();
        self.vocab.push(bytes);
        self.ranks.insert((a, b), new_id);
        self.merges.push((a, b));
    }

    /// The merges, in the order they were learned.
    pub fn merges(&self) -> &[(usize, usize)] {
        &self.merges
    }

    /// Bytes, merges and specials.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len() + SPECIALS.len()
    }

    /// The id of special token `k` (an index into [`SPECIALS`]): the last five ids.
    pub fn special(&self, k: usize) -> usize {
        assert!(k < SPECIALS.len(), "BpeTokenizer::special: no special number {k}");
        self.vocab.len() + k
    }

    /// Encode: cut into chunks, then in each chunk apply the earliest-learned merge that applies,
    /// again and again, until none does.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        let mut cache: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut out = Vec::with_capacity(text.len() / 2);
        for chunk in chunks(text.as_bytes()) {
            let ids = cache.entry(chunk).or_insert_with(|| {
                let mut ids: Vec<usize> = chunk.iter().map(|&b| b as usize).collect();
                while ids.len() > 1 {
                    let best = ids
                        .windows(2)
                        .filter_map(|w| self.ranks.get(&(w[0], w[1])).map(|&r| (r, (w[0], w[1]))))
                        .min();
                    let Some((new_id, pair)) = best else { break };
                    ids = merge(&ids, pair, new_id);
                }
                ids
            });
            out.extend_from_slice(ids);
        }
        out
    }

    /// Decode to text; specials are written as their names. Panics on an id outside the
    /// vocabulary, naming it.
    pub fn decode(&self, ids: &[usize]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(b) = self.vocab.get(id) {
                bytes.extend_from_slice(b);
            } else if let Some(name) = SPECIALS.get(id - self.vocab.len()) {
                bytes.extend_from_slice(name.as_bytes());
            } else {
                panic!(
                    "BpeTokenizer: id {id} is out of range for a vocabulary of {}",
                    self.vocab_size()
                );
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// One token as a reader should see it: its text, or, where its bytes are not whole UTF-8
    /// characters (a byte-level token holding part of "é" or "’"), those bytes as `<0xNN>`
    /// (`<0xE2><0x80>`) and the rest as text; [`BpeTokenizer::decode`] would print U+FFFD
    /// (�) for them. Specials are written as their names.
    pub fn token_text(&self, id: usize) -> String {
        let Some(bytes) = self.vocab.get(id) else {
            return self.decode(&[id]);
        };
        let mut out = String::new();
        for chunk in bytes.utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("<0x{b:02X}>"));
            }
        }
        out
    }

    /// Save as text: a header line, then one merge per line ("left right").
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut s = format!("microlm bpe v1\nmerges {}\n", self.merges.len());
        for (a, b) in &self.merges {
            s.push_str(&format!("{a} {b}\n"));
        }
        std::fs::write(path, s).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Load what [`BpeTokenizer::save`] wrote; an error names the file and the line.
    pub fn load(path: &Path) -> Result<BpeTokenizer, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let fail = |line: usize, what: &str| Err(format!("{} line {line}: {what}", path.display()));
        let mut lines = text.lines();
        if lines.next() != Some("microlm bpe v1") {
            return fail(1, "expected the header 'microlm bpe v1'");
        }
        let count = lines
            .next()
            .and_then(|l| l.strip_prefix("merges "))
            .and_then(|n| n.parse::<usize>().ok());
        let Some(count) = count else {
            return fail(2, "expected 'merges N'");
        };
        let mut merges = Vec::new(); // not with_capacity(count): the count is the file's word
        for (i, line) in lines.enumerate() {
            let line_no = i + 3;
            let pair: Vec<usize> = line.split(' ').filter_map(|t| t.parse().ok()).collect();
            let next_id = 256 + merges.len();
            match pair[..] {
                [a, b] if a < next_id && b < next_id => merges.push((a, b)),
                [_, _] => {
                    return fail(
                        line_no,
                        &format!("merge '{line}' uses an id not yet defined (below {next_id})"),
                    )
                }
                _ => return fail(line_no, &format!("expected two ids, got '{line}'")),
            }
        }
        if merges.len() != count {
            return fail(2, &format!("header says {count} merges, the file has {}", merges.len()));
        }
        Ok(BpeTokenizer::from_merges(merges))
    }
}
