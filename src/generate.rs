//! Autoregressive generation from a decoder-only model, with or without a key/value cache.
//!
//! ## The KV cache
//!
//! Generating token t+1 needs the logits at position t. A full causal forward recomputes every
//! position 0..=t at every step, although under the causal mask positions before t never change
//! once computed: their keys and values in each layer stay the same. A KV cache keeps them. Each
//! new token's keys and values are computed once, appended to its layer's cache, and reused by
//! all later steps, so a step does one position's work: the q, k, v and output projections and
//! the feed-forward of one position, O(d^2) per layer, plus one query attending over the t
//! cached keys, O(t d), instead of a full forward over t positions. The single query needs no
//! mask: the cache only holds positions <= t. The cache here is for batch 1 (one sequence).
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
//! and the same rng therefore draw the same token.

use crate::nn::{Decoder, EncoderLayer, MultiHeadAttention, NormPlacement, Tokens};
use crate::ops::AttentionMask;
use crate::{Params, Tape, Tensor, Var};
use ndarray::{Axis, IxDyn, Slice};
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
        self.validate()?;
        assert!(!logits.is_empty(), "sample: no logits");
        let (k, temperature) = match *self {
            Sampling::Greedy => return Ok(top_ids(logits, 1)[0]),
            Sampling::Temperature(t) => (logits.len(), t),
            Sampling::TopK { k, temperature } => (k, temperature),
        };
        let candidates = top_ids(logits, k);
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

/// The ids of the k highest logits, highest first, ties to the lower id.
fn top_ids(logits: &[f32], k: usize) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    ids.truncate(k.min(logits.len()));
    ids
}

/// Per layer, the keys and values of every position so far, for one sequence (batch 1).
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Layer l's keys, [1, H, t, d_k].
    pub keys: Vec<Tensor>,
    /// Layer l's values, [1, H, t, d_k].
    pub values: Vec<Tensor>,
    /// t, the number of positions cached.
    pub positions: usize,
}

impl KvCache {
    /// An empty cache shaped for `decoder`.
    pub fn new(decoder: &Decoder) -> KvCache {
        let c = &decoder.config;
        let empty = Tensor::zeros(IxDyn(&[1, c.heads, 0, c.d_model / c.heads]));
        KvCache {
            keys: vec![empty.clone(); c.layers],
            values: vec![empty; c.layers],
            positions: 0,
        }
    }
}

/// `new` [1, H, n, d_k] joined after `cache` [1, H, t, d_k] along the positions: [1, H, t + n, d_k].
/// A copy, O(t d): the same order as the step's attention, and simpler than a preallocated buffer.
fn append(cache: &Tensor, new: &Tensor) -> Tensor {
    ndarray::concatenate(Axis(2), &[cache.view(), new.view()])
        .expect("cache and new positions have the same heads and width")
        .into_shared()
}

/// Self-attention of the new positions `x` [1, n, D] over the cached ones and themselves,
/// appending their keys and values to the cache: the steps of `MultiHeadAttention::forward`
/// with K and V read from the cache.
fn attend(attn: &MultiHeadAttention, tape: &mut Tape, p: &Params, x: Var, kv: (&mut Tensor, &mut Tensor)) -> Var {
    let h = attn.heads;
    let q = attn.q_proj.forward(tape, p, x); // [1, n, D]
    let k_new = attn.k_proj.forward(tape, p, x);
    let v_new = attn.v_proj.forward(tape, p, x);
    let q = tape.split_heads(q, h); // [1, H, n, d_k]
    let k_new = tape.split_heads(k_new, h);
    let v_new = tape.split_heads(v_new, h);
    let t_past = kv.0.shape()[2];
    *kv.0 = append(kv.0, tape.value(k_new)); // [1, H, t + n, d_k]
    *kv.1 = append(kv.1, tape.value(v_new));
    let k = tape.constant(kv.0.clone());
    let v = tape.constant(kv.1.clone());
    // From an empty cache the n new positions see each other causally; one new position after
    // t cached ones sees them all, so no mask.
    let mask = AttentionMask {
        causal: t_past == 0,
        key_lengths: None,
    };
    let d_k = attn.q_proj.d_out / h;
    let scale = 1.0 / (d_k as f32).sqrt();
    let att = tape.attention(q, k, v, &mask, scale); // [1, H, n, d_k]
    let merged = tape.merge_heads(att.out); // [1, n, D]
    attn.out_proj.forward(tape, p, merged)
}

/// One layer over the new positions, as `EncoderLayer::forward` in evaluation (no dropout).
fn layer_step(layer: &EncoderLayer, tape: &mut Tape, p: &Params, x: Var, kv: (&mut Tensor, &mut Tensor)) -> Var {
    let mut no_dropout = StdRng::seed_from_u64(0); // never drawn from on a no-grad tape
    let rng = &mut no_dropout;
    match layer.norm {
        NormPlacement::Pre => {
            let h = layer.norm1.forward(tape, p, x);
            let a = attend(&layer.self_attn, tape, p, h, kv);
            let x = tape.add(x, a); // x + SelfAttn(LN_1(x))
            let h = layer.norm2.forward(tape, p, x);
            let f = layer.feed_forward.forward(tape, p, h, rng);
            tape.add(x, f) // x + FFN(LN_2(x))
        }
        NormPlacement::Post => {
            let a = attend(&layer.self_attn, tape, p, x, kv);
            let x = tape.add(x, a);
            let x = layer.norm1.forward(tape, p, x); // LN_1(x + SelfAttn(x))
            let f = layer.feed_forward.forward(tape, p, x, rng);
            let x = tape.add(x, f);
            layer.norm2.forward(tape, p, x) // LN_2(x + FFN(x))
        }
    }
}

