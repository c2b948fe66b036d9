//! Causal language modelling (CLM), the objective GPT pretrains with:
//!
//!   L_CLM = -(1/|T|) sum_{t in T} log P(x_{t+1} | x_{<=t})
//!
//! Source: Radford et al., 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2),
//! section 2; the shift follows transformers' `GPT2LMHeadModel` (logits[:, :-1] scored against
//! labels[:, 1:]), as `docs/objectives.md` §4 specifies.
//!
//! - There is no corruption: the model reads x unchanged, under a causal mask, so position t
//!   sees x_0..=x_t only.
//! - Labels are the inputs themselves, passed unshifted; the shift happens here: the logits at
//!   t are scored against x_{t+1}.
//! - T holds every t with t + 1 < n_b (sequence b's real length): a sequence of n tokens gives
//!   n - 1 targets, the first token is never a target, and the last position's logits are unused.
//! - Padding is ignored through the lengths (the attention mask), never by matching a token id:
//!   if PAD were also EOS, matching the id would drop real EOS targets.
//! - The loss is one mean over all targets of the batch, with the sum and |T| beside it; a batch
//!   with no target (every n_b <= 1) gives 0.
//!
//! The model, [`CausalLm`], is GPT's shape: the decoder-only stack (`nn/decoder.rs`) and its
//! projection to the vocabulary, logits for every position at once.

use super::{Evaluation, Tally};
use crate::checkpoint;
use crate::data::Batch;
use crate::generate::{generate, Generation, Model, Sampling};
use crate::nn::{Decoder, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// The target of every position of `x`: `Some(x_{t+1})` for t in T, `None` elsewhere (the last
/// real position of each sequence and its padding).
///
/// ```
/// use microlm::data::Batch;
/// use microlm::objectives::clm::next_token_targets;
/// let x = Batch::new(vec![7, 8, 9, 0], 1, 4).with_lengths(vec![3]); // 0 is padding
/// assert_eq!(next_token_targets(&x), vec![Some(8), Some(9), None, None]);
/// ```
pub fn next_token_targets(x: &Batch) -> Vec<Option<usize>> {
    let (batch, seq_len) = (x.batch, x.seq_len);
    let mut targets = vec![None; batch * seq_len];
    for b in 0..batch {
        let n_b = x.length(b);
        for t in 0..n_b.saturating_sub(1) {
            targets[b * seq_len + t] = Some(x.ids[b * seq_len + t + 1]); // x_{t+1}
        }
    }
    targets
}

/// L_CLM from the logits of every position, `[B, T, V]`, and the unshifted inputs `x`.
///
/// dL/dz_t = (softmax(z_t) - onehot(x_{t+1})) / |T| for t in T, exactly 0 elsewhere.
pub fn clm_loss(tape: &mut Tape, logits: Var, x: &Batch) -> CrossEntropy {
    let shape = tape.shape(logits).to_vec();
    assert!(
        shape.len() == 3 && shape[0] == x.batch && shape[1] == x.seq_len,
        "clm_loss: logits {shape:?} do not match tokens [{}, {}]",
        x.batch,
        x.seq_len
    );
    tape.cross_entropy(logits, &next_token_targets(x))
}

/// The decoder-only model (parameters `decoder.*`) that CLM trains.
#[derive(Clone, Debug)]
pub struct CausalLm {
    /// Embeddings, the causal stack and the LM head.
    pub decoder: Decoder,
}

impl CausalLm {
    /// Build the model for `config`; an invalid config is refused with the field named.
    pub fn new(params: &mut Params, config: &TransformerConfig, rng: &mut impl Rng) -> Result<CausalLm, String> {
        Ok(CausalLm {
            decoder: Decoder::new(params, "decoder", config, rng)?,
        })
    }

    /// What a checkpoint needs to rebuild this model: its config.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.decoder.config.to_metadata()
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote (the optimizer's state in it
    /// is skipped).
    pub fn load(path: &Path) -> Result<(CausalLm, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, _tokenizer, _metadata, params| {
            CausalLm::new(params, config, &mut StdRng::seed_from_u64(0))
        })
    }

    /// L_CLM of batch `x` (dropout draws from `rng`). Call `backward` on `.mean`.
    pub fn loss(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> CrossEntropy {
        let logits = self.decoder.forward(tape, params, x, rng); // [B, T, V]
        clm_loss(tape, logits, x)
    }

    /// Next-token loss and accuracy over `batches` in evaluation mode (no dropout, no gradients).
    pub fn evaluate(&self, params: &Params, batches: &[Batch]) -> Evaluation {
        let mut tally = Tally::default();
        for x in batches {
            let mut tape = Tape::no_grad();
            let logits = self
                .decoder
                .forward(&mut tape, params, x, &mut StdRng::seed_from_u64(0));
            tally.add(&mut tape, logits, &next_token_targets(x));
        }
        tally.finish()
    }

    /// Text written after `prompt`: `new_tokens` tokens drawn with `sampling` (KV cache on),
    /// never one of the tokenizer's special ids ([`Tokenizer::special_ids`]), decoded.
    pub fn sample_text(
        &self,
        params: &Params,
        tokenizer: &Tokenizer,
        prompt: &str,
        new_tokens: usize,
        sampling: Sampling,
        rng: &mut impl Rng,
    ) -> Result<String, String> {
        let banned = tokenizer.special_ids();
        let settings = crate::generate::Settings {
            new_tokens,
            sampling,
            use_cache: true,
            banned: &banned,
            stop: None,
        };
        let mut written = Vec::with_capacity(new_tokens);
        let model = Model::Decoder(&self.decoder);
        crate::generate::stream(model, params, &tokenizer.encode(prompt), &settings, rng, |token, _| {
            written.push(token);
            Ok(())
        })?;
        Ok(tokenizer.decode(&written))
    }

    /// Continue `prompt` by `new_tokens` tokens (see [`generate`]).
    pub fn generate(
        &self,
        params: &Params,
        prompt: &[usize],
        new_tokens: usize,
        sampling: &Sampling,
        use_cache: bool,
        rng: &mut impl Rng,
    ) -> Result<Generation, String> {
        generate(
            Model::Decoder(&self.decoder),
            params,
            prompt,
            new_tokens,
            sampling,
            use_cache,
            rng,
        )
    }
}
