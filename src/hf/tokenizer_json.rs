//! microlm's tokenizers as a `tokenizer.json` that the Hugging Face `tokenizers` library reads
//! (and `transformers` through `PreTrainedTokenizerFast`), giving the same ids for the same
//! text, and back.
//!
//! - **Character tokenizer**: a BPE model with no merges. Its vocabulary is the five specials
//!   (ids 0-4) and one entry per character; with no pre-tokenizer and no merges, BPE cuts the
//!   text into characters and looks each up, an unknown one becoming `[UNK]`. The decoder
//!   `Fuse` joins the pieces without spaces.
//! - **Byte-level BPE**: GPT-2's byte-level form. Each byte is a printable character
//!   (`ByteLevel`'s byte-to-unicode table: the printable bytes stand for themselves, the others
//!   for U+0100 onwards in order), each merged id the concatenation of its two parts, and the
//!   merges in microlm's order (an earlier merge has priority, as in microlm's `encode`). The
//!   pre-tokenizer cuts the text as microlm's chunks do: a newline on its own (`Split` on "\n",
//!   isolated), a chunk starting at every space (`Split` on " ", merged with the next), then
//!   `ByteLevel` without its own regex.
//! - The specials are added tokens with `special: true`. One difference: `tokenizers` matches a
//!   special written in the text (the five characters `[MASK]` become the mask id, as a
//!   fill-mask pipeline wants), where microlm's encoders spell such text out.

use super::json::{first_difference, JsonFile};
use crate::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer, SPECIALS};
use serde_json::{json, Map, Value};

/// The character `ByteLevel` writes for byte `b`: printable bytes (`!` to `~`, U+00A1 to
/// U+00AC, U+00AE to U+00FF) stand for themselves; the other 68, in order, for U+0100 onwards.
pub fn byte_char(b: u8) -> char {
    let printable = |x: u8| (b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || x >= 0xAE;
    if printable(b) {
        return b as char;
    }
    let before = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + before).expect("below U+0200")
}

/// The token strings of `tokenizer`, by id (specials by name).
fn token_strings(tokenizer: &Tokenizer) -> Result<Vec<String>, String> {
    let mut tokens = vec![String::new(); tokenizer.vocab_size()];
    match tokenizer {
        Tokenizer::Char(t) => {
            for (i, c) in t.chars().iter().enumerate() {
                tokens[SPECIALS.len() + i] = c.to_string();
            }
        }
        Tokenizer::Bpe(t) => {
            for b in 0..=255u8 {
                tokens[b as usize] = byte_char(b).to_string();
            }
            for (i, &(left, right)) in t.merges().iter().enumerate() {
                tokens[256 + i] = format!("{}{}", tokens[left], tokens[right]);
            }
        }
        Tokenizer::Word(_) => {
            return Err("the word tokenizer (the shapes world's captions) has no tokenizer.json form here".into())
        }
    }
    for name in SPECIALS {
        tokens[tokenizer.special(name)] = name.to_string();
    }
    // tokenizer.json maps each string to one id: two ids for the same bytes cannot both live there.
    let mut seen = std::collections::HashMap::new();
    for (id, s) in tokens.iter().enumerate() {
        if let Some(other) = seen.insert(s.as_str(), id) {
            return Err(format!(
                "tokenizer: ids {other} and {id} both stand for {s:?}, and tokenizer.json's vocabulary maps \
                 each string to one id (train the BPE with another --bpe-vocab)"
            ));
        }
    }
    Ok(tokens)
}

