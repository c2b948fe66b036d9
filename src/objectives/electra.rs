//! ELECTRA: replaced-token detection. A small generator G is a masked LM; its samples fill the
//! masked positions, and the discriminator D reads the filled sequence and says, at every
//! position, whether the token there is the original:
//!
//!   L = L_MLM(G) + lambda L_D,   lambda = 50
//!   L_MLM(G) = -(1/|M|) sum_{i in M} log p_G(x_i | X_masked)
//!   x̂_i ~ p_G(. | X_masked) for i in M (a draw, no gradient),   x̂_i = x_i elsewhere
//!   d_i = 1 if x̂_i != x_i else 0   (a sample equal to the original counts as original)
//!   L_D = (1/|N|) sum_{i in N} [ -d_i log sigma(z_i) - (1 - d_i) log(1 - sigma(z_i)) ]
//!
//! N is every position that is not padding (`[CLS]` and `[SEP]` included) and z_i = D(x̂)_i is the
//! discriminator's logit for "replaced". Source: Clark et al., 2020, "ELECTRA: Pre-training Text
//! Encoders as Discriminators Rather Than Generators"; google-research/electra
//! (`run_pretraining.py`, `configure_pretraining.py`); `docs/objectives.md` §7.
//!
//! What the reference does, and what we do:
//! - **Masking**: k = max(1, min(floor(0.155 n_max), round_half_even(0.15 n))) positions per
//!   sequence; 85% become `[MASK]`, 15% stay as they are, none gets a random token. The
//!   reference draws the k positions with replacement; we draw them without (bert's shuffle,
//!   [`mask_tokens`]), so |M| is exactly k.
//! - **Generator**: the discriminator's shape (same depth) at a fraction of its width, 1/4 by
//!   default (ELECTRA-Small's `generator_hidden_size`), feed-forward 4x its width, heads of the
//!   discriminator's head size. Its MLM head is BERT's: E LN(gelu(W h + b)) + b_out, with E the
//!   shared token table.
//! - **Shared embeddings**: the reference shares the whole embedding block (tokens, positions,
//!   segments) at one width, the embedding size, and gives each network whose hidden size
//!   differs a projection of its own (`embeddings_project`). We do the same with the embedding
//!   width kept at the discriminator's d_model: the generator reads the discriminator's
//!   [`InputEmbedding`](crate::nn::InputEmbedding) through `generator.embeddings_project`
//!   (d_model -> d_g), and its head maps d_g back to d_model before E. E is one parameter,
//!   `encoder.token_embedding.weight`, and receives gradients from both losses.
//! - **Sampling**: from softmax(z) at temperature 1 (the reference adds Gumbel noise and takes
//!   the argmax, the same distribution), computed from the logits' values outside the tape: no
//!   gradient can pass through the sample.
//! - **Binary cross-entropy** as a two-way cross-entropy with logits (0, z):
//!   softmax(0, z)_1 = sigma(z), so CE((0, z), d) = log(1 + e^z) - d z, stable for any z.

