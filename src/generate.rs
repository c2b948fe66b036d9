//! Autoregressive generation, from a decoder-only model or an encoder-decoder, with or without
//! a key/value cache.
//!
//! ## The loop
//!
//! Generating token t+1 needs the logits at position t. Without a cache, each step runs the
//! model's forward over the whole context. With one (`nn/kv_cache.rs`), the first step runs the
//! same forward over the prompt while filling the cache (a prefill), and each later step runs it
//! over the one new token at the next position, the layers reading the earlier positions' keys
//! and values from the cache. Either way it is the model's own forward: nothing here repeats a
//! layer. Generation runs one sequence (batch 1).
//!
//! An encoder-decoder first encodes its source once; the prompt then starts the target (for
//! example a start-of-sequence id), and each step decodes against the same encoding.
//!
//! ## The context window
//!
//! The positional table covers `config.max_len` positions. While the context fits, each new
//! token takes the next position. When the context is full (max_len tokens) and another token
//! must be added, generation slides: the last `max_len / 2` tokens (at least 1), the new one
//! included, become the new context at positions 0.., and the cache is rebuilt from them with
//! one full forward. Generation without a cache follows the same rule (its context is the
//! tokens since the last slide), so with and without the cache the model sees the same
//! contexts and draws the same tokens. A prompt longer than max_len is first cut to its last
//! max_len tokens; the context is then full and the first token added slides it.
//!
//! ## Sampling
//!
//! `Greedy` takes the argmax (ties go to the lower id) and draws nothing from the rng.
//! `Temperature(T)` samples from softmax(logits / T) over the whole vocabulary; `TopK` keeps the
//! k highest logits (ties broken by lower id) and samples from their softmax(logits / T). T must
//! be > 0 and k >= 1 (k above the vocabulary size means the whole vocabulary). A sample is one
//! uniform draw u in [0, 1) taken through the inverse CDF, computed in f64: the first candidate
//! (highest logit first) whose cumulative probability exceeds u. Runs that see the same logits
//! and the same rng therefore draw the same token. Banned ids (`Settings::banned`, e.g. the
//! tokenizer's special tokens) are left out before any of this, as if their logits were -inf.
//!
//! ## Streaming
//!
//! [`stream`] hands each token to a callback as soon as it is drawn and keeps nothing, so a
//! program can print as it goes and memory does not grow with the number of tokens (the
//! context and the cache never exceed max_len). [`generate`] collects the tokens and every
//! step's logits, for tests and analysis.

use crate::data::Batch;
use crate::nn::{Cache, Decoder, EncoderDecoder};
use crate::params::Params;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ndarray::Axis;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the next token is chosen from its logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// The argmax, ties to the lower id.
    Greedy,
    /// Sample from softmax(logits / T), T > 0.
    Temperature(f32),
    /// Sample from softmax(logits / T) restricted to the k highest logits, k >= 1, T > 0.
    TopK {
        /// How many candidates to keep.
        k: usize,
        /// T
        temperature: f32,
    },
}

impl Sampling {
    /// Check the settings; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let temperature = match *self {
            Sampling::Greedy => return Ok(()),
            Sampling::Temperature(t) => t,
            Sampling::TopK { k, temperature } => {
                if k == 0 {
                    return Err("sampling: top-k needs k >= 1, got k = 0".into());
                }
                temperature
            }
        };
        if temperature > 0.0 && temperature.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "sampling: temperature must be > 0 and finite, got {temperature}"
            ))
        }
    }

    /// Choose a token id from `logits` `[V]` (see the module docs for the rule).
    pub fn sample(&self, logits: &[f32], rng: &mut impl Rng) -> Result<usize, String> {
        self.sample_excluding(logits, &[], rng)
    }

    /// [`Sampling::sample`] as if the logits of the `banned` ids were -inf: they are never
    /// chosen, and the others keep their relative probabilities. Used to keep special tokens
    /// (`[PAD]`, `[MASK]`, ...) out of generated text. An error if every id is banned.
    pub fn sample_excluding(&self, logits: &[f32], banned: &[usize], rng: &mut impl Rng) -> Result<usize, String> {
        self.validate()?;
        let (k, temperature) = match *self {
            Sampling::Greedy => (1, 1.0),
            Sampling::Temperature(t) => (logits.len(), t),
            Sampling::TopK { k, temperature } => (k, temperature),
        };
        let candidates = top_ids_excluding(logits, k, banned);
        if candidates.is_empty() {
            return Err(format!(
                "sampling: no id left to draw ({} logits, {} banned)",
                logits.len(),
                banned.len()
            ));
        }
        if *self == Sampling::Greedy {
            return Ok(candidates[0]);
        }
        let t = temperature as f64;
        let z = |i: usize| logits[i] as f64 / t; // z_i = logit_i / T
        let z_max = z(candidates[0]); // subtracted for a stable exp
        let weights: Vec<f64> = candidates.iter().map(|&i| (z(i) - z_max).exp()).collect();
        let u = rng.random::<f64>() * weights.iter().sum::<f64>(); // u ~ U[0, Z)
        let mut cdf = 0.0;
        for (&id, w) in candidates.iter().zip(&weights) {
            cdf += w;
            if u < cdf {
                return Ok(id);
            }
        }
        Ok(*candidates.last().expect("k >= 1"))
    }
}

