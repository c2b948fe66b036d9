//! BERT's masked-LM head: a transform, then the projection to the vocabulary,
//!
//!   logits_i = E LN(gelu(W h_i + b)) + b_out,
//!
//! where E is the token embedding matrix (tied) or a matrix of its own (untied, the `mlm`
//! example's default since issue 11, which also leaves the transform out). The GELU is always
//! the exact erf form, whatever the encoder's `activation` setting. Source:
//! google-research/bert `modeling.py` / `run_pretraining.py` (`get_masked_lm_output`), and
//! `docs/objectives.md` §1.

use super::embedding::Embedding;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::output::OutputProjection;
use crate::params::Params;
use crate::tape::{Tape, Var};
use rand::Rng;

/// Parameters: `{name}.transform.{weight,bias}`, `{name}.norm.{weight,bias}`, `{name}.output.bias`
/// (and `{name}.output.weight` when untied).
#[derive(Clone, Debug)]
pub struct MlmHead {
    /// W, b: [d, d], and the LN after the GELU; `None` for a plain projection
    /// (logits_i = E h_i + b_out, the head of the PyTorch reference script NOTES.md §11.1 describes).
    pub transform: Option<(Linear, LayerNorm)>,
    /// E (tied or not) and b_out.
    pub output: OutputProjection,
}

impl MlmHead {
    /// A head over hidden states of width `embedding.d`, projecting to `embedding.vocab` ids;
    /// `transform` chooses BERT's head (true) or a plain projection (false).
    pub fn new(
        params: &mut Params,
        name: &str,
        embedding: &Embedding,
        tie: bool,
        transform: bool,
        layer_norm_eps: f32,
        rng: &mut impl Rng,
    ) -> MlmHead {
        let d = embedding.d;
        let transform = transform.then(|| {
            (
                Linear::new(params, &format!("{name}.transform"), d, d, true, rng),
                LayerNorm::new(params, &format!("{name}.norm"), d, layer_norm_eps),
            )
        });
        MlmHead {
            transform,
            output: OutputProjection::new(params, &format!("{name}.output"), embedding, tie, rng),
        }
    }

    /// h [..., d] -> logits [..., vocab].
    pub fn forward(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let t = match &self.transform {
            Some((linear, norm)) => {
                let t = linear.forward(tape, params, h); // W h + b
                let t = tape.gelu(t);
                norm.forward(tape, params, t) // LN(gelu(W h + b))
            }
            None => h,
        };
        self.output.forward(tape, params, t) // E t + b_out
    }
}
