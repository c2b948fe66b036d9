//! The encoder-decoder (the paper's full model, and the shape of BART and T5): the encoder reads
//! the source bidirectionally; each decoder layer attends causally to the target so far and, by
//! cross-attention, to the encoder's output:
//!
//!   m = Encoder(source),   y_l = DecoderLayer_l(y_{l-1}, m),   logits = LN_f(y_N) W^T + b.
//!
//! Generation encodes the source once ([`EncoderDecoder::encode`]) and then decodes one token
//! at a time with a cache ([`EncoderDecoder::decode`]).

use super::attention::attention_mask;
use super::config::{NormPlacement, TransformerConfig};
use super::decoder_layer::DecoderLayer;
use super::embedding::InputEmbedding;
use super::encoder::Encoder;
use super::kv_cache::Cache;
use super::layer_norm::LayerNorm;
use super::output::OutputProjection;
use crate::data::Batch;
use crate::params::Params;
use crate::tape::{Tape, Var};
use rand::Rng;

/// Parameters: `encoder.*` (see [`Encoder`]), `decoder.layers.{i}.*`, `decoder.final_norm.*`
/// (pre-LN only) and `decoder.lm_head.bias`; untied, also `decoder.token_embedding.weight` and
/// `decoder.lm_head.weight`. Tied (`config.tie_embeddings`), the encoder's token table is the
/// decoder's too and the output projection's weight, as in the paper's section 3.4.
#[derive(Clone, Debug)]
pub struct EncoderDecoder {
    /// The configuration it was built from (both stacks share it).
    pub config: TransformerConfig,
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
        // Tied: one table for the encoder's tokens, the decoder's tokens and the output (the
        // paper's section 3.4, BART and T5), `encoder.token_embedding.weight`.
        let embed = match config.tie_embeddings {
            true => InputEmbedding::sharing(params, "decoder", config, &encoder.embed.token, rng),
            false => InputEmbedding::new(params, "decoder", config, rng),
        };
        let layers = (0..config.layers)
            .map(|i| DecoderLayer::new(params, &format!("decoder.layers.{i}"), config, rng))
            .collect();
        let final_norm = (config.norm == NormPlacement::Pre)
            .then(|| LayerNorm::new(params, "decoder.final_norm", config.d_model, config.layer_norm_eps));
        let lm_head = OutputProjection::new(params, "decoder.lm_head", &embed.token, config.tie_embeddings, rng);
        Ok(EncoderDecoder {
            config: config.clone(),
            encoder,
            embed,
            layers,
            final_norm,
            lm_head,
        })
    }

    /// source [B, S], target [B, T] -> logits [B, T, vocab] for the target's next tokens.
    pub fn forward(&self, tape: &mut Tape, params: &Params, source: &Batch, target: &Batch, rng: &mut impl Rng) -> Var {
        let memory = self.encode(tape, params, source, rng); // [B, S, D]
        self.decode(tape, params, memory, source, target, None, rng)
    }

    /// m = Encoder(source): the memory [B, S, D] every decoder layer attends to.
    pub fn encode(&self, tape: &mut Tape, params: &Params, source: &Batch, rng: &mut impl Rng) -> Var {
        self.encoder.forward(tape, params, source, rng)
    }

    /// target [B, T] attending to `memory` [B, S, D] (the encoding of `source`, whose lengths
    /// mask its padding) -> logits [B, T, vocab]. With `cache` (generation), `target` sits at
    /// the positions after the cached ones; the cross-attention keys and values are computed
    /// from `memory` at the first call and reused after.
    #[allow(clippy::too_many_arguments)]
    pub fn decode(
        &self,
        tape: &mut Tape,
        params: &Params,
        memory: Var,
        source: &Batch,
        target: &Batch,
        mut cache: Option<&mut Cache>,
        rng: &mut impl Rng,
    ) -> Var {
        assert!(
            source.batch == target.batch,
            "encoder-decoder: source batch {} != target batch {}",
            source.batch,
            target.batch
        );
        let start = cache.as_ref().map_or(0, |c| c.positions); // position of target[0]
        let memory_mask = attention_mask(source, false); // source padding
        let self_mask = attention_mask(target, true); // causal + target padding
        let self_mask = match &cache {
            Some(c) => c.self_mask(target, self_mask), // none for one token after cached ones
            None => self_mask,
        };
        let mut y = self.embed.forward(tape, params, target, start, rng); // [B, T, D]
        for (l, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            y = layer.forward(tape, params, y, memory, &self_mask, &memory_mask, layer_cache, rng);
        }
        if let Some(c) = cache {
            c.positions = start + target.seq_len;
        }
        let y = match &self.final_norm {
            Some(ln) => ln.forward(tape, params, y),
            None => y,
        };
        self.lm_head.forward(tape, params, y) // [B, T, vocab]
    }

    /// An empty cache for the decoder.
    pub fn new_cache(&self) -> Cache {
        Cache::new(self.config.layers)
    }
}
