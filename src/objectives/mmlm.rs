//! The multimodal masked language model (MMLM): mask words of a caption and predict them from
//! the rest of the caption and the image,
//!
//!   L_MMLM = -(1/|M|) sum_{i in M} log P(x_i | X_masked, Y),
//!
//! where X is the caption, Y the image's patch features and M a set of caption positions only:
//! an image position never has a label, and the image is never altered (UNITER's "conditional
//! masking"). Trained beside image-text matching (`itm.rs`):
//!
//!   L = L_MMLM + L_ITM.
//!
//! Sources: Chen et al., 2020, "UNITER", §3.1 (MLM conditioned on the image, ITM);
//! Kim et al., 2021, "ViLT", §3.2; Li et al., 2019, "VisualBERT"; `docs/objectives.md` §3.
//!
//! - **The model**: one bidirectional encoder over `[CLS] caption [SEP] patches` (`image_text.rs`),
//!   BERT's MLM head (`mlm_head.rs`) on the masked caption positions, always with its transform
//!   (LN(gelu(W h + b)), exact GELU) and tied to the token table when `config.tie_embeddings`,
//!   and the ITM head on h_CLS.
//! - **Masking**: the masked LM's procedure (`mlm.rs`, §1) on the caption alone: `[CLS]`, `[SEP]`
//!   and padding are never chosen, and every caption gets at least one masked word
//!   (k = max(1, round(0.15 n)) of its n positions, variant A).
//! - **Matched pairs only**: every caption of the batch is masked (so that a mask never tells
//!   ITM which rows are matched), but only the matched rows' masked words are scored. One pass of
//!   the encoder serves both losses.

