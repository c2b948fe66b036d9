//! BART's noise functions (`docs/objectives.md` §5a): how a document is corrupted before the
//! encoder reads it, so that the decoder can learn to write the original back.
//!
//! A document is framed `BOS body EOS` ([`frame`]); BOS and EOS are never touched. With n the
//! number of body tokens, [`corrupt`] applies the noise in BART's order:
//!
//! 1. **Sentence permutation** ([`permute_sentences`]): ⌈permute·#sentences⌉ sentences, chosen at
//!    random, are shuffled among their own places.
//! 2. At most one corruption of the body ([`Masking`]):
//!    - token masking ([`mask_tokens`]): ⌈p·n⌉ tokens become `<mask>`;
//!    - token deletion ([`delete_tokens`]): ⌈p·n⌉ tokens are removed;
//!    - text infilling ([`text_infilling`]): span lengths ℓ ~ Poisson(λ), cut off at
//!      [`MAX_SPAN`], are drawn until they add up to B = ⌈p·n⌉ ([`span_lengths`]); each span is
//!      replaced by a **single** `<mask>` ([`infill_spans`]), so the model must also work out how
//!      many tokens are missing, and a span of length 0 inserts a `<mask>`;
//!    - whole-word text infilling (`whole_words.rs`): the same with words as the unit.
//! 3. **Insertion** ([`insert_tokens`]): ⌈insert·n⌉ new `<mask>`s at random places in the body.
//! 4. **Document rotation** ([`rotate`]), with probability `rotate`: the body starts at a random
//!    token and wraps around.
//! 5. **Random replacement** ([`randomize_masks`]): every `<mask>` written above becomes, with
//!    probability `mask_random`, a random ordinary token.
//!
//! The default, [`BartNoise::default`], is BART-large: text infilling with p = 0.3 and λ = 3, and
//! every sentence permuted.
//!
//! Sources: the BART paper (Lewis et al. 2019), §2.2 for the five noise functions and §5.1 for
//! BART-large's choice; `fairseq/data/denoising_dataset.py` (facebookresearch/fairseq) for the
//! details. Our choices, where we differ from fairseq:
//! - **Tokens, unless asked for words.** `Masking::Spans` counts tokens: with the character
//!   tokenizer a span is a few characters, often a piece of a word. `Masking::Words` counts
//!   whole words, as fairseq's `mask_whole_word`.
//! - **⌈p·n⌉ in exact arithmetic** ([`share_count`]): 0.07·100 is 7.000000000000001 in f64, and
//!   a plain `ceil` would add an eighth token.
//! - **Random replacements come from the ordinary ids** ([`NoiseIds::random`]), in one last pass
//!   over the masks. Every mask decides on its own, which is fairseq's distribution except in two
//!   details: with `keep_length` fairseq decides once per span, and of z inserted masks it turns
//!   exactly ⌈z·mask_random⌉.
//! - **Zero-length spans** take a random gap of the document before the spans are applied; fairseq
//!   inserts them afterwards, at distinct places of the shortened document. With `keep_length` a
//!   span of ℓ tokens writes ℓ masks, so a zero-length span writes none and the length never
//!   changes (the spec's rule); fairseq still inserts its masks.
//! - **Insertion counts body tokens** only; fairseq's count includes BOS and EOS.
//!
//! As in fairseq, the spans of text infilling have distinct starts but may overlap: a start that
//! falls inside another span's tail is removed with that tail. So with p = 0.3 on 1,000 tokens,
//! about 100 spans are drawn but they cover only about 267 tokens and leave about 82 `<mask>`s
//! (`tests/bart_noise.rs` derives both figures).

pub use super::span_lengths::{share_count, span_length_pmf, span_lengths, MAX_SPAN};
pub use super::whole_words::{whole_word_spans, Spacing};
use rand::seq::{index, SliceRandom};
use rand::Rng;

/// How the tokens of the body are corrupted (step 2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Masking {
    /// Not at all.
    Off,
    /// Token masking: ⌈p·n⌉ body tokens become `<mask>`.
    Tokens,
    /// Token deletion: ⌈p·n⌉ body tokens are removed.
    Delete,
    /// Text infilling (fairseq's `span-poisson`): spans whose lengths add up to ⌈p·n⌉.
    Spans {
        /// The mean λ of the Poisson the span lengths come from (BART: 3).
        lambda: f64,
        /// false: each span becomes one `<mask>` (fairseq's `replace_length=1`); true: each token
        /// of a span becomes its own `<mask>` and the length does not change (`replace_length=-1`).
        keep_length: bool,
    },
    /// Whole-word text infilling (fairseq's `--mask-whole-words`, `whole_words.rs`).
    Words {
        /// The mean λ of the Poisson the span lengths, in words, come from.
        lambda: f64,
        /// As for `Spans`: one `<mask>` per span (false) or per token (true).
        keep_length: bool,
    },
}