/// The `tokenizer.json` document for `tokenizer`.
pub fn tokenizer_json(tokenizer: &Tokenizer) -> Result<Value, String> {
    let tokens = token_strings(tokenizer)?;
    let vocab: Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, s)| (s.clone(), json!(id)))
        .collect();
    let added: Vec<Value> = SPECIALS
        .iter()
        .map(|name| {
            json!({"id": tokenizer.special(name), "content": name, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false});
    let (merges, unk, pre_tokenizer, decoder) = match tokenizer {
        Tokenizer::Bpe(t) => {
            let merges: Vec<Value> = t.merges().iter().map(|&(l, r)| json!([tokens[l], tokens[r]])).collect();
            let split = |s: &str, behavior: &str| json!({"type": "Split", "pattern": {"String": s}, "behavior": behavior, "invert": false});
            let pre = json!({"type": "Sequence", "pretokenizers": [
                split("\n", "Isolated"), split(" ", "MergedWithNext"), byte_level.clone()]});
            (merges, Value::Null, pre, byte_level)
        }
        _ => (vec![], json!("[UNK]"), Value::Null, json!({"type": "Fuse"})),
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": decoder,
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    }))
}

/// `tokenizer_config.json`: which class reads `tokenizer.json`, the specials' names, and the
/// longest input the model takes.
pub fn tokenizer_config(max_len: usize) -> Value {
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_len,
        "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
        "mask_token": "[MASK]",
        "clean_up_tokenization_spaces": false,
    })
}

/// What decides the ids: the vocabulary, the merges as pairs, the pre-tokenizer and the
/// specials' ids (a file rewritten by `transformers` may differ in everything else).
fn essentials(doc: &Value) -> Value {
    let merges: Vec<Value> = doc["model"]["merges"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|pair| match pair.as_str().and_then(|s| s.split_once(' ')) {
                    Some((l, r)) => json!([l, r]), // the older "left right" form
                    None => pair.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let specials: Vec<Value> = doc["added_tokens"]
        .as_array()
        .map(|a| a.iter().map(|t| json!([t["id"], t["content"]])).collect())
        .unwrap_or_default();
    json!({"model": {"type": doc["model"]["type"], "vocab": doc["model"]["vocab"], "merges": merges,
                     "unk_token": doc["model"]["unk_token"]},
           "normalizer": doc["normalizer"], "pre_tokenizer": doc["pre_tokenizer"], "added_tokens": specials})
}

/// Read back a `tokenizer.json` that [`tokenizer_json`] wrote (perhaps rewritten by
/// `transformers`): the character tokenizer or the byte-level BPE. Anything else is refused,
/// naming the first field that differs from what microlm would write.
pub fn read_tokenizer(file: &JsonFile) -> Result<Tokenizer, String> {
    let doc = &file.value;
    let vocab = doc["model"]["vocab"]
        .as_object()
        .ok_or_else(|| format!("{}: model.vocab is not a map of tokens to ids", file.name))?;
    let mut by_id: Vec<(u64, &str)> = vocab
        .iter()
        .map(|(s, id)| (id.as_u64().unwrap_or(u64::MAX), s.as_str()))
        .collect();
    by_id.sort();
    let candidate = if doc["pre_tokenizer"].is_null() {
        // Characters: ids 5.. in order.
        let chars: String = by_id.iter().skip(SPECIALS.len()).map(|(_, s)| *s).collect();
        Tokenizer::Char(CharTokenizer::from_text(&chars))
    } else {
        // Byte-level BPE: each merge's two parts, by their ids.
        let id_of = |s: &str| vocab.get(s).and_then(Value::as_u64).map(|id| id as usize);
        let mut merges = Vec::new();
        for (i, pair) in essentials(doc)["model"]["merges"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let (l, r) = (pair[0].as_str().unwrap_or(""), pair[1].as_str().unwrap_or(""));
            match (id_of(l), id_of(r)) {
                (Some(a), Some(b)) if a < 256 + i && b < 256 + i => merges.push((a, b)),
                _ => {
                    return Err(format!(
                        "{}: merge {i} ({l:?}, {r:?}) is not two earlier tokens",
                        file.name
                    ))
                }
            }
        }
        Tokenizer::Bpe(BpeTokenizer::from_merges(merges))
    };
    let want = essentials(&tokenizer_json(&candidate)?);
    match first_difference(&want, &essentials(doc), "") {
        None => Ok(candidate),
        Some(diff) => Err(format!(
            "{} is not a tokenizer microlm reads (its character tokenizer or its byte-level BPE): {diff}",
            file.name
        )),
    }
}
