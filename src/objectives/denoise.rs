//! Denoising autoencoders, the objective BART and T5 pretrain with: corrupt a text, then train
//! an encoder-decoder to write what the corruption hid.
//!
//!   L = -(1/|T|) sum_{(b,t) in T} log P(y_{b,t} | y_{b,<t}, x̃_b),    x̃ = noise(x)
//!
//! - **BART** (Lewis et al., 2019, "BART: Denoising Sequence-to-Sequence Pre-training", §2.2 and
//!   §5.1; fairseq's `denoising_dataset.py`): x̃ is the document after BART's noise
//!   (`data/bart_noise.rs`), y is the **whole** original document, `BOS body EOS`, and T holds
//!   every target token that is not padding, corrupted or not.
//! - **T5** (Raffel et al., 2020, "Exploring the Limits of Transfer Learning with a Unified
//!   Text-to-Text Transformer", §3.1.4; `t5/data/preprocessors.py`): x̃ is the text with each
//!   dropped span replaced by a sentinel, y is only the dropped spans behind their sentinels,
//!   `S0 X1 S1 X2 ... EOS` (`data/span_corruption.rs`), and T holds every token of y, sentinels
//!   and EOS included.
//!
//! **Teacher forcing.** The decoder reads y shifted one place right behind a start token,
//! y_in = (start, y_0, ..., y_{n-2}), and its logits at t are scored against y_t. The start
//! token is EOS, as fairseq and transformers use for BART (T5 uses its padding id; one rule
//! here serves both). Padding is excluded through the lengths, never by matching an id.
//!
//! The ids: BOS is the tokenizer's `[CLS]`, EOS its `[SEP]`, BART's `<mask>` its `[MASK]`, and
//! T5's sentinels are [`SENTINELS`] extra ids at the top of the model's vocabulary, above every
//! id the tokenizer can produce. (docs/objectives.md §5 has the procedures and worked examples.)
//!
//! The model, [`Denoiser`], is the encoder-decoder of `nn/encoder_decoder.rs` with its noise.

use super::noise::Noise;
use super::reconstruction::without;
use super::{Evaluation, Tally};
use crate::checkpoint;
use crate::data::bart_noise::{corrupt, frame, NoiseIds, Spacing};
use crate::data::span_corruption::{span_corrupt, Sentinels};
use crate::data::{Batch, Document};
use crate::generate::{stream, Model, Sampling, Settings};
use crate::nn::{EncoderDecoder, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// T5's number of sentinel ids (`<extra_id_0>` to `<extra_id_99>`).
pub const SENTINELS: usize = 100;

/// One training example: the corrupted input x̃ and the target y.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// x̃, what the encoder reads.
    pub source: Vec<usize>,
    /// y, what the decoder must write.
    pub target: Vec<usize>,
}

/// A batch for teacher forcing: sources, decoder inputs and the target of every decoder
/// position (`None` at padding).
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2SeqBatch {
    /// x̃ [B, S], padded, with lengths.
    pub source: Batch,
    /// y_in [B, T] = start, then y shifted right, padded, with lengths.
    pub decoder_input: Batch,
    /// y_t at each decoder position (row-major, B * T), `None` past y's length.
    pub targets: Vec<Option<usize>>,
}

