//! Beam search: decoding that keeps the k most likely partial outputs instead of one, with
//! fairseq's length normalisation and its n-gram blocking.
//!
//! ## The search
//!
//! A hypothesis is the tokens written so far, y = (y_1, ..., y_t), with its log-probability
//! log P(y) = sum_i log P(y_i | y_<i, x). Each step, every live hypothesis is extended by every
//! allowed token; of all these candidates, ranked by log-probability, the first 2k are
//! considered in order (fairseq's `sequence_generator.py`, which takes 2k so that k survive
//! even if some end):
//!
//! - a candidate ending in the stop token (EOS) among the first k **finishes**: it is kept with
//!   the normalised score
//!
//!     score(y) = log P(y) / |y|^α        (|y| counts EOS; α = 1 is fairseq's `--lenpen 1`)
//!
//!   so that a longer output is not beaten just for having more factors below 1;
//! - the first k candidates that do not end live on;
//! - the search ends once k hypotheses have finished. At `max_new` tokens the live ones finish
//!   as they are (without EOS, normalised by their length).
//!
//! The answer is the finished hypothesis with the best score (the first finished, on a tie).
//! Ties between candidates go to the earlier hypothesis, then the lower id, so with k = 1 the
//! search is greedy decoding exactly.
//!
//! ## The rules on candidates
//!
//! - Banned ids (special tokens) are left out, as if their logits were -inf; log P is the
//!   log-softmax over the ids left (as `generate.rs` samples). fairseq instead sets the
//!   log-probabilities of such ids to -inf without renormalising the rest; the two differ only
//!   in the scores of hypotheses that met a blocked or banned id with some probability.
//! - **n-gram blocking** (fairseq's `--no-repeat-ngram-size n`): a token is not allowed if it
//!   would complete an n-gram that already occurs in the prompt and the tokens written. Once
//!   y ends with the first n - 1 tokens of an earlier n-gram, that n-gram's last token is
//!   blocked (and left out like a banned id). n = 0 turns the rule off. It stops a decoder
//!   from writing a passage twice, the failure of greedy BART reconstructions once sentences
//!   are shuffled (NOTES.md §11.5 measures the n that suits character documents).
//!
//! ## The model
//!
//! [`search`] knows nothing of models: it asks a function for the next logits of a hypothesis
//! extended by a token. [`beam_search`] runs it on a model through the same forward as
//! `generate.rs`: with the KV cache, each hypothesis carries its own cache (cloned when two
//! candidates share a parent); without it, each step reruns the forward over the whole context.
//! Both give the same logits, so the same output. The context never slides: the prompt and
//! `max_new` must fit in `max_len`.

use crate::generate::{check_inputs, Model, Runner};
use crate::params::Params;
use std::collections::BTreeMap;

/// The settings of a beam search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beam {
    /// k, the hypotheses kept each step (1 is greedy decoding).
    pub width: usize,
    /// α in log P(y) / |y|^α (0: no normalisation; fairseq's default is 1).
    pub length_penalty: f64,
    /// n of n-gram blocking; 0 turns it off.
    pub no_repeat_ngram: usize,
}

impl Beam {
    /// Greedy decoding as a beam of one, with no blocking.
    pub fn greedy() -> Beam {
        Beam {
            width: 1,
            length_penalty: 1.0,
            no_repeat_ngram: 0,
        }
    }

    /// The settings as `beam_width`, `length_penalty` and `no_repeat_ngram`, for a program
    /// that must decode the same way (the PyTorch twin).
    pub fn to_settings(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("beam_width".to_string(), self.width.to_string());
        m.insert("length_penalty".to_string(), self.length_penalty.to_string());
        m.insert("no_repeat_ngram".to_string(), self.no_repeat_ngram.to_string());
        m
    }

    /// An error naming the setting if the width is 0 or α is not finite.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 {
            return Err("beam search: the width must be at least 1".into());
        }
        if !self.length_penalty.is_finite() {
            return Err(format!(
                "beam search: the length penalty must be finite, got {}",
                self.length_penalty
            ));
        }
        Ok(())
    }
}

/// A finished hypothesis.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The tokens written (not the prompt), the stop token last if it came.
    pub tokens: Vec<usize>,
    /// log P(y), summed over the tokens.
    pub log_prob: f64,
    /// log P(y) / |y|^α.
    pub score: f64,
}

/// A hypothesis still being extended: its tokens, log P, model state, and next logits.
struct Live<S> {
    tokens: Vec<usize>,
    log_prob: f64,
    state: S,
    logits: Vec<f32>,
}

/// The ids that n-gram blocking forbids after `seq`: for each earlier n-gram whose first n - 1
/// tokens equal the last n - 1 of `seq`, its last token.
///
/// ```
/// use microlm::beam_search::blocked_by_ngrams;
/// assert_eq!(blocked_by_ngrams(&[1, 2, 3, 1, 2], 3), vec![3]); // 1 2 -> 3 was written
/// assert_eq!(blocked_by_ngrams(&[1, 2, 3], 3), Vec::<usize>::new());
/// ```
pub fn blocked_by_ngrams(seq: &[usize], n: usize) -> Vec<usize> {
    if n == 0 || seq.len() < n {
        return Vec::new();
    }
    let tail = &seq[seq.len() - (n - 1)..];
    let mut blocked: Vec<usize> = (0..=seq.len() - n)
        .filter(|&i| &seq[i..i + n - 1] == tail)
        .map(|i| seq[i + n - 1])
        .collect();
    blocked.sort_unstable();
    blocked.dedup();
    blocked
}

