//! Whole-word text infilling (fairseq's `--mask-whole-words`): BART's text infilling
//! (`bart_noise.rs`) with words, not tokens, as the unit. The budget is ⌈p·W⌉ of the W words of
//! the body, the span lengths are Poisson(λ) **words** ([`span_lengths`]), every span starts at
//! a word's first token and ends just before a word's first token, and a span of length 0 puts
//! its `<mask>` just before a word (or before EOS). So a gap never splits a word: with the
//! character tokenizer the model must write whole words back, which a language model can guess
//! from the sentence, rather than the missing letters of a word it can half see.
//!
//! A word is a token that begins one ([`word_starts`]) and the tokens up to the next such
//! token, so the whitespace after a word belongs to it: in `to be`, the words are `to ` and
//! `be`. fairseq's GPT-2 words are the other way round (a word's first token carries the space
//! before it, `Ġbe`); [`Spacing`] finds both kinds of word start, so the BPE's tokens that carry
//! a leading space start words too.
//!
//! Counting in words, as fairseq does, keeps the budget and the spans in the unit that is
//! hidden; the share of characters hidden then stays the share of words hidden (about 27% at
//! p = 0.3 and λ = 3 once overlaps are taken out, as for tokens in `tests/bart_noise.rs`; checked
//! for words in `tests/whole_words.rs`).

use super::span_lengths::{share_count, span_lengths};
use rand::seq::index;
use rand::Rng;

/// How a token's text meets whitespace: what [`word_starts`] reads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spacing {
    /// The text is all whitespace (a space, a newline).
    pub blank: bool,
    /// The text begins with whitespace (a BPE token such as ` the`).
    pub leading: bool,
    /// The text ends with whitespace.
    pub trailing: bool,
}

impl Spacing {
    /// The spacing of one token's text; an empty text is none of the three.
    pub fn of(text: &str) -> Spacing {
        Spacing {
            blank: !text.is_empty() && text.chars().all(char::is_whitespace),
            leading: text.starts_with(char::is_whitespace),
            trailing: text.ends_with(char::is_whitespace),
        }
    }
}

/// The body positions (1 to n) of the framed `doc` at which a word begins: a token that is not
/// all whitespace, and is the body's first, or follows a token ending in whitespace, or begins
/// with whitespace itself. Error: a body id with no entry in `spacing` (indexed by id).
pub fn word_starts(doc: &[usize], spacings: &[Spacing]) -> Result<Vec<usize>, String> {
    let n = doc.len().saturating_sub(2);
    let spacing = |id: usize| {
        spacings.get(id).copied().ok_or_else(|| {
            format!(
                "whole-word masking: token id {id} has no spacing (the noise ids know {} ids)",
                spacings.len()
            )
        })
    };
    let mut starts = Vec::new();
    for i in 1..=n {
        let here = spacing(doc[i])?;
        if !here.blank && (i == 1 || here.leading || spacing(doc[i - 1])?.trailing) {
            starts.push(i);
        }
    }
    Ok(starts)
}

/// Spans of whole words `(first word, words)` as spans of tokens `(start, length)` of a
/// document whose words begin at `starts` (ascending body positions) and whose EOS is at `eos`:
/// word k runs from `starts[k]` to just before `starts[k + 1]` (the last word to EOS). A span
/// of 0 words at word k (k = `starts.len()`: before EOS) stays a span of 0 tokens there. The
/// deterministic core of [`whole_word_spans`].
pub fn word_spans_to_tokens(starts: &[usize], eos: usize, spans: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let at = |k: usize| starts.get(k).copied().unwrap_or(eos);
    spans
        .iter()
        .map(|&(k, words)| match words {
            0 => (at(k), 0),
            _ => (at(k), at(k + words) - at(k)),
        })
        .collect()
}

/// The token spans of whole-word text infilling on the framed `doc`: span lengths in words for
/// a budget of ⌈p·W⌉ words; every span of length ≥ 1 gets its own first word (distinct, as in
/// fairseq), every span of length 0 a gap before a word or before EOS. `bart_noise.rs` hands
/// them to `infill_spans`. A body with no word gets no span. Error: a body id with no spacing
/// ([`word_starts`]).
pub fn whole_word_spans(
    doc: &[usize],
    p: f64,
    lambda: f64,
    spacing: &[Spacing],
    rng: &mut impl Rng,
) -> Result<Vec<(usize, usize)>, String> {
    let starts = word_starts(doc, spacing)?;
    let words = starts.len();
    let lengths = span_lengths(share_count(p, words), lambda, rng);
    let long: Vec<usize> = lengths.iter().copied().filter(|&l| l > 0).collect();
    let empty = lengths.len() - long.len();
    let mut spans: Vec<(usize, usize)> = index::sample(rng, words, long.len()).into_iter().zip(long).collect();
    for _ in 0..empty {
        spans.push((rng.random_range(0..=words), 0));
    }
    Ok(word_spans_to_tokens(&starts, doc.len() - 1, &spans))
}