/// Pad `examples` into one batch and shift each target right behind `start`.
///
/// ```
/// use microlm::objectives::denoise::{teacher_forcing, Example};
/// let e = Example { source: vec![5, 6, 7], target: vec![8, 9] };
/// let b = teacher_forcing(&[e], 1, 0);
/// assert_eq!(b.decoder_input.ids, vec![1, 8]); // start, y_0
/// assert_eq!(b.targets, vec![Some(8), Some(9)]); // y_0, y_1
/// ```
pub fn teacher_forcing(examples: &[Example], start: usize, pad: usize) -> Seq2SeqBatch {
    assert!(!examples.is_empty(), "teacher_forcing: no examples");
    let s_max = examples.iter().map(|e| e.source.len()).max().unwrap_or(0);
    let t_max = examples.iter().map(|e| e.target.len()).max().unwrap_or(0);
    let (mut source, mut y_in) = (Vec::new(), Vec::new());
    let mut targets = Vec::new();
    for e in examples {
        source.extend(e.source.iter().copied().chain(std::iter::repeat(pad)).take(s_max));
        let shifted = std::iter::once(start)
            .chain(e.target.iter().copied())
            .take(e.target.len());
        y_in.extend(shifted.chain(std::iter::repeat(pad)).take(t_max));
        targets.extend(
            e.target
                .iter()
                .map(|&y| Some(y))
                .chain(std::iter::repeat(None))
                .take(t_max),
        );
    }
    let b = examples.len();
    Seq2SeqBatch {
        source: Batch::new(source, b, s_max).with_lengths(examples.iter().map(|e| e.source.len()).collect()),
        decoder_input: Batch::new(y_in, b, t_max).with_lengths(examples.iter().map(|e| e.target.len()).collect()),
        targets,
    }
}

/// L from the decoder's logits `[B, T, V]` and the batch's targets.
///
/// dL/dz_{b,t} = (softmax(z_{b,t}) - onehot(y_{b,t})) / |T| at each target, 0 at padding.
pub fn seq2seq_loss(tape: &mut Tape, logits: crate::tape::Var, batch: &Seq2SeqBatch) -> CrossEntropy {
    let shape = tape.shape(logits).to_vec();
    let x = &batch.decoder_input;
    assert!(
        shape.len() == 3 && shape[0] == x.batch && shape[1] == x.seq_len,
        "seq2seq_loss: logits {shape:?} do not match the decoder input [{}, {}]",
        x.batch,
        x.seq_len
    );
    tape.cross_entropy(logits, &batch.targets)
}

/// The ids the noise and the decoder need, from the tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub struct DenoiseIds {
    /// BOS, EOS, `<mask>` and the ids random replacements come from.
    pub noise: NoiseIds,
    /// Padding.
    pub pad: usize,
    /// T5's sentinels, above the tokenizer's ids.
    pub sentinels: Sentinels,
}

impl DenoiseIds {
    /// The roles of `tokenizer`'s specials, and [`SENTINELS`] sentinels when `t5`.
    pub fn new(tokenizer: &Tokenizer, t5: bool) -> DenoiseIds {
        let s = tokenizer.specials();
        let vocab = tokenizer.vocab_size();
        let extra = if t5 { SENTINELS } else { 0 };
        DenoiseIds {
            noise: NoiseIds {
                bos: s.cls,
                eos: s.sep,
                mask: s.mask,
                random: (0..vocab).filter(|&id| !s.contains(id)).collect(),
                spacing: (0..vocab).map(|id| Spacing::of(&tokenizer.decode(&[id]))).collect(),
            },
            pad: s.pad,
            sentinels: Sentinels {
                vocab_size: vocab + extra,
                count: extra,
            },
        }
    }
}

/// BART or T5: the encoder-decoder (parameters `encoder.*`, `decoder.*`) and its noise.
#[derive(Clone, Debug)]
pub struct Denoiser {
    /// The model.
    pub model: EncoderDecoder,
    /// The corruption it learns to undo.
    pub noise: Noise,
    /// BOS, EOS, mask, padding, sentinels.
    pub ids: DenoiseIds,
}

