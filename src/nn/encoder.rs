//! The bidirectional encoder stack (BERT's shape): input embedding, N encoder layers, and a
//! final LayerNorm under pre-LN:
//!
//!   x_0 = Dropout(E(ids) * s + S(segments) + PE),   x_l = EncoderLayer_l(x_{l-1}),
//!   h = LN_f(x_N) (pre-LN) or x_N (post-LN).
//!
//! Every position attends to every real (non-padding) position of its sequence. Under the
//! causal mask the same stack is the decoder-only model's (see `decoder.rs`).

use super::attention::attention_mask;
use super::config::{NormPlacement, TransformerConfig};
use super::embedding::InputEmbedding;
use super::encoder_layer::EncoderLayer;
use super::kv_cache::Cache;
use super::layer_norm::LayerNorm;
use crate::data::Batch;
use crate::ops::AttentionMask;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Parameters: `{name}.token_embedding.weight`, `{name}.segment_embedding.weight` (if
/// segments), `{name}.layers.{i}.*`, `{name}.final_norm.*` (pre-LN only).
#[derive(Clone, Debug)]
pub struct Encoder {
    /// The configuration it was built from.
    pub config: TransformerConfig,
    /// Token (+ segment) embeddings and positions.
    pub embed: InputEmbedding,
    /// The N layers.
    pub layers: Vec<EncoderLayer>,
    /// LN_f, present under pre-LN.
    pub final_norm: Option<LayerNorm>,
}

impl Encoder {
    /// Build an encoder, registering its parameters under `name` (e.g. "encoder"). Refuses an
    /// invalid config with a message that names the field.
    pub fn new(
        params: &mut Params,
        name: &str,
        config: &TransformerConfig,
        rng: &mut impl Rng,
    ) -> Result<Encoder, String> {
        config.validate()?;
        let embed = InputEmbedding::new(params, name, config, rng);
        let layers = (0..config.layers)
            .map(|i| EncoderLayer::new(params, &format!("{name}.layers.{i}"), config, rng))
            .collect();
        let final_norm = (config.norm == NormPlacement::Pre).then(|| {
            LayerNorm::new(
                params,
                &format!("{name}.final_norm"),
                config.d_model,
                config.layer_norm_eps,
            )
        });
        Ok(Encoder {
            config: config.clone(),
            embed,
            layers,
            final_norm,
        })
    }

    /// tokens [B, T] -> hidden states h [B, T, D].
    pub fn forward(&self, tape: &mut Tape, params: &Params, tokens: &Batch, rng: &mut impl Rng) -> Var {
        self.forward_with(tape, params, tokens, false, None, rng)
    }

    /// The stack with the causal mask on or off. With `cache` (generation), `tokens` sit at the
    /// positions after the cached ones, and their keys and values join the cache.
    pub fn forward_with(
        &self,
        tape: &mut Tape,
        params: &Params,
        tokens: &Batch,
        causal: bool,
        mut cache: Option<&mut Cache>,
        rng: &mut impl Rng,
    ) -> Var {
        let start = cache.as_ref().map_or(0, |c| c.positions); // position of tokens[0]
        let mask = attention_mask(tokens, causal); // padding (+ causal)
        let mask = match &cache {
            Some(c) => c.self_mask(tokens, mask), // none for one token after cached ones
            None => mask,
        };
        let mut x = self.embed.forward(tape, params, tokens, start, rng); // [B, T, D]
        for (l, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            x = layer.forward(tape, params, x, &mask, layer_cache, rng); // [B, T, D]
        }
        if let Some(c) = cache {
            c.positions = start + tokens.seq_len;
        }
        match &self.final_norm {
            Some(ln) => ln.forward(tape, params, x),
            None => x,
        }
    }

    /// The layers and LN_f over inputs already embedded, x_0 [B, T, D], under `mask`: for a
    /// model that builds its own x_0 (text and image patches in one stream, say).
    pub fn forward_embedded(
        &self,
        tape: &mut Tape,
        params: &Params,
        x0: Var,
        mask: &AttentionMask,
        rng: &mut impl Rng,
    ) -> Var {
        stack_forward(&self.layers, self.final_norm.as_ref(), tape, params, x0, mask, rng)
    }
}

/// x_l = Layer_l(x_{l-1}) for every layer, then LN_f if given: [B, T, D] -> [B, T, D]. The
/// encoder's stack without its embedding, shared by any tower that embeds its own inputs.
pub fn stack_forward(
    layers: &[EncoderLayer],
    final_norm: Option<&LayerNorm>,
    tape: &mut Tape,
    params: &Params,
    x0: Var,
    mask: &AttentionMask,
    rng: &mut impl Rng,
) -> Var {
    let mut x = x0;
    for layer in layers {
        x = layer.forward(tape, params, x, mask, None, rng); // x_l
    }
    match final_norm {
        Some(ln) => ln.forward(tape, params, x),
        None => x,
    }
}

/// Every layer's attention weights [B, H, T, T] for the embedded inputs x_0, in evaluation
/// mode (no dropout), one tensor per layer: what each position reads from each other one.
pub fn attention_maps(layers: &[EncoderLayer], params: &Params, x0: &Tensor, mask: &AttentionMask) -> Vec<Tensor> {
    let mut tape = Tape::no_grad();
    let mut rng = StdRng::seed_from_u64(0); // unused: no dropout in evaluation
    let mut x = tape.constant(x0.clone());
    let mut maps = Vec::new();
    for layer in layers {
        let weights = layer.attention_weights(&mut tape, params, x, mask);
        maps.push(tape.value(weights).clone());
        x = layer.forward(&mut tape, params, x, mask, None, &mut rng);
    }
    maps
}
