//! CLIP: contrastive pretraining of two towers, one for images and one for text. Each image
//! must pick out its own caption among the batch's captions, and each caption its own image:
//!
//! ```text
//! logits = e^t Î T̂^T,       Î_i = I_i / |I_i|,  T̂_j = T_j / |T_j|    ([N, N])
//! L = ½ [ CE_rows(logits) + CE_rows(logits^T) ],   the target of row i is column i,
//! ```
//!
//! with I_i, T_j the projected image and text features and t a learned log-scale (the inverse
//! temperature e^t) that starts at t_0 = ln(1/0.07) and is clamped into [0, ln 100] after
//! every optimizer step, outside autograd (the trainer's [`Bound`]).
//!
//! Sources: Radford et al., 2021, "Learning Transferable Visual Models From Natural Language
//! Supervision" (CLIP), §2.5 and fig. 3; openai/CLIP `model.py` (`logit_scale`);
//! mlfoundations/open_clip (the clamp after each step); `docs/objectives.md` §6b.
//!
//! - **Image tower**: v_j = W vec(patch_j) + b + E_imgpos\[j\] (`nn/patch_embedding.rs`); the
//!   learned patch positions E_imgpos are its only position signal: no sinusoidal table, no
//!   sqrt(d) scale, no type vector and no dropout on the input. Then encoder layers of its own
//!   (the text tower's config, no padding mask), under pre-LN the final LayerNorm on every patch
//!   state, and only then the mean over patches, then a linear projection (no bias):
//!   I = W_i mean_j(LN_f(h_j)).
//! - **Text tower**: an encoder over `[CLS] caption [SEP]`, its `[CLS]` state, a linear projection.
//! - **N >= 2**: with one pair there is nothing to contrast (the loss is 0); a batch of one is an
//!   error. Captions that repeat within a batch are false negatives; the example draws batches
//!   with distinct captions.

use super::image_text::{rows_at, ImageTextBatch};
use super::simcse::cosine_matrix;
use crate::nn::encoder::stack_forward;
use crate::nn::{Encoder, EncoderLayer, LayerNorm, Linear, NormPlacement, PatchEmbedding, TransformerConfig};
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use crate::trainer::Bound;
use ndarray::{ArrayD, IxDyn};
use rand::Rng;

/// t_0 = ln(1/0.07): CLIP's initial log-scale, a temperature of 0.07.
pub const INITIAL_LOG_SCALE: f32 = 2.659_26;
/// ln 100: the largest log-scale allowed (e^t <= 100).
pub const MAX_LOG_SCALE: f32 = 4.605_170_2;

/// L from image features `i` [N, E], text features `t` [N, E] and the log-scale `log_scale` (one value).
/// Error: N < 2.
pub fn clip_loss(tape: &mut Tape, i: Var, t: Var, log_scale: Var) -> Result<Var, String> {
    let n = tape.shape(i)[0];
    if n < 2 {
        return Err(format!(
            "CLIP needs at least 2 image-caption pairs per batch (got {n}): the others are the negatives (--batch)"
        ));
    }
    let cos = cosine_matrix(tape, i, t); // Î T̂^T, [N, N]
    let scale = tape.exp(log_scale); // e^t, [1]
    let logits = tape.mul(cos, scale); // e^t Î T̂^T
    let diagonal: Vec<Option<usize>> = (0..n).map(Some).collect();
    let image_to_text = tape.cross_entropy(logits, &diagonal).mean; // CE_rows(logits)
    let logits_t = tape.transpose(logits, 0, 1);
    let text_to_image = tape.cross_entropy(logits_t, &diagonal).mean; // CE_rows(logits^T)
    let sum = tape.add(image_to_text, text_to_image);
    Ok(tape.mul_scalar(sum, 0.5)) // ½ [ .. + .. ]
}

/// The two towers and t. Parameters: `text.*` (an encoder), `text_proj.weight`, `image.patches.*`,
/// `image.layers.{i}.*`, `image.final_norm.*`, `image_proj.weight`, `clip.log_scale`.
#[derive(Clone, Debug)]
pub struct Clip {
    /// The text encoder.
    pub text: Encoder,
    /// T = W_t h_CLS.
    pub text_proj: Linear,
    /// Patch embeddings of the image tower.
    pub patches: PatchEmbedding,
    /// The image tower's layers (the text encoder's config).
    pub image_layers: Vec<EncoderLayer>,
    /// Its final LayerNorm LN_f (pre-LN only), applied to each patch state before the mean.
    pub image_norm: Option<LayerNorm>,
    /// I = W_i mean_j(LN_f(h_j)).
    pub image_proj: Linear,
    /// t, one value.
    pub log_scale: ParamId,
}