/// The settings of BART's noise; every share is a number in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct BartNoise {
    /// The share p of body tokens that masking, deletion or infilling corrupts (BART-large: 0.3).
    pub p: f64,
    /// Which corruption of the body.
    pub masking: Masking,
    /// The probability that a `<mask>` becomes a random ordinary token instead (BART: 0).
    pub mask_random: f64,
    /// The share of sentences shuffled (BART-large: 1, all of them).
    pub permute: f64,
    /// ⌈insert·n⌉ new `<mask>`s are put into the body (BART: 0).
    pub insert: f64,
    /// The probability of rotating the document (BART-large: 0; fairseq's task default: 0.5).
    pub rotate: f64,
}

impl Default for BartNoise {
    /// BART-large: text infilling with p = 0.3 and λ = 3, and every sentence permuted.
    fn default() -> Self {
        BartNoise {
            p: 0.3,
            masking: Masking::Spans {
                lambda: 3.0,
                keep_length: false,
            },
            mask_random: 0.0,
            permute: 1.0,
            insert: 0.0,
            rotate: 0.0,
        }
    }
}

impl BartNoise {
    /// An error naming the first setting out of range: a share outside [0, 1] (NaN included), or
    /// a λ that is not positive and finite.
    pub fn validate(&self) -> Result<(), String> {
        let shares = [
            ("p", self.p),
            ("mask_random", self.mask_random),
            ("permute", self.permute),
            ("insert", self.insert),
            ("rotate", self.rotate),
        ];
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("bart noise: {name} = {value} is outside [0, 1]"));
            }
        }
        if let Masking::Spans { lambda, .. } | Masking::Words { lambda, .. } = self.masking {
            if !(lambda > 0.0 && lambda.is_finite()) {
                return Err(format!("bart noise: lambda = {lambda} must be positive and finite"));
            }
        }
        Ok(())
    }
}

/// The ids the noise needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseIds {
    /// Begins every document.
    pub bos: usize,
    /// Ends every document.
    pub eos: usize,
    /// `<mask>`.
    pub mask: usize,
    /// The ordinary (non-special) ids; a random replacement is drawn uniformly from them.
    pub random: Vec<usize>,
    /// Each id's [`Spacing`] (indexed by id), which whole-word masking reads to find words;
    /// the other noises ignore it (empty is fine for them).
    pub spacing: Vec<Spacing>,
}

/// The original document, the target: `BOS`, the sentences one after another, `EOS`.
pub fn frame(sentences: &[Vec<usize>], ids: &NoiseIds) -> Vec<usize> {
    let mut doc = vec![ids.bos];
    for sentence in sentences {
        doc.extend_from_slice(sentence);
    }
    doc.push(ids.eos);
    doc
}

/// The corrupted document, the source: `BOS body' EOS`, from a document given as its sentences
/// (none empty, none holding BOS, EOS or `<mask>`). Bad settings and bad input are errors that
/// name the setting or the sentence (counting from 0).
pub fn corrupt(
    sentences: &[Vec<usize>],
    noise: &BartNoise,
    ids: &NoiseIds,
    rng: &mut impl Rng,
) -> Result<Vec<usize>, String> {
    noise.validate()?;
    check_input(sentences, noise, ids)?;
    let sentences = permute_sentences(sentences, noise.permute, rng);
    let doc = frame(&sentences, ids);
    let doc = match noise.masking {
        Masking::Off => doc,
        Masking::Tokens => mask_tokens(&doc, noise.p, ids.mask, rng),
        Masking::Delete => delete_tokens(&doc, noise.p, rng),
        Masking::Spans { lambda, keep_length } => text_infilling(&doc, noise.p, lambda, keep_length, ids.mask, rng),
        Masking::Words { lambda, keep_length } => {
            let spans = whole_word_spans(&doc, noise.p, lambda, &ids.spacing, rng)?;
            infill_spans(&doc, &spans, ids.mask, keep_length)
        }
    };
    let mut doc = insert_tokens(&doc, noise.insert, ids.mask, rng);
    if noise.rotate > 0.0 && rng.random::<f64>() < noise.rotate {
        doc = random_rotation(&doc, rng);
    }
    Ok(randomize_masks(&doc, noise.mask_random, ids, rng))
}

