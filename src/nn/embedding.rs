//! Embeddings: a learned lookup table (row `id` is the vector for token `id`), and the input
//! side of every stack, which sums token, segment and position vectors.

use super::config::TransformerConfig;
use super::dropout::Dropout;
use super::init::{normal, INIT_STD};
use super::layer_norm::LayerNorm;
use super::positional::sinusoidal_table;
use crate::data::Batch;
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use rand::Rng;

/// Token (or segment) embeddings, a table [vocab, d]. Init: normal(0, 0.02).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// [vocab, d]
    pub weight: ParamId,
    /// Number of rows.
    pub vocab: usize,
    /// Width of each row.
    pub d: usize,
}

impl Embedding {
    /// Register `{name}.weight` in `params`.
    pub fn new(params: &mut Params, name: &str, vocab: usize, d: usize, rng: &mut impl Rng) -> Embedding {
        let weight = params.add(format!("{name}.weight"), normal(&[vocab, d], INIT_STD, rng));
        Embedding { weight, vocab, d }
    }

    /// ids (row-major, of shape `ids_shape`) -> vectors [ids_shape..., d].
    pub fn forward(&self, tape: &mut Tape, params: &Params, ids: &[usize], ids_shape: &[usize]) -> Var {
        let table = tape.param(params, self.weight);
        tape.embedding(table, ids, ids_shape)
    }
}

/// The input side of every stack: x = E(ids) * s + S(segments) + a PE(t0..t0+T), then the optional
/// LayerNorm (`embedding_norm`, BERT's), then dropout, where s = sqrt(d_model) if
/// `scale_embeddings` (the paper's section 3.4) else 1, S the optional segment table, PE the fixed
/// sinusoidal table and a its `position_scale` (1 by default).
///
/// Init: E ~ normal(0, `token_init_std`), which by default is 1/sqrt(d_model) when scaled (so
/// E * s starts at unit scale, as in fairseq) and 0.02 otherwise; S ~ normal(0, 0.02).
#[derive(Clone, Debug)]
pub struct InputEmbedding {
    /// Token embeddings E, `{name}.token_embedding.weight` [vocab, d].
    pub token: Embedding,
    /// Segment embeddings S, `{name}.segment_embedding.weight` [type_vocab, d], if any.
    pub segment: Option<Embedding>,
    /// a PE: the sinusoidal table [max_len, d] times `position_scale` (not a parameter).
    pub positions: Tensor,
    /// s: sqrt(d_model) or 1.
    pub scale: f32,
    /// LayerNorm on the sum, `{name}.embedding_norm.{weight,bias}`, if `embedding_norm`.
    pub norm: Option<LayerNorm>,
    /// On the sum.
    pub dropout: Dropout,
}

impl InputEmbedding {
    /// Register the tables for `config` under `name`.
    pub fn new(params: &mut Params, name: &str, config: &TransformerConfig, rng: &mut impl Rng) -> InputEmbedding {
        let d = config.d_model;
        // Unless told: with the sqrt(d) scale, E starts at std 1/sqrt(d) so that E * sqrt(d) has
        // unit scale (fairseq's choice); unscaled, BERT's 0.02. The training recipes ask for 0.02
        // with the scale: smaller token vectors than positions train far better (NOTES.md §11.3).
        let token_std = match (config.token_init_std, config.scale_embeddings) {
            (Some(std), _) => std,
            (None, true) => 1.0 / (d as f32).sqrt(),
            (None, false) => INIT_STD,
        };
        let token = Embedding {
            weight: params.add(
                format!("{name}.token_embedding.weight"),
                normal(&[config.vocab_size, d], token_std, rng),
            ),
            vocab: config.vocab_size,
            d,
        };
        InputEmbedding::sharing(params, name, config, &token, rng)
    }

    /// The same, but reading tokens through an existing table `token` (another stack's), so
    /// that both stacks share it; no token table is registered under `name`.
    pub fn sharing(
        params: &mut Params,
        name: &str,
        config: &TransformerConfig,
        token: &Embedding,
        rng: &mut impl Rng,
    ) -> InputEmbedding {
        let d = config.d_model;
        let token = token.clone();
        let segment = (config.type_vocab_size > 0).then(|| {
            Embedding::new(
                params,
                &format!("{name}.segment_embedding"),
                config.type_vocab_size,
                d,
                rng,
            )
        });
        InputEmbedding {
            token,
            segment,
            positions: sinusoidal_table(config.max_len, d) * config.position_scale,
            scale: if config.scale_embeddings {
                (d as f32).sqrt()
            } else {
                1.0
            },
            norm: config
                .embedding_norm
                .then(|| LayerNorm::new(params, &format!("{name}.embedding_norm"), d, config.layer_norm_eps)),
            dropout: Dropout { p: config.dropout },
        }
    }

    /// tokens [B, T] at positions `start`..`start` + T -> x [B, T, D]. `start` is 0 except when
    /// generation adds tokens after cached ones.
    pub fn forward(&self, tape: &mut Tape, params: &Params, tokens: &Batch, start: usize, rng: &mut impl Rng) -> Var {
        let (b, t) = (tokens.batch, tokens.seq_len);
        let max_len = self.positions.shape()[0];
        assert!(
            start + t <= max_len,
            "embedding: positions {start}..{} exceed max_len {max_len}",
            start + t
        );
        let x = self.token.forward(tape, params, &tokens.ids, &[b, t]); // [B, T, D]
        let mut x = if self.scale != 1.0 {
            tape.mul_scalar(x, self.scale)
        } else {
            x
        };
        match (&self.segment, &tokens.segments) {
            (Some(seg), Some(ids)) => {
                let s = seg.forward(tape, params, ids, &[b, t]); // [B, T, D]
                x = tape.add(x, s);
            }
            (Some(_), None) => panic!("embedding: the model has segment embeddings but the batch has no segment ids"),
            (None, Some(_)) => panic!("embedding: the batch has segment ids but the model has no segment embeddings"),
            (None, None) => {}
        }
        let mut pe = self.positions.clone();
        pe.slice_axis_inplace(ndarray::Axis(0), ndarray::Slice::from(start..start + t)); // [T, D], a view
        let pe = tape.constant(pe);
        let x = tape.add(x, pe); // PE broadcasts over the batch
        let x = match &self.norm {
            Some(norm) => norm.forward(tape, params, x), // LN(E s + S + a PE)
            None => x,
        };
        self.dropout.forward(tape, x, rng)
    }
}