/// log softmax of `logits` over the ids not in `excluded`, in f64; excluded ids get `None`.
fn log_softmax_excluding(logits: &[f32], excluded: &[usize]) -> Vec<Option<f64>> {
    let allowed = |i: usize| !excluded.contains(&i);
    let max = (0..logits.len())
        .filter(|&i| allowed(i))
        .map(|i| logits[i] as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = (0..logits.len())
        .filter(|&i| allowed(i))
        .map(|i| (logits[i] as f64 - max).exp())
        .sum();
    let log_z = max + sum.ln();
    (0..logits.len())
        .map(|i| allowed(i).then(|| logits[i] as f64 - log_z))
        .collect()
}

/// The search of the module docs, for any model: `first` is the state after the prompt and
/// the logits of the first new token; `extend(state, token)` returns the state with `token`
/// added and the logits of the token after it. `prompt` only feeds n-gram blocking.
/// Error: bad settings, or every id excluded at some step.
#[allow(clippy::too_many_arguments)]
pub fn search<S: Clone>(
    beam: &Beam,
    prompt: &[usize],
    first: (S, Vec<f32>),
    max_new: usize,
    stop: usize,
    banned: &[usize],
    mut extend: impl FnMut(&S, usize) -> Result<(S, Vec<f32>), String>,
) -> Result<Hypothesis, String> {
    beam.validate()?;
    let k = beam.width;
    let finish = |tokens: Vec<usize>, log_prob: f64| {
        let score = log_prob / (tokens.len().max(1) as f64).powf(beam.length_penalty);
        Hypothesis {
            tokens,
            log_prob,
            score,
        }
    };
    let (state, logits) = first;
    let mut live = vec![Live {
        tokens: Vec::new(),
        log_prob: 0.0,
        state,
        logits,
    }];
    let mut finished: Vec<Hypothesis> = Vec::new();
    for _ in 0..max_new {
        // Every allowed extension of every live hypothesis: (log P, hypothesis, id).
        let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
        for (h, hyp) in live.iter().enumerate() {
            let seq: Vec<usize> = prompt.iter().chain(&hyp.tokens).copied().collect();
            let mut excluded = blocked_by_ngrams(&seq, beam.no_repeat_ngram);
            excluded.extend_from_slice(banned);
            for (id, lp) in log_softmax_excluding(&hyp.logits, &excluded).into_iter().enumerate() {
                if let Some(lp) = lp {
                    candidates.push((hyp.log_prob + lp, h, id));
                }
            }
        }
        if candidates.is_empty() {
            return Err("beam search: every id is banned or blocked".into());
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut next = Vec::new();
        for (rank, &(log_prob, h, id)) in candidates.iter().take(2 * k).enumerate() {
            let mut tokens = live[h].tokens.clone();
            tokens.push(id);
            if id == stop {
                if rank < k {
                    finished.push(finish(tokens, log_prob));
                }
            } else if next.len() < k {
                let (state, logits) = extend(&live[h].state, id)?;
                next.push(Live {
                    tokens,
                    log_prob,
                    state,
                    logits,
                });
            }
        }
        live = next;
        if finished.len() >= k || live.is_empty() {
            break;
        }
    }
    if finished.len() < k {
        finished.extend(live.into_iter().map(|h| finish(h.tokens, h.log_prob)));
    }
    let best = (0..finished.len())
        .reduce(|a, b| if finished[b].score > finished[a].score { b } else { a })
        .ok_or("beam search: nothing was written (max_new = 0)")?;
    Ok(finished.swap_remove(best))
}

/// What [`beam_search`] is asked for, besides the model and the prompt.
#[derive(Clone, Copy, Debug)]
pub struct BeamSettings<'a> {
    /// Width, length penalty, n-gram blocking.
    pub beam: Beam,
    /// At most this many new tokens; the prompt and they must fit in `max_len`.
    pub max_new: usize,
    /// Ids never written (special tokens).
    pub banned: &'a [usize],
    /// The end-of-sequence id that finishes a hypothesis.
    pub stop: usize,
    /// Carry a KV cache per hypothesis (the same output, faster).
    pub use_cache: bool,
}

/// Beam search on `model` after `prompt` (for an encoder-decoder, the start of the target):
/// the best hypothesis. Errors: those of `generate.rs` for the inputs, bad settings, a prompt
/// plus `max_new` longer than `max_len`.
pub fn beam_search(
    model: Model,
    params: &Params,
    prompt: &[usize],
    settings: &BeamSettings,
) -> Result<Hypothesis, String> {
    check_inputs(model, prompt)?;
    let max_len = match model {
        Model::Decoder(d) => d.config.max_len,
        Model::EncoderDecoder { model, .. } => model.config.max_len,
    };
    if prompt.len() + settings.max_new > max_len {
        return Err(format!(
            "beam search: a prompt of {} and {} new tokens do not fit in max_len {max_len}",
            prompt.len(),
            settings.max_new
        ));
    }
    let runner = Runner::new(model, params);
    let (beam, max_new, stop, banned) = (&settings.beam, settings.max_new, settings.stop, settings.banned);
    if settings.use_cache {
        let mut cache = runner.new_cache();
        let logits = runner.logits(prompt, Some(&mut cache)); // prefill
        search(beam, prompt, (cache, logits), max_new, stop, banned, |cache, token| {
            let mut cache = cache.clone();
            let logits = runner.logits(&[token], Some(&mut cache));
            Ok((cache, logits))
        })
    } else {
        let logits = runner.logits(prompt, None);
        search(
            beam,
            prompt,
            (prompt.to_vec(), logits),
            max_new,
            stop,
            banned,
            |context, token| {
                let mut context = context.clone();
                context.push(token);
                let logits = runner.logits(&context, None);
                Ok((context, logits))
            },
        )
    }
}