impl Denoiser {
    /// Build the model for `config`, whose vocabulary must be the tokenizer's plus the
    /// sentinels under T5. Bad noise settings are refused here, naming the setting.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        noise: Noise,
        tokenizer: &Tokenizer,
        rng: &mut impl Rng,
    ) -> Result<Denoiser, String> {
        let ids = DenoiseIds::new(tokenizer, matches!(noise, Noise::T5(_)));
        noise.validate()?;
        if config.vocab_size != ids.sentinels.vocab_size {
            return Err(format!(
                "denoise: config.vocab_size is {} but the tokenizer and sentinels need {}",
                config.vocab_size, ids.sentinels.vocab_size
            ));
        }
        let model = EncoderDecoder::new(params, config, rng)?;
        Ok(Denoiser { model, noise, ids })
    }

    /// The vocabulary a model for this noise needs: the tokenizer's, plus [`SENTINELS`] for T5.
    pub fn vocab_size(tokenizer: &Tokenizer, noise: &Noise) -> usize {
        DenoiseIds::new(tokenizer, matches!(noise, Noise::T5(_)))
            .sentinels
            .vocab_size
    }

    /// What a checkpoint needs to rebuild this model: its config, its noise, and the extra
    /// ids (sentinels) above the tokenizer's.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.model.config.to_metadata();
        m.extend(self.noise.to_metadata());
        m.insert(checkpoint::EXTRA_IDS.into(), self.ids.sentinels.count.to_string());
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote.
    pub fn load(path: &Path) -> Result<(Denoiser, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, tokenizer, metadata, params| {
            let noise = Noise::from_metadata(metadata)?;
            Denoiser::new(params, config, noise, tokenizer, &mut StdRng::seed_from_u64(0))
        })
    }

    /// Corrupt one document: BART frames it `BOS body EOS` and the target is that frame; T5
    /// drops spans of the body and the target is the spans.
    pub fn corrupt(&self, doc: &Document, rng: &mut impl Rng) -> Example {
        let ids = &self.ids;
        let (source, target) = match &self.noise {
            Noise::Bart(n) => {
                let x_tilde = corrupt(&doc.sentences, n, &ids.noise, rng).expect("settings checked by Denoiser::new");
                (x_tilde, frame(&doc.sentences, &ids.noise))
            }
            Noise::T5(n) => {
                let x = doc.sentences.concat();
                span_corrupt(&x, n, &ids.sentinels, ids.noise.eos, rng).expect("settings checked by Denoiser::new")
            }
        };
        Example { source, target }
    }

    /// Corrupt `docs` and batch them for teacher forcing.
    pub fn batch(&self, docs: &[&Document], rng: &mut impl Rng) -> Seq2SeqBatch {
        let examples: Vec<Example> = docs.iter().map(|d| self.corrupt(d, rng)).collect();
        teacher_forcing(&examples, self.ids.noise.eos, self.ids.pad)
    }

    /// L of a batch (dropout draws from `rng`). Call `backward` on `.mean`.
    pub fn loss(&self, tape: &mut Tape, params: &Params, batch: &Seq2SeqBatch, rng: &mut impl Rng) -> CrossEntropy {
        let logits = self
            .model
            .forward(tape, params, &batch.source, &batch.decoder_input, rng); // [B, T, V]
        seq2seq_loss(tape, logits, batch)
    }

    /// Teacher-forced loss and next-token accuracy over `batches`, in evaluation mode. Under
    /// T5 it adds `span_token_accuracy`: the accuracy on the dropped tokens alone (the targets
    /// that are neither a sentinel nor EOS).
    pub fn evaluate(&self, params: &Params, batches: &[Seq2SeqBatch]) -> Evaluation {
        let mut tally = Tally::default();
        let (mut span_hits, mut span_tokens) = (0, 0);
        for b in batches {
            let mut tape = Tape::no_grad();
            let no_dropout = &mut StdRng::seed_from_u64(0);
            let logits = self
                .model
                .forward(&mut tape, params, &b.source, &b.decoder_input, no_dropout);
            tally.add(&mut tape, logits, &b.targets);
            let predicted = tape.argmax(logits, 2);
            for (&p, y) in tape.value(predicted).iter().zip(&b.targets) {
                if let Some(y) = y.filter(|&y| self.is_span_token(y)) {
                    span_tokens += 1;
                    span_hits += usize::from(p as usize == y);
                }
            }
        }
        let mut evaluation = tally.finish();
        if matches!(self.noise, Noise::T5(_)) {
            let accuracy = span_hits as f64 / span_tokens.max(1) as f64;
            evaluation.extra.push(("span_token_accuracy".into(), accuracy));
        }
        evaluation
    }

    /// T5's baseline: the most frequent ordinary id of `train_ids`, and the share of the span
    /// tokens of `examples`' targets it equals (the accuracy of always guessing it).
    pub fn most_frequent_baseline(&self, train_ids: &[usize], examples: &[Example]) -> (usize, f64) {
        let mut counts = vec![0usize; self.ids.sentinels.vocab_size];
        for &id in train_ids {
            counts[id] += 1;
        }
        let top = (0..counts.len())
            .max_by_key(|&id| (counts[id], std::cmp::Reverse(id)))
            .unwrap_or(0);
        let spans: Vec<usize> = examples
            .iter()
            .flat_map(|e| e.target.iter().copied().filter(|&y| self.is_span_token(y)))
            .collect();
        let hits = spans.iter().filter(|&&y| y == top).count();
        (top, hits as f64 / spans.len().max(1) as f64)
    }

    /// True for a T5 target token that is text from a dropped span (not a sentinel, not EOS).
    pub fn is_span_token(&self, id: usize) -> bool {
        let s = &self.ids.sentinels;
        id != self.ids.noise.eos && !s.contains(id)
    }

    /// Decode from `source` (greedy or sampled, with the KV cache), stopping after EOS or at
    /// `max_new` tokens: the tokens written, EOS included if it came. Under BART the decoder
    /// starts behind the start token and BOS (every BART target begins with BOS, so it is given,
    /// not written); under T5 behind the start token alone. No special id but EOS is ever
    /// written ([`Denoiser::banned`]).
    pub fn reconstruct(
        &self,
        params: &Params,
        source: &[usize],
        sampling: Sampling,
        max_new: usize,
        rng: &mut impl Rng,
    ) -> Result<Vec<usize>, String> {
        let model = Model::EncoderDecoder {
            model: &self.model,
            source,
        };
        let ids = &self.ids.noise;
        let prompt = match self.noise {
            Noise::Bart(_) => vec![ids.eos, ids.bos],
            Noise::T5(_) => vec![ids.eos],
        };
        let banned = self.banned();
        let settings = Settings {
            new_tokens: max_new.min(self.model.config.max_len - prompt.len()), // never slides the window
            sampling,
            use_cache: true,
            banned: &banned,
            stop: Some(ids.eos),
        };
        let mut written = Vec::new();
        stream(model, params, &prompt, &settings, rng, |token, _| {
            written.push(token);
            Ok(())
        })?;
        Ok(written)
    }

    /// The ids a reconstruction never writes: the tokenizer's specials (`[PAD]`, `[UNK]`,
    /// `[CLS]` as BOS, `[MASK]`), all but EOS. T5's sentinels stay allowed (its targets use them).
    pub fn banned(&self) -> Vec<usize> {
        let tokenizer_ids = self.ids.sentinels.vocab_size - self.ids.sentinels.count;
        let ordinary = &self.ids.noise.random;
        (0..tokenizer_ids)
            .filter(|id| !ordinary.contains(id) && *id != self.ids.noise.eos)
            .collect()
    }

    /// `ids` as text for people: sentinel k shown as `<Sk>`, the tokenizer's specials by name.
    pub fn display(&self, tokenizer: &Tokenizer, ids: &[usize]) -> String {
        let mut out = String::new();
        let mut run = Vec::new(); // ordinary ids waiting to be decoded together
        for &id in ids {
            if self.ids.sentinels.contains(id) {
                out += &tokenizer.decode(&std::mem::take(&mut run));
                out += &format!("<S{}>", self.ids.sentinels.vocab_size - 1 - id);
            } else {
                run.push(id);
            }
        }
        out + &tokenizer.decode(&run)
    }

    /// `ids` as plain text: every special token and sentinel dropped (what reconstructions and
    /// the identity baseline are scored on).
    pub fn plain_text(&self, tokenizer: &Tokenizer, ids: &[usize]) -> String {
        let specials = tokenizer.specials();
        let s = &self.ids.sentinels;
        tokenizer.decode(&without(ids, |id| specials.contains(id) || s.contains(id)))
    }
}