/// Run the new tokens `ids` at positions t.. (t = `cache.positions`) through the decoder,
/// extending the cache, and return the logits of the last one `[V]`. Either the cache is empty
/// (a prefill of any length) or exactly one token is new (a step).
fn extend(decoder: &Decoder, params: &Params, cache: &mut KvCache, ids: &[usize]) -> Vec<f32> {
    let (t, n) = (cache.positions, ids.len());
    assert!(n > 0 && (t == 0 || n == 1), "extend: a prefill from empty or one token");
    assert!(t + n <= decoder.config.max_len, "extend: the cache is full");
    let embed = &decoder.stack.embed;
    assert!(embed.segment.is_none(), "extend: segment ids are not supported");
    let mut tape = Tape::no_grad();
    let x = embed.token.forward(&mut tape, params, ids, &[1, n]); // E(ids) [1, n, D]
    let x = tape.mul_scalar(x, embed.scale); // E(ids) * s
    let mut pe = embed.positions.clone();
    pe.slice_axis_inplace(Axis(0), Slice::from(t..t + n)); // PE rows t..t+n
    let pe = tape.constant(pe);
    let mut x = tape.add(x, pe); // [1, n, D]
    for (l, layer) in decoder.stack.layers.iter().enumerate() {
        x = layer_step(layer, &mut tape, params, x, (&mut cache.keys[l], &mut cache.values[l]));
    }
    if let Some(ln) = &decoder.stack.final_norm {
        x = ln.forward(&mut tape, params, x);
    }
    let logits = decoder.lm_head.forward(&mut tape, params, x); // [1, n, V]
    cache.positions = t + n;
    last_row(tape.value(logits))
}

/// The last position's logits of a [1, T, V] tensor.
fn last_row(logits: &Tensor) -> Vec<f32> {
    let t = logits.shape()[1];
    logits.index_axis(Axis(1), t - 1).iter().copied().collect()
}

/// Empty the cache and fill it from `context` with one full forward; the logits `[V]` of its
/// last position.
pub fn prefill(decoder: &Decoder, params: &Params, cache: &mut KvCache, context: &[usize]) -> Vec<f32> {
    *cache = KvCache::new(decoder);
    extend(decoder, params, cache, context)
}

/// One incremental step: the logits `[V]` of token `id` at position t = `cache.positions`,
/// appending its keys and values to the cache. Panics if the cache is already full (max_len).
pub fn step(decoder: &Decoder, params: &Params, cache: &mut KvCache, id: usize) -> Vec<f32> {
    extend(decoder, params, cache, &[id])
}

/// Without a cache: the full causal forward over `context`, the last position's logits `[V]`.
pub fn full_forward_logits(decoder: &Decoder, params: &Params, context: &[usize]) -> Vec<f32> {
    let mut tape = Tape::no_grad();
    let tokens = Tokens::new(context.to_vec(), 1, context.len());
    let logits = decoder.forward(&mut tape, params, &tokens, &mut StdRng::seed_from_u64(0)); // no dropout
    last_row(tape.value(logits))
}

/// What [`generate`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generation {
    /// The new tokens, in order (the prompt not included).
    pub tokens: Vec<usize>,
    /// `logits[i]`: the logits `[V]` that `tokens[i]` was drawn from.
    pub logits: Vec<Vec<f32>>,
}

/// Generate `new_tokens` tokens after `prompt`, with or without the KV cache; see the module
/// docs for the context window and sampling rules. Errors: an empty prompt, an id outside the
/// vocabulary, bad sampling settings, a model with segment embeddings.
pub fn generate(
    decoder: &Decoder,
    params: &Params,
    prompt: &[usize],
    new_tokens: usize,
    sampling: &Sampling,
    use_cache: bool,
    rng: &mut impl Rng,
) -> Result<Generation, String> {
    sampling.validate()?;
    let (vocab, max_len) = (decoder.config.vocab_size, decoder.config.max_len);
    if prompt.is_empty() {
        return Err("generate: the prompt is empty; give at least one token".into());
    }
    if let Some(&bad) = prompt.iter().find(|&&id| id >= vocab) {
        return Err(format!("generate: prompt id {bad} is outside the vocabulary ({vocab})"));
    }
    if decoder.stack.embed.segment.is_some() {
        return Err("generate: models with segment embeddings are not supported".into());
    }
    let keep = (max_len / 2).max(1); // tokens kept when the window slides
    let mut context = prompt[prompt.len().saturating_sub(max_len)..].to_vec();
    let mut cache = KvCache::new(decoder);
    let mut logits = if use_cache {
        prefill(decoder, params, &mut cache, &context)
    } else {
        full_forward_logits(decoder, params, &context)
    };
    let mut out = Generation::default();
    for i in 0..new_tokens {
        let token = sampling.sample(&logits, rng)?;
        out.tokens.push(token);
        out.logits.push(logits);
        if i + 1 == new_tokens {
            break; // the last token's own logits are not needed
        }
        let slides = context.len() == max_len;
        context.push(token);
        if slides {
            context.drain(..context.len() - keep);
        }
        logits = match (use_cache, slides) {
            (true, false) => step(decoder, params, &mut cache, token),
            (true, true) => prefill(decoder, params, &mut cache, &context),
            (false, _) => full_forward_logits(decoder, params, &context),
        };
    }
    Ok(out)
}