use super::mlm::{mask_tokens, Branch, MaskedBatch, MlmConfig, MlmVocab, Selection};
use super::replaced_tokens::DetectionTally;
use super::Evaluation;
use crate::checkpoint;
use crate::data::Batch;
use crate::nn::encoder::stack_forward;
use crate::nn::{attention_mask, Encoder, EncoderLayer, LayerNorm, Linear, NormPlacement};
use crate::nn::{OutputProjection, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// lambda, the discriminator loss's weight (the reference's `disc_weight`).
pub const LAMBDA: f32 = 50.0;

/// The three parts of L: `total` = `generator.mean` + lambda `discriminator.mean`.
#[derive(Clone, Copy, Debug)]
pub struct ElectraLoss {
    /// L; call backward on it.
    pub total: Var,
    /// L_MLM(G) over M.
    pub generator: CrossEntropy,
    /// L_D over N.
    pub discriminator: CrossEntropy,
}

impl From<ElectraLoss> for Var {
    fn from(l: ElectraLoss) -> Var {
        l.total
    }
}

/// L_D from the discriminator's logits `z` (one per position, any shape of that many elements)
/// and the labels `d` (`Some(1)` replaced, `Some(0)` original, `None` padding): the mean binary
/// cross-entropy, computed as CE((0, z_i), d_i). dL_D/dz_i = (sigma(z_i) - d_i) / |N|.
pub fn detection_loss(tape: &mut Tape, z: Var, d: &[Option<usize>]) -> CrossEntropy {
    let n = tape.value(z).len();
    let z = tape.reshape(z, &[n, 1]);
    let zeros = tape.constant(crate::tensor::Tensor::zeros(ndarray::IxDyn(&[n, 1])));
    let pair = tape.concat(&[zeros, z], 1); // (0, z_i): softmax(.)_1 = sigma(z_i)
    tape.cross_entropy(pair, d)
}

/// L = L_MLM(G) + lambda L_D from the generator's logits at M (`[|M|, V]`, row j for the j-th
/// masked position, `labels[j]` its original token) and the discriminator's logits `z` with
/// their labels `d`.
pub fn electra_loss(
    tape: &mut Tape,
    generator_logits: Var,
    labels: &[usize],
    z: Var,
    d: &[Option<usize>],
    lambda: f32,
) -> ElectraLoss {
    let generator = super::mlm::mlm_loss(tape, generator_logits, labels);
    let discriminator = detection_loss(tape, z, d);
    let weighted = tape.mul_scalar(discriminator.mean, lambda);
    let total = tape.add(generator.mean, weighted);
    ElectraLoss {
        total,
        generator,
        discriminator,
    }
}

/// ELECTRA's corruption of `x` (see the module docs): [`mask_tokens`] with 85% `[MASK]`, then
/// the positions it gave a random token are put back, so the other 15% are all kept.
pub fn electra_mask(x: &Batch, vocab: &MlmVocab, config: &MlmConfig, rng: &mut impl Rng) -> MaskedBatch {
    let mut m = mask_tokens(x, vocab, config, rng);
    for (j, &i) in m.masked_positions.iter().enumerate() {
        if m.branches[j] == Branch::Random {
            m.x_masked.ids[i] = m.labels[j];
            m.branches[j] = Branch::Keep;
        }
    }
    m
}

/// One draw from each row of `logits` (`[rows, V]`, row-major) under softmax at temperature 1,
/// by the inverse of the cumulative distribution in f64.
pub fn sample_rows(logits: &[f32], v: usize, rng: &mut impl Rng) -> Vec<usize> {
    logits
        .chunks(v)
        .map(|z| {
            let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = z.iter().map(|&zi| (zi as f64 - max).exp()).collect();
            let u = rng.random::<f64>() * e.iter().sum::<f64>();
            let mut acc = 0.0;
            e.iter()
                .position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(v - 1)
        })
        .collect()
}

/// x̂ and d: `x` with `samples[j]` written at `positions[j]` (flat b * T + i), and one label per
/// position: `None` past a sequence's length, `Some(1)` where x̂_i != x_i, `Some(0)` elsewhere
/// (a sample equal to the original token counts as original).
pub fn replace(x: &Batch, positions: &[usize], samples: &[usize]) -> (Batch, Vec<Option<usize>>) {
    let mut x_hat = x.clone();
    for (&i, &s) in positions.iter().zip(samples) {
        x_hat.ids[i] = s;
    }
    let d = (0..x.ids.len())
        .map(|i| (i % x.seq_len < x.length(i / x.seq_len)).then_some((x_hat.ids[i] != x.ids[i]) as usize))
        .collect();
    (x_hat, d)
}

/// The generator: the discriminator's embeddings projected to width d_g, its own layers, and
/// BERT's MLM head back through the shared token table. Parameters `generator.*`.
#[derive(Clone, Debug)]
pub struct Generator {
    /// Its shape: the discriminator's, at width d_g.
    pub config: TransformerConfig,
    /// `embeddings_project`: d_model -> d_g.
    pub project: Linear,
    /// The layers at width d_g.
    pub layers: Vec<EncoderLayer>,
    /// LN_f (pre-LN).
    pub final_norm: Option<LayerNorm>,
    /// The head's W, b: d_g -> d_model, then GELU and `head_norm`.
    pub head_dense: Linear,
    /// The head's LayerNorm.
    pub head_norm: LayerNorm,
    /// E (the shared token table) and b_out.
    pub output: OutputProjection,
}

/// The discriminator's head: z_i = w . gelu(W h_i + b) + c (the reference's). `discriminator_head.*`.
#[derive(Clone, Debug)]
pub struct DetectionHead {
    /// W, b: d_model -> d_model.
    pub dense: Linear,
    /// w, c: d_model -> 1.
    pub output: Linear,
}

impl DetectionHead {
    /// Register the head for hidden states of width `d`.
    pub fn new(params: &mut Params, d: usize, rng: &mut impl Rng) -> DetectionHead {
        DetectionHead {
            dense: Linear::new(params, "discriminator_head.dense", d, d, true, rng),
            output: Linear::new(params, "discriminator_head.output", d, 1, true, rng),
        }
    }

    /// h [..., d] -> z [..., 1].
    pub fn forward(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let a = self.dense.forward(tape, params, h); // W h + b
        let a = tape.gelu(a);
        self.output.forward(tape, params, a) // w . gelu(W h + b) + c
    }
}

/// Generator and discriminator with their shared embeddings, and the corruption.
#[derive(Clone, Debug)]
pub struct Electra {
    /// The discriminator D (`encoder.*`, with the shared token table): what fine-tuning keeps.
    pub discriminator: Encoder,
    /// D's head.
    pub head: DetectionHead,
    /// G.
    pub generator: Generator,
    /// Which ids the corruption may choose and what it writes.
    pub vocab: MlmVocab,
    /// 15% of positions, 85% of them `[MASK]` (and no random branch, [`electra_mask`]).
    pub corruption: MlmConfig,
    /// The weight of L_D.
    pub lambda: f32,
}

impl Electra {
    /// Build D for `config` and G at width `generator_d_model` (which must divide into heads of
    /// D's head size) for `tokenizer`'s vocabulary. Errors name the field.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        tokenizer: &Tokenizer,
        generator_d_model: usize,
        rng: &mut impl Rng,
    ) -> Result<Electra, String> {
        if config.vocab_size != tokenizer.vocab_size() {
            return Err(format!(
                "Electra: config.vocab_size {} but the tokenizer has {} ids",
                config.vocab_size,
                tokenizer.vocab_size()
            ));
        }
        let head_size = config.d_model / config.heads.max(1);
        let g = TransformerConfig {
            d_model: generator_d_model,
            heads: (generator_d_model / head_size.max(1)).max(1),
            d_ff: 4 * generator_d_model,
            ..config.clone()
        };
        g.validate()
            .map_err(|e| format!("the generator (width {generator_d_model}): {e}"))?;
        let discriminator = Encoder::new(params, "encoder", config, rng)?;
        let head = DetectionHead::new(params, config.d_model, rng);
        let (d, dg, eps) = (config.d_model, generator_d_model, config.layer_norm_eps);
        let generator = Generator {
            project: Linear::new(params, "generator.embeddings_project", d, dg, true, rng),
            layers: (0..g.layers)
                .map(|i| EncoderLayer::new(params, &format!("generator.layers.{i}"), &g, rng))
                .collect(),
            final_norm: (g.norm == NormPlacement::Pre).then(|| LayerNorm::new(params, "generator.final_norm", dg, eps)),
            head_dense: Linear::new(params, "generator.head.dense", dg, d, true, rng),
            head_norm: LayerNorm::new(params, "generator.head.norm", d, eps),
            output: OutputProjection::new(params, "generator.head.output", &discriminator.embed.token, true, rng),
            config: g,
        };
        let max_predictions = ((0.155 * config.max_len as f64).floor() as usize).max(1);
        Ok(Electra {
            discriminator,
            head,
            generator,
            vocab: MlmVocab::of(tokenizer),
            corruption: MlmConfig {
                selection: Selection::PerSequence { max_predictions },
                mask_rate: 0.15,
                mask_token_prob: 0.85,
            },
            lambda: LAMBDA,
        })
    }

    /// What a checkpoint needs to rebuild it: D's config and the `electra.*` settings.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.discriminator.config.to_metadata();
        let g = &self.generator.config;
        m.insert("electra.generator_d_model".into(), g.d_model.to_string());
        m.insert("electra.lambda".into(), self.lambda.to_string());
        m.insert("electra.mask_rate".into(), self.corruption.mask_rate.to_string());
        m.insert(
            "electra.mask_token_prob".into(),
            self.corruption.mask_token_prob.to_string(),
        );
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote.
    pub fn load(path: &Path) -> Result<(Electra, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, tokenizer, metadata, params| {
            let key = "electra.generator_d_model";
            let dg = metadata.get(key).and_then(|v| v.parse().ok());
            let dg = dg.ok_or_else(|| format!("metadata '{key}' is missing or not a width"))?;
            Electra::new(params, config, tokenizer, dg, &mut StdRng::seed_from_u64(0))
        })
    }

    /// G's logits at the flat `positions` of `x_masked`: `[positions.len(), V]`.
    pub fn generator_logits(
        &self,
        tape: &mut Tape,
        params: &Params,
        x_masked: &Batch,
        positions: &[usize],
        rng: &mut impl Rng,
    ) -> Var {
        let g = &self.generator;
        let x0 = self.discriminator.embed.forward(tape, params, x_masked, 0, rng); // shared, [B, T, D]
        let x0 = g.project.forward(tape, params, x0); // [B, T, d_g]
        let mask = attention_mask(x_masked, false);
        let h = stack_forward(&g.layers, g.final_norm.as_ref(), tape, params, x0, &mask, rng);
        let (b, t, dg) = (x_masked.batch, x_masked.seq_len, g.config.d_model);
        let h = tape.reshape(h, &[b * t, dg]);
        let h_m = tape.embedding(h, positions, &[positions.len()]); // rows at M, [|M|, d_g]
        let a = g.head_dense.forward(tape, params, h_m); // [|M|, D]
        let a = tape.gelu(a);
        let a = g.head_norm.forward(tape, params, a); // LN(gelu(W h + b))
        g.output.forward(tape, params, a) // E . + b_out, [|M|, V]
    }

    /// D's logit for "replaced" at every position of `x_hat`: `[B * T, 1]`.
    pub fn discriminator_logits(&self, tape: &mut Tape, params: &Params, x_hat: &Batch, rng: &mut impl Rng) -> Var {
        let h = self.discriminator.forward(tape, params, x_hat, rng); // [B, T, D]
        let d = self.discriminator.config.d_model;
        let h = tape.reshape(h, &[x_hat.batch * x_hat.seq_len, d]);
        self.head.forward(tape, params, h)
    }

    /// Corrupt `x`, score M with G, sample x̂ from G's logits (their values: no gradient), label
    /// it, and score every position with D.
    pub fn forward(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> ElectraStep {
        let masked = electra_mask(x, &self.vocab, &self.corruption, rng);
        let z_g = self.generator_logits(tape, params, &masked.x_masked, &masked.masked_positions, rng);
        let values = tape.value(z_g).as_standard_layout().into_owned();
        let samples = sample_rows(values.as_slice().expect("standard layout"), self.vocab.size, rng);
        let (x_hat, d) = replace(x, &masked.masked_positions, &samples);
        let z_d = self.discriminator_logits(tape, params, &x_hat, rng);
        let loss = electra_loss(tape, z_g, &masked.labels, z_d, &d, self.lambda);
        ElectraStep {
            masked,
            x_hat,
            d,
            z_g,
            z_d,
            loss,
        }
    }

    /// L of a clean batch `x`, with draws from `rng`. Call `backward` on `.total`.
    pub fn loss(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> ElectraLoss {
        self.forward(tape, params, x, rng).loss
    }

    /// Over clean `batches` in evaluation mode, batch k masked and sampled with seed k (the same
    /// corruption every time): L as the loss, D's accuracy over N as the accuracy, and as extra
    /// measures G's MLM loss, L_D, D's accuracy on replaced and on original positions, the share
    /// replaced, and the accuracy of always answering "original" (the baseline D must beat).
    pub fn evaluate(&self, params: &Params, batches: &[Batch]) -> Evaluation {
        let mut tally = DetectionTally::default();
        for (k, x) in batches.iter().enumerate() {
            let mut tape = Tape::no_grad();
            let step = self.forward(&mut tape, params, x, &mut StdRng::seed_from_u64(k as u64));
            let (g, d) = (&step.loss.generator, &step.loss.discriminator);
            let generator = (tape.scalar(g.sum) as f64, g.count);
            let z = tape.value(step.z_d).iter().copied();
            tally.add(generator, tape.scalar(d.sum) as f64, z, &step.d);
        }
        tally.finish(self.lambda as f64)
    }
}

/// One forward pass of [`Electra::forward`]: the corruption, x̂ and d, both networks' logits,
/// and the loss.
#[derive(Clone, Debug)]
pub struct ElectraStep {
    /// X_masked, M and the original tokens there.
    pub masked: MaskedBatch,
    /// x̂: the clean batch with G's samples at M.
    pub x_hat: Batch,
    /// d per position (`None` for padding).
    pub d: Vec<Option<usize>>,
    /// G's logits at M, `[|M|, V]`.
    pub z_g: Var,
    /// D's logits, `[B * T, 1]`.
    pub z_d: Var,
    /// L and its parts.
    pub loss: ElectraLoss,
}
