//! One stream of text and image for a single bidirectional encoder (the ViLT layout):
//!
//! ```text
//! text:   e_i = E_tok[x_i] * s + PE[i] + E_type[0]            i = 0 .. n-1 ([CLS] caption [SEP])
//! image:  v_j = W vec(patch_j) + b + E_imgpos[j] + E_type[1]  j = 0 .. P-1
//! stream: [CLS] x_1 .. x_{n-2} [SEP] v_0 .. v_{P-1} [PAD] ..
//! ```
//!
//! The text goes first and the image right after it, so each row is n + P real positions
//! followed by padding, and the encoder's key-padding mask (a length per row) covers both parts.
//! Text keeps its positions 0..n-1 in the stream; the patches have their own position table.
//! The type vectors E_type are the encoder's segment table: row 0 for text, row 1 for image.
//!
//! Sources: Kim et al., 2021, "ViLT", §3.1 and fig. 3; Chen et al., 2020, "UNITER", §3.1;
//! `docs/objectives.md` §3. (ViLT also opens the image part with a learned image-`[CLS]`
//! vector; we leave it out, as the text `[CLS]` already pools the pair.)

use crate::data::shapes::Image;
use crate::data::Batch;
use crate::nn::{Encoder, PatchEmbedding, TransformerConfig};
use crate::ops::AttentionMask;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use ndarray::{ArrayD, IxDyn};
use rand::Rng;

/// Captions and images, row b of each belonging together (or, for image-text matching, not).
#[derive(Clone, Debug)]
pub struct ImageTextBatch {
    /// `[CLS] caption [SEP]`, padded to the longest, with lengths and type ids 0.
    pub text: Batch,
    /// [B, H, W, C] pixels, f32 in [0, 1].
    pub images: Tensor,
}

impl ImageTextBatch {
    /// Tokenize `captions` as `[CLS] caption [SEP]` and stack `images`. Error: a caption
    /// longer than `max_text` positions (naming it and the setting), or counts that differ.
    pub fn new(
        captions: &[&str],
        images: &[&Image],
        tokenizer: &Tokenizer,
        max_text: usize,
    ) -> Result<ImageTextBatch, String> {
        if captions.len() != images.len() {
            return Err(format!("{} captions for {} images", captions.len(), images.len()));
        }
        let sp = tokenizer.specials();
        let mut rows = Vec::new();
        for caption in captions {
            let mut ids = vec![sp.cls];
            ids.extend(tokenizer.encode(caption));
            ids.push(sp.sep);
            if ids.len() > max_text {
                return Err(format!(
                    "the caption \"{caption}\" takes {} text positions with [CLS] and [SEP], more than the model's {max_text} (config.max_len, --text-len)",
                    ids.len()
                ));
            }
            rows.push(ids);
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(1);
        let lengths = rows.iter().map(Vec::len).collect();
        let ids = rows
            .into_iter()
            .flat_map(|r| r.into_iter().chain(std::iter::repeat(sp.pad)).take(t))
            .collect();
        let text = Batch::new(ids, captions.len(), t)
            .with_lengths(lengths)
            .with_segments(vec![0; captions.len() * t]);
        Ok(ImageTextBatch {
            text,
            images: stack_images(images),
        })
    }

    /// Other captions of the same shape (a masked copy, say) with the same images.
    pub fn with_text(&self, text: Batch) -> ImageTextBatch {
        assert_eq!(text.batch, self.text.batch, "with_text: one caption per image");
        ImageTextBatch {
            text,
            images: self.images.clone(),
        }
    }

    /// The same captions with other images (the same count).
    pub fn with_images(&self, images: &[&Image]) -> ImageTextBatch {
        assert_eq!(images.len(), self.text.batch, "with_images: one image per caption");
        ImageTextBatch {
            text: self.text.clone(),
            images: stack_images(images),
        }
    }
}

/// Images of one size -> [B, H, W, 3].
pub fn stack_images(images: &[&Image]) -> Tensor {
    let s = images.first().map_or(0, |im| im.size);
    assert!(
        images.iter().all(|im| im.size == s),
        "stack_images: images of different sizes"
    );
    let data: Vec<f32> = images.iter().flat_map(|im| im.rgb.iter().copied()).collect();
    ArrayD::from_shape_vec(IxDyn(&[images.len(), s, s, 3]), data)
        .expect("size * size * 3 values per image")
        .into_shared()
}

/// The text embedding of an [`Encoder`] with two type ids, the patch embedding, and the
/// encoder's layers over the stream. Parameters: `encoder.*`, `patches.*`.
#[derive(Clone, Debug)]
pub struct OneStream {
    /// Token, type and position embeddings for the text, and the layers.
    pub encoder: Encoder,
    /// W, b and E_imgpos.
    pub patches: PatchEmbedding,
}

impl OneStream {
    /// Build it; `config.type_vocab_size` must be 2 (text, image). Errors name the setting.
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        image_size: usize,
        patch: usize,
        rng: &mut impl Rng,
    ) -> Result<OneStream, String> {
        if config.type_vocab_size != 2 {
            return Err(format!(
                "one stream of text and image needs config.type_vocab_size = 2 (text, image), got {}",
                config.type_vocab_size
            ));
        }
        if config.embedding_norm {
            return Err("one stream of text and image does not support config.embedding_norm \
                 (--embedding-norm): the LayerNorm would see the text alone, not the patches"
                .into());
        }
        let encoder = Encoder::new(params, "encoder", config, rng)?;
        let patches = PatchEmbedding::new(params, "patches", image_size, patch, 3, config.d_model, rng)?;
        Ok(OneStream { encoder, patches })
    }