/// The ids of the k highest logits, highest first, ties to the lower id, leaving out `banned`.
pub fn top_ids_excluding(logits: &[f32], k: usize, banned: &[usize]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..logits.len()).filter(|i| !banned.contains(i)).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    ids.truncate(k.min(logits.len()));
    ids
}

/// The id of the highest logit that is not `banned` (ties to the lower id): the argmax every
/// piece of text a model writes goes through, with `banned` its tokenizer's
/// [`Tokenizer::special_ids`](crate::tokenizer::Tokenizer::special_ids). `None` if every id is
/// banned.
pub fn argmax_excluding(logits: &[f32], banned: &[usize]) -> Option<usize> {
    top_ids_excluding(logits, 1, banned).first().copied()
}

/// What generates: a decoder-only model, or an encoder-decoder with the source it reads.
#[derive(Clone, Copy, Debug)]
pub enum Model<'a> {
    /// GPT's shape: the prompt is the beginning of the text.
    Decoder(&'a Decoder),
    /// The encoder-decoder: `source` is encoded once, and the prompt begins the target.
    EncoderDecoder {
        /// The model.
        model: &'a EncoderDecoder,
        /// The source ids (at most max_len of them).
        source: &'a [usize],
    },
}

/// A model ready to give next-token logits: for an encoder-decoder, with its source encoded
/// (also the engine of `beam_search.rs`).
pub(crate) struct Runner<'a> {
    model: Model<'a>,
    params: &'a Params,
    /// The encoder's output for the source [1, S, D], and the source as a batch.
    memory: Option<(Tensor, Batch)>,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(model: Model<'a>, params: &'a Params) -> Runner<'a> {
        let memory = match model {
            Model::Decoder(_) => None,
            Model::EncoderDecoder { model, source } => {
                let source = Batch::new(source.to_vec(), 1, source.len());
                let mut tape = Tape::no_grad();
                let m = model.encode(&mut tape, params, &source, &mut no_dropout()); // [1, S, D]
                Some((tape.value(m).clone(), source))
            }
        };
        Runner { model, params, memory }
    }

    pub(crate) fn new_cache(&self) -> Cache {
        match self.model {
            Model::Decoder(d) => d.new_cache(),
            Model::EncoderDecoder { model, .. } => model.new_cache(),
        }
    }

    /// The model's forward over `ids` (after the cached positions, if a cache is given): the
    /// logits `[V]` of the last of them.
    pub(crate) fn logits(&self, ids: &[usize], cache: Option<&mut Cache>) -> Vec<f32> {
        let mut tape = Tape::no_grad();
        let x = Batch::new(ids.to_vec(), 1, ids.len());
        let logits = match (self.model, &self.memory) {
            (Model::Decoder(d), _) => d.forward_cached(&mut tape, self.params, &x, cache, &mut no_dropout()),
            (Model::EncoderDecoder { model, .. }, Some((memory, source))) => {
                let m = tape.constant(memory.clone());
                model.decode(&mut tape, self.params, m, source, &x, cache, &mut no_dropout())
            }
            (Model::EncoderDecoder { .. }, None) => unreachable!("encoded in Runner::new"),
        }; // [1, n, V]
        let last = tape.value(logits).index_axis(Axis(1), ids.len() - 1).to_owned();
        last.iter().copied().collect()
    }
}

/// A generator for the rng argument of a forward on a no-grad tape, where dropout is off and
/// never draws from it.
fn no_dropout() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// What [`generate`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generation {
    /// The new tokens, in order (the prompt not included).
    pub tokens: Vec<usize>,
    /// `logits[i]`: the logits `[V]` that `tokens[i]` was drawn from.
    pub logits: Vec<Vec<f32>>,
}