/// The input errors [`corrupt`] refuses: an empty sentence, a special id in the text (the last
/// pass could not tell a `<mask>` of the text from one the noise wrote), no ids to draw random
/// replacements from, or a special among them.
fn check_input(sentences: &[Vec<usize>], noise: &BartNoise, ids: &NoiseIds) -> Result<(), String> {
    let specials = [ids.bos, ids.eos, ids.mask];
    for (i, sentence) in sentences.iter().enumerate() {
        if sentence.is_empty() {
            return Err(format!("bart noise: sentence {i} is empty"));
        }
        if let Some(id) = sentence.iter().find(|id| specials.contains(id)) {
            return Err(format!("bart noise: sentence {i} holds the special id {id}"));
        }
    }
    if noise.mask_random > 0.0 && ids.random.is_empty() {
        return Err("bart noise: mask_random > 0 but there are no random ids to draw from".to_string());
    }
    if let Some(id) = ids.random.iter().find(|id| specials.contains(id)) {
        return Err(format!("bart noise: the random ids include the special id {id}"));
    }
    Ok(())
}

/// Step 1: ⌈p·#sentences⌉ sentences, chosen uniformly, are shuffled among their own places; the
/// others stay where they are (fairseq's `permute_sentences`).
pub fn permute_sentences(sentences: &[Vec<usize>], p: f64, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let places = index::sample(rng, sentences.len(), share_count(p, sentences.len())).into_vec();
    let mut comers = places.clone();
    comers.shuffle(rng);
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    for (&place, &comer) in places.iter().zip(&comers) {
        order[place] = comer;
    }
    order.iter().map(|&i| sentences[i].clone()).collect()
}

/// The number n of body tokens of a framed document; panics if it is not framed.
fn body_len(doc: &[usize]) -> usize {
    assert!(
        doc.len() >= 2,
        "bart noise: a framed document holds BOS and EOS, got {} ids",
        doc.len()
    );
    doc.len() - 2
}

/// ⌈p·n⌉ distinct body positions of `doc` (indices 1 to n), drawn uniformly.
fn pick_body_tokens(doc: &[usize], p: f64, rng: &mut impl Rng) -> Vec<usize> {
    let n = body_len(doc);
    index::sample(rng, n, share_count(p, n))
        .into_iter()
        .map(|i| i + 1)
        .collect()
}

/// Token masking: ⌈p·n⌉ body tokens of the framed `doc`, chosen uniformly, become `mask`.
pub fn mask_tokens(doc: &[usize], p: f64, mask: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut out = doc.to_vec();
    for i in pick_body_tokens(doc, p, rng) {
        out[i] = mask;
    }
    out
}

/// Token deletion: ⌈p·n⌉ body tokens of the framed `doc`, chosen uniformly, are removed.
pub fn delete_tokens(doc: &[usize], p: f64, rng: &mut impl Rng) -> Vec<usize> {
    delete_at(doc, &pick_body_tokens(doc, p, rng))
}

/// `doc` without the tokens at `positions`, which must be body positions (1 to n).
pub fn delete_at(doc: &[usize], positions: &[usize]) -> Vec<usize> {
    let n = body_len(doc);
    let mut gone = vec![false; doc.len()];
    for &i in positions {
        assert!(
            (1..=n).contains(&i),
            "delete_at: position {i} is not in the body 1..={n}"
        );
        gone[i] = true;
    }
    doc.iter()
        .enumerate()
        .filter(|&(i, _)| !gone[i])
        .map(|(_, &t)| t)
        .collect()
}

/// Text infilling on the framed `doc`: span lengths for a budget of ⌈p·n⌉ tokens; every span of
/// length ≥ 1 gets its own start in the body (distinct starts, as in fairseq), every span of
/// length 0 a gap (before a body token, or before EOS); then [`infill_spans`].
pub fn text_infilling(
    doc: &[usize],
    p: f64,
    lambda: f64,
    keep_length: bool,
    mask: usize,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let n = body_len(doc);
    let lengths = span_lengths(share_count(p, n), lambda, rng);
    let long: Vec<usize> = lengths.iter().copied().filter(|&l| l > 0).collect();
    let empty = lengths.len() - long.len();
    let starts = index::sample(rng, n, long.len()).into_iter().map(|i| i + 1);
    let mut spans: Vec<(usize, usize)> = starts.zip(long).collect();
    for _ in 0..empty {
        spans.push((rng.random_range(1..=n + 1), 0));
    }
    infill_spans(doc, &spans, mask, keep_length)
}