    /// The stream x_0 [B, n_max + P, D] (module docs) and its key-padding mask.
    pub fn embed(
        &self,
        tape: &mut Tape,
        params: &Params,
        batch: &ImageTextBatch,
        rng: &mut impl Rng,
    ) -> (Var, AttentionMask) {
        let (b, tt, p) = (batch.text.batch, batch.text.seq_len, self.patches.num_patches());
        let e = self.encoder.embed.forward(tape, params, &batch.text, 0, rng); // e_i, [B, Tt, D]
        let v = self.patches.forward(tape, params, &batch.images); // W vec(patch_j) + b + E_imgpos[j]
        let types = self.encoder.embed.segment.as_ref().expect("checked in new");
        let e_type1 = types.forward(tape, params, &vec![1; b * p], &[b, p]); // E_type[1]
        let v = tape.add(v, e_type1);
        let v = self.encoder.embed.dropout.forward(tape, v, rng); // [B, P, D]

        // Pack each row as its n text positions, then its P patches, then padding: gather rows
        // of [text | patches] (concatenated per row, Tt + P of them) in that order.
        let ts = tt + p;
        let both = tape.concat(&[e, v], 1); // [B, Tt + P, D]
        let d = tape.shape(both)[2];
        let rows = tape.reshape(both, &[b * ts, d]);
        let mut order = Vec::with_capacity(b * ts);
        for row in 0..b {
            let n = batch.text.length(row);
            for t in 0..ts {
                let source = match t {
                    t if t < n => t,              // text position t
                    t if t < n + p => tt + t - n, // patch t - n
                    t => t - p,                   // a text padding slot (n <= t - p < Tt)
                };
                order.push(row * ts + source);
            }
        }
        let x0 = tape.embedding(rows, &order, &[b, ts]); // [B, Tt + P, D]
        let lengths = (0..b).map(|row| batch.text.length(row) + p).collect();
        (x0, AttentionMask::padding(lengths))
    }

    /// h [B, n_max + P, D]: the encoder over the stream. Text position i of row b is stream
    /// position i; its patches follow at n_b .. n_b + P.
    pub fn forward(&self, tape: &mut Tape, params: &Params, batch: &ImageTextBatch, rng: &mut impl Rng) -> Var {
        let (x0, mask) = self.embed(tape, params, batch, rng);
        self.encoder.forward_embedded(tape, params, x0, &mask, rng)
    }

    /// Flat text positions (b * Tt + i) -> the same positions in the stream (b * (Tt + P) + i).
    pub fn stream_positions(&self, batch: &ImageTextBatch, text_positions: &[usize]) -> Vec<usize> {
        let (tt, ts) = (batch.text.seq_len, batch.text.seq_len + self.patches.num_patches());
        text_positions.iter().map(|&f| (f / tt) * ts + f % tt).collect()
    }
}

/// The rows of h [B, T, D] at flat `positions` (b * T + t): [positions.len(), D].
pub fn rows_at(tape: &mut Tape, h: Var, positions: &[usize]) -> Var {
    let (b, t, d) = match *tape.shape(h) {
        [b, t, d] => (b, t, d),
        ref s => panic!("rows_at: expected h [B, T, D], got {s:?}"),
    };
    let flat = tape.reshape(h, &[b * t, d]);
    tape.embedding(flat, positions, &[positions.len()])
}
