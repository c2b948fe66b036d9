//! What a denoiser's reconstructions are worth, noise by noise (`reconstruction.rs` has the
//! measures): each held-out document is decoded by beam search (greedy is a beam of one) and
//! scored beside the **identity baseline**, the corrupted input handed back unchanged.
//!
//! - every noise: the character error rate and the exact-match rate;
//! - masking, deletion, infilling and T5's span corruption: the share of the characters the
//!   noise hid that the reconstruction restores exactly ([`Restored`]);
//! - sentence permutation: the share of documents of two or more sentences written back in
//!   their order ([`order_recovered`]);
//! - document rotation: the share of rotated documents whose reconstruction starts where the
//!   original does, its first [`START_CHARS`] characters ([`starts_like`]).
//!
//! Under T5 the model writes only the dropped spans; its reconstruction is the input with each
//! sentinel replaced by the span written behind that sentinel ([`Denoiser::fill_sentinels`]).

use super::denoise::{Denoiser, Example};
use super::noise::Noise;
use super::reconstruction::{order_recovered, starts_like, ReconstructionScore, Restored};
use crate::beam_search::{beam_search, Beam, BeamSettings};
use crate::data::bart_noise::Masking;
use crate::data::documents::split_sentences;
use crate::generate::Model;
use crate::params::Params;
use crate::tokenizer::Tokenizer;

/// How many characters of the original a reconstruction must start with to count as having
/// found the rotation point.
pub const START_CHARS: usize = 10;

/// A share of documents, for the model and for the identity baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recovered {
    /// Documents the measure applies to.
    pub documents: usize,
    /// Of them, where the model's reconstruction passes.
    pub by_model: usize,
    /// Of them, where the corrupted input passes.
    pub by_identity: usize,
}

impl Recovered {
    fn add(&mut self, model: bool, identity: bool) {
        self.documents += 1;
        self.by_model += usize::from(model);
        self.by_identity += usize::from(identity);
    }

    /// (model's share, identity's share); 0 when no document counted.
    pub fn shares(&self) -> (f64, f64) {
        let n = self.documents.max(1) as f64;
        (self.by_model as f64 / n, self.by_identity as f64 / n)
    }
}

/// Every measure of the module docs over a set of held-out documents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenoiseScores {
    /// CER and exact match of the reconstructions.
    pub model: ReconstructionScore,
    /// The same for the corrupted inputs.
    pub identity: ReconstructionScore,
    /// Hidden characters restored (the identity restores none by definition).
    pub restored: Restored,
    /// Sentence order recovered, over documents of two or more sentences.
    pub order: Recovered,
    /// Start found, over documents whose corrupted text differs from the original.
    pub rotation: Recovered,
}

impl Denoiser {
    /// The tokens a reconstruction starts behind: the start token, and under BART also BOS
    /// (every BART target begins with it, so it is given, not written), as
    /// [`Denoiser::reconstruct`] does.
    pub fn prompt(&self) -> Vec<usize> {
        let ids = &self.ids.noise;
        match self.noise {
            Noise::Bart(_) => vec![ids.eos, ids.bos],
            Noise::T5(_) => vec![ids.eos],
        }
    }

    /// Decode from `source` by beam search with the KV cache, behind [`Denoiser::prompt`], at
    /// most `max_new` tokens (capped to fit `max_len`), no special id but EOS written
    /// ([`Denoiser::banned`]): the tokens written, EOS included if it came.
    pub fn reconstruct_beam(
        &self,
        params: &Params,
        source: &[usize],
        beam: &Beam,
        max_new: usize,
    ) -> Result<Vec<usize>, String> {
        let model = Model::EncoderDecoder {
            model: &self.model,
            source,
        };
        let (prompt, banned) = (self.prompt(), self.banned());
        let settings = BeamSettings {
            beam: *beam,
            max_new: max_new.min(self.model.config.max_len - prompt.len()),
            banned: &banned,
            stop: self.ids.noise.eos,
            use_cache: true,
        };
        Ok(beam_search(model, params, &prompt, &settings)?.tokens)
    }

    /// T5: `source` with each sentinel replaced by what `written` puts behind that sentinel
    /// (up to the next sentinel or EOS); a sentinel never written is simply dropped.
    pub fn fill_sentinels(&self, source: &[usize], written: &[usize]) -> Vec<usize> {
        let s = &self.ids.sentinels;
        let eos = self.ids.noise.eos;
        let mut out = Vec::new();
        for &id in source {
            if !s.contains(id) {
                out.push(id);
                continue;
            }
            if let Some(at) = written.iter().position(|&w| w == id) {
                let span = written[at + 1..].iter().take_while(|&&w| w != eos && !s.contains(w));
                out.extend(span);
            }
        }
        out
    }

    /// Reconstruct `examples` with `beam` and score them (module docs), beside the identity
    /// baseline. `on_each(example, written)` sees every reconstruction as it is made.
    pub fn score_reconstructions(
        &self,
        params: &Params,
        examples: &[Example],
        tokenizer: &Tokenizer,
        beam: &Beam,
        mut on_each: impl FnMut(&Example, &[usize]),
    ) -> Result<DenoiseScores, String> {
        let mut scores = DenoiseScores::default();
        let t5 = matches!(self.noise, Noise::T5(_));
        let (permuted, rotated, hides) = match &self.noise {
            Noise::Bart(n) => (n.permute > 0.0, n.rotate > 0.0, n.masking != Masking::Off),
            Noise::T5(_) => (false, false, true),
        };
        let split = |t: &str| split_sentences(t).into_iter().map(str::to_string).collect::<Vec<_>>();
        for e in examples {
            let max_new = e.target.len() + 8;
            let written = self.reconstruct_beam(params, &e.source, beam, max_new)?;
            let (hypothesis, reference) = match t5 {
                true => {
                    let original = self.fill_sentinels(&e.source, &e.target);
                    let filled = self.fill_sentinels(&e.source, &written);
                    (
                        self.plain_text(tokenizer, &filled),
                        self.plain_text(tokenizer, &original),
                    )
                }
                false => (
                    self.plain_text(tokenizer, &written),
                    self.plain_text(tokenizer, &e.target),
                ),
            };
            let identity = self.plain_text(tokenizer, &e.source);
            scores.model.add(&hypothesis, &reference);
            scores.identity.add(&identity, &reference);
            if hides {
                scores.restored.add(&reference, &identity, &hypothesis);
            }
            let sentences = split(&reference);
            if permuted && sentences.len() >= 2 {
                scores.order.add(
                    order_recovered(&hypothesis, &sentences, split),
                    order_recovered(&identity, &sentences, split),
                );
            }
            if rotated && identity != reference {
                scores.rotation.add(
                    starts_like(&hypothesis, &reference, START_CHARS),
                    starts_like(&identity, &reference, START_CHARS),
                );
            }
            on_each(e, &written);
        }
        Ok(scores)
    }
}