use super::image_text::{rows_at, ImageTextBatch, OneStream};
use super::itm::{itm_loss, ItmBatch, ItmLabel};
use super::mlm::{mask_tokens, mlm_loss, MaskedBatch, MlmConfig, MlmVocab};
use super::nsp::NspHead;
use super::{Evaluation, Tally};
use crate::checkpoint;
use crate::generate::argmax_excluding;
use crate::nn::{MlmHead, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// The two losses of one batch; the trainer differentiates `total`.
pub struct MmlmLoss {
    /// L_MMLM + L_ITM (or L_MMLM alone when ITM is off).
    pub total: Var,
    /// L_MMLM over the masked words of matched rows.
    pub mmlm: CrossEntropy,
    /// L_ITM over every row.
    pub itm: CrossEntropy,
}

/// The trainer differentiates `total`.
impl From<MmlmLoss> for Var {
    fn from(l: MmlmLoss) -> Var {
        l.total
    }
}

/// The one-stream encoder, the MLM head (`mlm_head.*`) and the ITM head (`itm.*`).
#[derive(Clone, Debug)]
pub struct Mmlm {
    /// Text and patch embeddings and the encoder.
    pub stream: OneStream,
    /// Predicts the masked words: BERT's head with the transform, always (`mlm_head.transform.*`,
    /// `mlm_head.norm.*`), its output tied to the token table when `config.tie_embeddings`.
    pub head: MlmHead,
    /// Pooler and matched/mismatched classifier.
    pub itm: NspHead,
    /// Which ids masking may choose and what it writes.
    pub vocab: MlmVocab,
    /// BERT's corruption (§1).
    pub corruption: MlmConfig,
    /// Whether L_ITM is part of the loss.
    pub use_itm: bool,
}

impl Mmlm {
    /// Build it for `config` (type_vocab_size 2), `tokenizer`'s words and images of
    /// `image_size` cut into `patch` x `patch` patches. Errors name the setting.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        tokenizer: &Tokenizer,
        image_size: usize,
        patch: usize,
        use_itm: bool,
        rng: &mut impl Rng,
    ) -> Result<Mmlm, String> {
        if config.vocab_size != tokenizer.vocab_size() {
            return Err(format!(
                "Mmlm: config.vocab_size {} but the tokenizer has {} ids",
                config.vocab_size,
                tokenizer.vocab_size()
            ));
        }
        let stream = OneStream::new(params, config, image_size, patch, rng)?;
        let token = &stream.encoder.embed.token;
        let head = MlmHead::new(
            params,
            "mlm_head",
            token,
            config.tie_embeddings,
            true,
            config.layer_norm_eps,
            rng,
        );
        let itm = NspHead::named(params, "itm", config.d_model, rng);
        Ok(Mmlm {
            stream,
            head,
            itm,
            vocab: MlmVocab::of(tokenizer),
            corruption: MlmConfig::default(),
            use_itm,
        })
    }

    /// z_M [|M|, V] at the flat text `positions` and s [B, 2], from one pass over the stream.
    pub fn scores(
        &self,
        tape: &mut Tape,
        params: &Params,
        batch: &ImageTextBatch,
        positions: &[usize],
        rng: &mut impl Rng,
    ) -> (Var, Var) {
        let h = self.stream.forward(tape, params, batch, rng); // [B, n_max + P, D]
        let in_stream = self.stream.stream_positions(batch, positions);
        let h_masked = rows_at(tape, h, &in_stream); // [|M|, D]
        let z_masked = self.head.forward(tape, params, h_masked); // [|M|, V]
        let s = self.itm.forward(tape, params, h); // from h_CLS, [B, 2]
        (z_masked, s)
    }

    /// Mask every caption, run the stream once, score the matched rows' masked words and every
    /// row's ITM label.
    pub fn loss(&self, tape: &mut Tape, params: &Params, batch: &ItmBatch, rng: &mut impl Rng) -> MmlmLoss {
        let masked = mask_tokens(&batch.pairs.text, &self.vocab, &self.corruption, rng);
        let (positions, labels) = matched_only(&masked, &batch.labels);
        let corrupted = batch.pairs.with_text(masked.x_masked); // Y unchanged
        let (z_masked, s) = self.scores(tape, params, &corrupted, &positions, rng);
        let mmlm = mlm_loss(tape, z_masked, &labels);
        let itm = itm_loss(tape, s, &batch.labels);
        let total = if self.use_itm {
            tape.add(mmlm.mean, itm.mean) // L_MMLM + L_ITM
        } else {
            mmlm.mean
        };
        MmlmLoss { total, mmlm, itm }
    }

    /// Masked-word loss and accuracy on the matched rows of `batches`, with `itm_loss` and
    /// `itm_accuracy` as extra measures; evaluation mode, masks seeded by the batch's index.
    pub fn validation(&self, params: &Params, batches: &[ItmBatch]) -> Evaluation {
        let (mut words, mut itm) = (Tally::default(), Tally::default());
        for (k, batch) in batches.iter().enumerate() {
            let masked = mask_tokens(
                &batch.pairs.text,
                &self.vocab,
                &self.corruption,
                &mut StdRng::seed_from_u64(k as u64),
            );
            let (positions, labels) = matched_only(&masked, &batch.labels);
            let corrupted = batch.pairs.with_text(masked.x_masked);
            let mut tape = Tape::no_grad();
            let (z, s) = self.scores(&mut tape, params, &corrupted, &positions, &mut StdRng::seed_from_u64(0));
            words.add(&mut tape, z, &labels.iter().map(|&x| Some(x)).collect::<Vec<_>>());
            itm.add(
                &mut tape,
                s,
                &batch.labels.iter().map(|y| Some(y.class())).collect::<Vec<_>>(),
            );
        }
        let itm = itm.finish();
        let extra = vec![
            ("itm_loss".to_string(), itm.loss),
            ("itm_accuracy".to_string(), itm.accuracy.unwrap_or(0.0)),
        ];
        Evaluation {
            extra,
            ..words.finish()
        }
    }

    /// The most probable word at each flat text position of `batch` (already masked), never one
    /// of the `banned` ids (the specials, when the words are shown as text), and P(Matched) for
    /// each row; evaluation mode.
    pub fn predict(
        &self,
        params: &Params,
        batch: &ImageTextBatch,
        positions: &[usize],
        banned: &[usize],
    ) -> (Vec<usize>, Vec<f32>) {
        let mut tape = Tape::no_grad();
        let (z, s) = self.scores(&mut tape, params, batch, positions, &mut StdRng::seed_from_u64(0));
        let p = tape.softmax(s, 1);
        let words = tape
            .value(z)
            .outer_iter()
            .map(|row| argmax_excluding(row.as_slice().expect("rows are contiguous"), banned).unwrap_or(0))
            .collect();
        let matched = tape
            .value(p)
            .outer_iter()
            .map(|row| row[ItmLabel::Matched.class()])
            .collect();
        (words, matched)
    }

    /// Each layer's attention from the flat text position `query` (row b, position i) to the
    /// P patches of row b, averaged over heads: `[layers][P]`. Evaluation mode.
    pub fn attention_to_patches(&self, params: &Params, batch: &ImageTextBatch, query: usize) -> Vec<Vec<f32>> {
        let mut tape = Tape::no_grad();
        let (x0, mask) = self
            .stream
            .embed(&mut tape, params, batch, &mut StdRng::seed_from_u64(0));
        let x0: Tensor = tape.value(x0).clone();
        let maps = crate::nn::encoder::attention_maps(&self.stream.encoder.layers, params, &x0, &mask);
        let (tt, p) = (batch.text.seq_len, self.stream.patches.num_patches());
        let (b, i) = (query / tt, query % tt);
        let n = batch.text.length(b);
        maps.iter()
            .map(|w| {
                let heads = w.shape()[1];
                (0..p)
                    .map(|j| (0..heads).map(|h| w[[b, h, i, n + j]]).sum::<f32>() / heads as f32)
                    .collect()
            })
            .collect()
    }

    /// The config, the image geometry, whether ITM is trained, and the masking rates (the
    /// selection is always BERT's per-sequence one).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.stream.encoder.config.to_metadata();
        let patches = &self.stream.patches;
        m.insert("mmlm.image_size".into(), patches.image_size.to_string());
        m.insert("mmlm.patch".into(), patches.patch.to_string());
        m.insert("mmlm.itm".into(), self.use_itm.to_string());
        m.insert("mlm.mask_rate".into(), self.corruption.mask_rate.to_string());
        m.insert(
            "mlm.mask_token_prob".into(),
            self.corruption.mask_token_prob.to_string(),
        );
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote.
    pub fn load(path: &Path) -> Result<(Mmlm, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, tokenizer, metadata, params| {
            let field = |k: &str| -> Result<usize, String> {
                let v = metadata.get(k).ok_or_else(|| format!("no '{k}' in the metadata"))?;
                v.parse().map_err(|_| format!("'{k}' is '{v}', not a count"))
            };
            let itm = metadata.get("mmlm.itm").map(String::as_str) != Some("false");
            let (size, patch) = (field("mmlm.image_size")?, field("mmlm.patch")?);
            let rng = &mut StdRng::seed_from_u64(0);
            let mut model = Mmlm::new(params, config, tokenizer, size, patch, itm, rng)?;
            for (key, value) in [
                ("mlm.mask_rate", &mut model.corruption.mask_rate),
                ("mlm.mask_token_prob", &mut model.corruption.mask_token_prob),
            ] {
                if let Some(v) = metadata.get(key) {
                    *value = v.parse().map_err(|_| format!("'{key}' is '{v}', not a number"))?;
                }
            }
            Ok(model)
        })
    }
}

/// The masked positions and labels of the matched rows only.
fn matched_only(masked: &MaskedBatch, labels: &[ItmLabel]) -> (Vec<usize>, Vec<usize>) {
    let t = masked.x_masked.seq_len;
    masked
        .masked_positions
        .iter()
        .zip(&masked.labels)
        .filter(|(&f, _)| labels[f / t] == ItmLabel::Matched)
        .map(|(&f, &x)| (f, x))
        .unzip()
}