/// Check what [`generate`] is given; the error names the bad input.
pub(crate) fn check_inputs(model: Model, prompt: &[usize]) -> Result<(), String> {
    let (config, segments) = match model {
        Model::Decoder(d) => (&d.config, d.stack.embed.segment.is_some()),
        Model::EncoderDecoder { model, .. } => (&model.config, model.encoder.embed.segment.is_some()),
    };
    let vocab = config.vocab_size;
    let in_vocab = |what: &str, ids: &[usize]| match ids.iter().find(|&&id| id >= vocab) {
        Some(bad) => Err(format!("generate: {what} id {bad} is outside the vocabulary ({vocab})")),
        None => Ok(()),
    };
    if prompt.is_empty() {
        return Err("generate: the prompt is empty; give at least one token".into());
    }
    in_vocab("prompt", prompt)?;
    if segments {
        return Err("generate: models with segment embeddings are not supported".into());
    }
    if let Model::EncoderDecoder { source, .. } = model {
        if source.is_empty() || source.len() > config.max_len {
            return Err(format!(
                "generate: the source has {} tokens; it needs 1 to {} (max_len)",
                source.len(),
                config.max_len
            ));
        }
        in_vocab("source", source)?;
    }
    Ok(())
}

/// What [`stream`] is asked for, besides the model, the prompt and the rng.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// How many tokens to generate.
    pub new_tokens: usize,
    /// How each is chosen.
    pub sampling: Sampling,
    /// Use the KV cache (the same tokens, faster).
    pub use_cache: bool,
    /// Ids never drawn (as if their logits were -inf), e.g. the tokenizer's special tokens.
    pub banned: &'a [usize],
    /// Stop once this id has been drawn (an end-of-sequence token), before `new_tokens`.
    pub stop: Option<usize>,
}

/// Generate `new_tokens` tokens after `prompt`, with or without the KV cache, keeping every
/// token and the logits it was drawn from; see [`stream`], which this calls with no banned ids.
pub fn generate(
    model: Model,
    params: &Params,
    prompt: &[usize],
    new_tokens: usize,
    sampling: &Sampling,
    use_cache: bool,
    rng: &mut impl Rng,
) -> Result<Generation, String> {
    let settings = Settings {
        new_tokens,
        sampling: *sampling,
        use_cache,
        banned: &[],
        stop: None,
    };
    let mut out = Generation::default();
    stream(model, params, prompt, &settings, rng, |token, logits| {
        out.tokens.push(token);
        out.logits.push(logits.to_vec());
        Ok(())
    })?;
    Ok(out)
}

/// Generate `settings.new_tokens` tokens after `prompt`, handing each to `on_token` (with the
/// logits `[V]` it was drawn from) as soon as it is drawn, so that a caller can print it at
/// once; an error from `on_token` (a closed pipe, say) stops generation and is returned.
/// Nothing is kept here: memory does not grow with the number of tokens. See the module docs
/// for the context window and sampling rules. Errors: an empty prompt (or source), an id
/// outside the vocabulary, bad sampling settings, a model with segment embeddings, every id
/// banned. Generation ends early after drawing `settings.stop`, if given.
pub fn stream(
    model: Model,
    params: &Params,
    prompt: &[usize],
    settings: &Settings,
    rng: &mut impl Rng,
    mut on_token: impl FnMut(usize, &[f32]) -> Result<(), String>,
) -> Result<(), String> {
    let Settings {
        new_tokens,
        sampling,
        use_cache,
        banned,
        stop,
    } = *settings;
    sampling.validate()?;
    check_inputs(model, prompt)?;
    let runner = Runner::new(model, params);
    let max_len = match model {
        Model::Decoder(d) => d.config.max_len,
        Model::EncoderDecoder { model, .. } => model.config.max_len,
    };
    let keep = (max_len / 2).max(1); // tokens kept when the window slides
    let mut context = prompt[prompt.len().saturating_sub(max_len)..].to_vec();
    let mut cache = runner.new_cache();
    let mut logits = runner.logits(&context, use_cache.then_some(&mut cache)); // prefill
    for i in 0..new_tokens {
        let token = sampling.sample_excluding(&logits, banned, rng)?;
        on_token(token, &logits)?;
        if i + 1 == new_tokens || stop == Some(token) {
            break; // the last token's own logits are not needed
        }
        let slides = context.len() == max_len;
        context.push(token);
        if slides {
            context.drain(..context.len() - keep);
        }
        logits = match (use_cache, slides) {
            (true, false) => runner.logits(&[token], Some(&mut cache)), // one step
            (true, true) => {
                cache = runner.new_cache(); // a new window: prefill again
                runner.logits(&context, Some(&mut cache))
            }
            (false, _) => runner.logits(&context, None),
        };
    }
    Ok(())
}
