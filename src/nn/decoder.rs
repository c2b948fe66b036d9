//! The causal decoder-only stack (GPT's shape): the encoder's layers under a causal mask, so
//! position t sees positions 0..=t only, then a final LayerNorm (pre-LN) and the projection to
//! vocabulary logits:
//!
//!   x_0 = Dropout(E(ids) * s + PE),   x_l = Layer_l(x_{l-1}; causal),
//!   logits = LN_f(x_N) W^T + b   (W = E when tied).

use super::config::{NormPlacement, TransformerConfig};
use super::embedding::InputEmbedding;
use super::encoder_layer::EncoderLayer;
use super::layer_norm::LayerNorm;
use super::output::OutputProjection;
use super::tokens::Tokens;
use crate::{Params, Tape, Var};
use rand::Rng;

/// Parameters: `{name}.token_embedding.weight`, `{name}.layers.{i}.*`, `{name}.final_norm.*`
/// (pre-LN only), `{name}.lm_head.bias` and, untied, `{name}.lm_head.weight`.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// The configuration it was built from.
    pub config: TransformerConfig,
    /// Token embeddings and positions.
    pub embed: InputEmbedding,
    /// The N layers (self-attention + feed-forward, run with a causal mask).
    pub layers: Vec<EncoderLayer>,
    /// LN_f, present under pre-LN.
    pub final_norm: Option<LayerNorm>,
    /// Hidden states -> logits.
    pub lm_head: OutputProjection,
}

impl Decoder {
    /// Build a decoder-only model under `name` (e.g. "decoder").
    pub fn new(
        params: &mut Params,
        name: &str,
        config: &TransformerConfig,
        rng: &mut impl Rng,
    ) -> Result<Decoder, String> {
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
        let lm_head = OutputProjection::new(
            params,
            &format!("{name}.lm_head"),
            &embed.token,
            config.tie_embeddings,
            rng,
        );
        Ok(Decoder {
            config: config.clone(),
            embed,
            layers,
            final_norm,
            lm_head,
        })
    }

    /// tokens [B, T] -> hidden states [B, T, D], position t computed from tokens 0..=t only.
    pub fn hidden(&self, tape: &mut Tape, params: &Params, tokens: &Tokens, rng: &mut impl Rng) -> Var {
        let mask = tokens.attention_mask(true); // causal (+ padding)
        let mut x = self.embed.forward(tape, params, tokens, rng);
        for layer in &self.layers {
            x = layer.forward(tape, params, x, &mask, rng);
        }
        match &self.final_norm {
            Some(ln) => ln.forward(tape, params, x),
            None => x,
        }
    }

    /// tokens [B, T] -> next-token logits [B, T, vocab].
    pub fn forward(&self, tape: &mut Tape, params: &Params, tokens: &Tokens, rng: &mut impl Rng) -> Var {
        let h = self.hidden(tape, params, tokens, rng);
        self.lm_head.forward(tape, params, h)
    }
}
