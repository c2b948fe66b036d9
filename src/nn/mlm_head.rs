//! BERT's masked-LM head: a transform, then the projection to the vocabulary,
//!
//!   logits_i = E LN(gelu(W h_i + b)) + b_out,
//!
//! where E is the token embedding matrix (tied, the default) or a matrix of its own. Source:
//! google-research/bert `modeling.py` / `run_pretraining.py` (`get_masked_lm_output`), and
//! `objectives.md` §1.

use super::embedding::Embedding;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::output::OutputProjection;
use crate::{Params, Tape, Var};
use rand::Rng;

/// Parameters: `{name}.transform.{weight,bias}`, `{name}.norm.{weight,bias}`, `{name}.output.bias`
/// (and `{name}.output.weight` when untied).
#[derive(Clone, Debug)]
pub struct MlmHead {
    /// W, b: [d, d].
    pub transform: Linear,
    /// LN after the GELU.
    pub norm: LayerNorm,
    /// E (tied or not) and b_out.
    pub output: OutputProjection,
}

impl MlmHead {
    /// A head over hidden states of width `embedding.d`, projecting to `embedding.vocab` ids.
    pub fn new(
        params: &mut Params,
        name: &str,
        embedding: &Embedding,
        tie: bool,
        layer_norm_eps: f32,
        rng: &mut impl Rng,
    ) -> MlmHead {
        let d = embedding.d;
        MlmHead {
            transform: Linear::new(params, &format!("{name}.transform"), d, d, true, rng),
            norm: LayerNorm::new(params, &format!("{name}.norm"), d, layer_norm_eps),
            output: OutputProjection::new(params, &format!("{name}.output"), embedding, tie, rng),
        }
    }

    /// h [..., d] -> logits [..., vocab].
    pub fn forward(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let t = self.transform.forward(tape, params, h); // W h + b
        let t = tape.gelu(t);
        let t = self.norm.forward(tape, params, t); // LN(gelu(W h + b))
        self.output.forward(tape, params, t) // E t + b_out
    }
}