impl Clip {
    /// Both towers with `config`'s shape (the text tower without type embeddings, whatever
    /// `config.type_vocab_size` says), projections to `embed_dim`, t = t_0.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        image_size: usize,
        patch: usize,
        embed_dim: usize,
        rng: &mut impl Rng,
    ) -> Result<Clip, String> {
        let d = config.d_model;
        let text_config = TransformerConfig {
            type_vocab_size: 0, // one caption, no segments
            ..config.clone()
        };
        let text = Encoder::new(params, "text", &text_config, rng)?;
        let patches = PatchEmbedding::new(params, "image.patches", image_size, patch, 3, d, rng)?;
        let image_layers = (0..config.layers)
            .map(|l| EncoderLayer::new(params, &format!("image.layers.{l}"), config, rng))
            .collect();
        let image_norm = (config.norm == NormPlacement::Pre)
            .then(|| LayerNorm::new(params, "image.final_norm", d, config.layer_norm_eps));
        let t0 = ArrayD::from_elem(IxDyn(&[1]), INITIAL_LOG_SCALE).into_shared();
        Ok(Clip {
            text,
            text_proj: Linear::new(params, "text_proj", d, embed_dim, false, rng),
            patches,
            image_layers,
            image_norm,
            image_proj: Linear::new(params, "image_proj", d, embed_dim, false, rng),
            log_scale: params.add("clip.log_scale", t0),
        })
    }

    /// The clamp of t into [0, ln 100] for the trainer to apply after each step.
    pub fn bound() -> Bound {
        Bound {
            param: "clip.log_scale".into(),
            min: 0.0,
            max: MAX_LOG_SCALE,
        }
    }

    /// I [N, E]: patches (with their learned positions, nothing else added), the image layers,
    /// the final LayerNorm per patch (pre-LN), the mean over patches, the projection.
    pub fn image_features(&self, tape: &mut Tape, params: &Params, batch: &ImageTextBatch, rng: &mut impl Rng) -> Var {
        let v = self.patches.forward(tape, params, &batch.images); // [N, P, D]
        let mask = crate::ops::AttentionMask::none(); // every patch is real
        let h = stack_forward(
            &self.image_layers,
            self.image_norm.as_ref(),
            tape,
            params,
            v,
            &mask,
            rng,
        );
        let pooled = tape.mean(h, &[1], false); // mean_j h_j, [N, D]
        self.image_proj.forward(tape, params, pooled)
    }

    /// T [N, E]: the text encoder's `[CLS]` state, projected.
    pub fn text_features(&self, tape: &mut Tape, params: &Params, batch: &ImageTextBatch, rng: &mut impl Rng) -> Var {
        let text = without_segments(batch);
        let h = self.text.forward(tape, params, &text, rng); // [N, T, D]
        let cls: Vec<usize> = (0..text.batch).map(|b| b * text.seq_len).collect();
        let h_cls = rows_at(tape, h, &cls);
        self.text_proj.forward(tape, params, h_cls)
    }

    /// What a checkpoint needs: the towers' config, the image geometry and the embedding width.
    pub fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = self.text.config.to_metadata();
        m.insert("clip.image_size".into(), self.patches.image_size.to_string());
        m.insert("clip.patch".into(), self.patches.patch.to_string());
        m.insert("clip.embed_dim".into(), self.text_proj.d_out.to_string());
        m
    }

    /// L for a batch of N >= 2 matched pairs.
    pub fn loss(
        &self,
        tape: &mut Tape,
        params: &Params,
        batch: &ImageTextBatch,
        rng: &mut impl Rng,
    ) -> Result<Var, String> {
        let i = self.image_features(tape, params, batch, rng);
        let t = self.text_features(tape, params, batch, rng);
        let log_scale = tape.param(params, self.log_scale);
        clip_loss(tape, i, t, log_scale)
    }
}

/// The text tower has no type embeddings: the batch's text without its type ids.
fn without_segments(batch: &ImageTextBatch) -> crate::data::Batch {
    let mut text = batch.text.clone();
    text.segments = None;
    text
}

impl Clip {
    /// On held-out matched pairs (distinct captions), in evaluation mode: the loss,
    /// image-to-caption top-1 as the accuracy, and `caption_to_image` top-1 and the scale e^t
    /// as extra measures.
    pub fn validation(&self, params: &Params, batch: &ImageTextBatch) -> super::Evaluation {
        let mut tape = Tape::no_grad();
        let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let loss = self
            .loss(&mut tape, params, batch, rng)
            .expect("held-out batches hold 2 or more pairs");
        let (i2t, t2i) = self.retrieval(params, batch);
        let t = params.value(self.log_scale)[[0]];
        super::Evaluation {
            loss: tape.scalar(loss) as f64,
            accuracy: Some(i2t),
            count: batch.text.batch,
            extra: vec![("caption_to_image".into(), t2i), ("scale".into(), t.exp() as f64)],
        }
    }

    /// The clip example's closing lines: top-1 [`Clip::retrieval`] among the held-out pairs of
    /// `batch` beside chance, and the learned scale e^t.
    pub fn retrieval_report(&self, params: &Params, batch: &ImageTextBatch) -> String {
        let (i2t, t2i) = self.retrieval(params, batch);
        let scale = params.value(self.log_scale)[[0]].exp();
        let n = batch.text.batch;
        format!(
            "\ntop-1 retrieval among {n} held-out pairs (chance {:.2}):\n  image -> caption {i2t:.3}\n  \
             caption -> image {t2i:.3}\nlearned scale e^t = {scale:.1} (temperature {:.4}; started at 14.3, \
             capped at 100)",
            1.0 / n as f64,
            1.0 / scale
        )
    }

    /// Top-1 retrieval among the batch's pairs, both ways: the share of images whose most
    /// similar caption is their own, and of captions whose most similar image is their own.
    pub fn retrieval(&self, params: &Params, batch: &ImageTextBatch) -> (f64, f64) {
        let mut tape = Tape::no_grad();
        let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let i = self.image_features(&mut tape, params, batch, rng);
        let t = self.text_features(&mut tape, params, batch, rng);
        let cos = cosine_matrix(&mut tape, i, t); // [N, N], rows images
        let cos_t = tape.transpose(cos, 0, 1); // rows captions
        let n = batch.text.batch as f64;
        let mut top1 = |m: Var| {
            let best = tape.argmax(m, 1);
            let hits = tape
                .value(best)
                .iter()
                .enumerate()
                .filter(|(r, &c)| *r == c as usize)
                .count();
            hits as f64 / n
        };
        (top1(cos), top1(cos_t))
    }
}