/// What text infilling does to one token of the document.
#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Keep,
    Mask,
    Drop,
}

/// Apply given spans `(start, length)` to the framed `doc`, the deterministic core of text
/// infilling. A span of length ℓ ≥ 1 starts at a body position and covers ℓ tokens, stopping at
/// EOS: its first token becomes `mask` and the rest are removed, or with `keep_length` become
/// `mask` too. A span of length 0 puts a `mask` just before the token at `start` (EOS allowed),
/// and with `keep_length` writes nothing. Spans may overlap: a start inside another span's tail
/// is removed with that tail, as in fairseq. BOS and EOS are never altered.
pub fn infill_spans(doc: &[usize], spans: &[(usize, usize)], mask: usize, keep_length: bool) -> Vec<usize> {
    let eos = body_len(doc) + 1;
    let mut fate = vec![Fate::Keep; doc.len()];
    let mut inserted = vec![0; doc.len()]; // masks written just before each token
    for &(start, length) in spans {
        let last = if length == 0 { eos } else { eos - 1 };
        assert!(
            (1..=last).contains(&start),
            "infill_spans: a span of length {length} cannot start at {start} (allowed: 1..={last})"
        );
        if length == 0 && !keep_length {
            inserted[start] += 1;
        } else if length > 0 {
            fate[start] = Fate::Mask;
        }
    }
    let tail = if keep_length { Fate::Mask } else { Fate::Drop };
    for &(start, length) in spans.iter().filter(|&&(_, length)| length > 0) {
        for f in &mut fate[start + 1..(start + length).min(eos)] {
            *f = tail;
        }
    }
    let mut out = Vec::with_capacity(doc.len() + spans.len());
    for (i, &token) in doc.iter().enumerate() {
        out.extend(std::iter::repeat_n(mask, inserted[i]));
        match fate[i] {
            Fate::Keep => out.push(token),
            Fate::Mask => out.push(mask),
            Fate::Drop => {}
        }
    }
    out
}

/// Step 3: ⌈ratio·n⌉ new `mask` tokens at distinct random places among the body slots of the
/// longer document, as fairseq's `add_insertion_noise` places them; the old tokens keep their
/// order around them.
pub fn insert_tokens(doc: &[usize], ratio: f64, mask: usize, rng: &mut impl Rng) -> Vec<usize> {
    let count = share_count(ratio, body_len(doc));
    // Distinct slots 1 to len - 2 of the longer document: never BOS's or EOS's.
    let mut slots = index::sample(rng, doc.len() + count - 2, count).into_vec();
    slots.sort_unstable();
    let mut out = doc.to_vec();
    for slot in slots {
        out.insert(slot + 1, mask); // left to right, so each lands at its final place
    }
    out
}

/// Step 4: document rotation by `offset`, in 1 to `doc.len() - 1`: `BOS, x[offset..EOS),
/// x[1..offset), EOS`. Both ends, offset 1 and offset `doc.len() - 1`, leave the document
/// unchanged.
pub fn rotate(doc: &[usize], offset: usize) -> Vec<usize> {
    let eos = body_len(doc) + 1;
    assert!(
        (1..=eos).contains(&offset),
        "rotate: offset {offset} is outside 1..={eos}"
    );
    let mut out = vec![doc[0]];
    out.extend_from_slice(&doc[offset..eos]);
    out.extend_from_slice(&doc[1..offset]);
    out.push(doc[eos]);
    out
}

/// [`rotate`] by an offset drawn uniformly from 1 to `doc.len() - 1`, as fairseq draws it.
pub fn random_rotation(doc: &[usize], rng: &mut impl Rng) -> Vec<usize> {
    let eos = body_len(doc) + 1;
    rotate(doc, rng.random_range(1..=eos))
}

/// Step 5: each `ids.mask` in `doc` becomes, with probability `share`, a token drawn uniformly
/// from `ids.random`. Draws nothing when `share` is 0.
pub fn randomize_masks(doc: &[usize], share: f64, ids: &NoiseIds, rng: &mut impl Rng) -> Vec<usize> {
    let mut out = doc.to_vec();
    for token in &mut out {
        if share > 0.0 && *token == ids.mask && rng.random::<f64>() < share {
            *token = ids.random[rng.random_range(0..ids.random.len())];
        }
    }
    out
}
