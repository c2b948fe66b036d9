//! The encoder-decoder (the paper's full model, and the shape of BART and T5): the encoder reads
//! the source bidirectionally; each decoder layer attends causally to the target so far and, by
//! cross-attention, to the encoder's output:
//!
//!   m = Encoder(source),   y_l = DecoderLayer_l(y_{l-1}, m),   logits = LN_f(y_N) W^T + b.

use super::config::{NormPlacement, TransformerConfig};
use super::decoder_layer::DecoderLayer;
use super::embedding::InputEmbedding;
use super::encoder::Encoder;
use super::layer_norm::LayerNorm;
use super::output::OutputProjection;
use super::tokens::Tokens;
use crate::{Params, Tape, Var};
use rand::Rng;

/// Parameters: `encoder.*` (see [`Encoder`]), `decoder.token_embedding.weight`,
/// `decoder.layers.{i}.*`, `decoder.final_norm.*` (pre-LN only), `decoder.lm_head.bias` and,
/// untied, `decoder.lm_head.weight`.
#[derive(Clone, Debug)]
pub struct EncoderDecoder {
    /// Reads the source.
    pub encoder: Encoder,
    /// Target embeddings and positions.
    pub embed: InputEmbedding,
    /// The decoder's N layers.
    pub layers: Vec<DecoderLayer>,
    /// The decoder's LN_f, present under pre-LN.
    pub final_norm: Option<LayerNorm>,
    /// Decoder states -> logits.
    pub lm_head: OutputProjection,
}

impl EncoderDecoder {
    /// Build under the names `encoder` and `decoder`.
    pub fn new(params: &mut Params, config: &TransformerConfig, rng: &mut impl Rng) -> Result<EncoderDecoder, String> {
        let encoder = Encoder::new(params, "encoder", config, rng)?;
        let embed = InputEmbedding::new(params, "decoder", config, rng);
        let layers = (0..config.layers)
            .map(|i| DecoderLayer::new(params, &format!("decoder.layers.{i}"), config, rng))
            .collect();
        let final_norm = (config.norm == NormPlacement::Pre)
            .then(|| LayerNorm::new(params, "decoder.final_norm", config.d_model, config.layer_norm_eps));
        let lm_head = OutputProjection::new(params, "decoder.lm_head", &embed.token, config.tie_embeddings, rng);
        Ok(EncoderDecoder {
            encoder,
            embed,
            layers,
            final_norm,
            lm_head,
        })
    }

    /// source [B, S], target [B, T] -> logits [B, T, vocab] for the target's next tokens.
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &Params,
        source: &Tokens,
        target: &Tokens,
        rng: &mut impl Rng,
    ) -> Var {
        assert!(
            source.batch == target.batch,
            "encoder-decoder: source batch {} != target batch {}",
            source.batch,
            target.batch
        );
        let memory = self.encoder.forward(tape, params, source, rng); // [B, S, D]
        let memory_mask = source.attention_mask(false); // source padding
        let self_mask = target.attention_mask(true); // causal + target padding
        let mut y = self.embed.forward(tape, params, target, rng); // [B, T, D]
        for layer in &self.layers {
            y = layer.forward(tape, params, y, memory, &self_mask, &memory_mask, rng);
        }
        let y = match &self.final_norm {
            Some(ln) => ln.forward(tape, params, y),
            None => y,
        };
        self.lm_head.forward(tape, params, y) // [B, T, vocab]
    }
}
