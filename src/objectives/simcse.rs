//! Contrastive learning: SimCSE, and DeCLUTR's span positives. Each sentence x_i has a positive
//! x_i+; each must pick out its own positive among the positives of the other sentences of the
//! batch (InfoNCE):
//!
//!   l_i = -log( e^{cos(h_i, h_i+)/τ} / sum_j e^{cos(h_i, h_j+)/τ} ),   L = (1/N) sum_i l_i,
//!
//! with τ = 0.05, h_i the embedding of x_i and h_j+ that of x_j+.
//!
//! Sources: Gao, Yao and Chen, 2021, "SimCSE: Simple Contrastive Learning of Sentence
//! Embeddings", §3 (the unsupervised form); princeton-nlp/SimCSE, `simcse/models.py`
//! (`cl_forward`: cosine over the temperature, then cross-entropy whose label for row i is i;
//! the `avg` pooler: no MLP); Giorgi, Nitski, Wang and Bader, 2021, "DeCLUTR: Deep Contrastive
//! Learning for Unsupervised Textual Representations", §3 (spans of one document as the pair,
//! mean pooling); docs/objectives.md §6a and §6c.
//!
//! - **Positives** (chosen by the caller, who hands `loss` the batches x and x+): SimCSE's
//!   dropout views (x+ = x, two forward passes in training mode, p = 0.1), DeCLUTR's spans of
//!   the same speech (`data/speeches.rs`), or a character-edited copy.
//! - **h** ([`Pooling`]). `Cls`: during training h = tanh(W h_CLS + b), an MLP over the `[CLS]`
//!   state, and the embedding used afterwards is h_CLS without the MLP (the reference's
//!   unsupervised models keep the state "before the pooler"). `Mean`: h = (1/|x|) sum_t h_t, the
//!   mean of the states at the sentence's real positions (`[CLS]` included), in training and
//!   afterwards, with no MLP (SimCSE's `avg` pooler; DeCLUTR's pooling).
//! - **Cosine.** cos(a, b) = a·b / ((|a| + ε)(|b| + ε)), ε = 1e-8, so that a zero vector gives 0,
//!   never a division by 0.
//! - **Negatives.** The other N - 1 positives of the batch; N >= 2 is required (with N = 1 the
//!   loss is 0 and nothing is learned). Two rows from the same sentence (or speech) would be a
//!   false negative: the caller draws distinct ones.

use crate::checkpoint;
use crate::data::Batch;
use crate::nn::{Encoder, Linear, TransformerConfig};
use crate::objectives::sentence_embeddings::{Pooling, EMBED_CHUNK};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// SimCSE's temperature τ.
pub const TEMPERATURE: f32 = 0.05;

/// The ε of the cosine's norms.
pub const COSINE_EPS: f32 = 1e-8;

/// Each row of `x` [N, D] divided by its norm plus ε: x_i / (|x_i| + ε).
pub fn normalize_rows(tape: &mut Tape, x: Var) -> Var {
    let squares = tape.mul(x, x);
    let norm2 = tape.sum(squares, &[1], true); // |x_i|^2, [N, 1]
    let norm = tape.sqrt(norm2);
    let norm = tape.add_scalar(norm, COSINE_EPS); // |x_i| + ε
    tape.div(x, norm) // broadcasts over D
}

/// cos(a_i, b_j) for every pair of rows, `[N, M]` from a [N, D] and b [M, D].
pub fn cosine_matrix(tape: &mut Tape, a: Var, b: Var) -> Var {
    let a_hat = normalize_rows(tape, a);
    let b_hat = normalize_rows(tape, b);
    let b_hat_t = tape.transpose(b_hat, 0, 1); // [D, M]
    tape.matmul(a_hat, b_hat_t)
}

/// L from the two views h, h+ [N, D]: logits s_ij = cos(h_i, h_j+)/τ, and cross-entropy whose
/// target for row i is column i. Error: N < 2.
pub fn info_nce(tape: &mut Tape, h: Var, h_plus: Var, tau: f32) -> Result<CrossEntropy, String> {
    let n = tape.shape(h)[0];
    if n < 2 {
        return Err(format!(
            "SimCSE needs at least 2 sentences per batch (got {n}): the others are the negatives"
        ));
    }
    let cos = cosine_matrix(tape, h, h_plus); // [N, N]
    let s = tape.mul_scalar(cos, 1.0 / tau); // s_ij = cos(h_i, h_j+)/τ
    let diagonal: Vec<Option<usize>> = (0..n).map(Some).collect(); // row i's positive is h_i+
    Ok(tape.cross_entropy(s, &diagonal))
}

/// The mean of `h` [N, T, D] over each row's real positions (`x`'s lengths; every position
/// when it has none): [N, D], as one product P · h with P_{i, iT + t} = 1/|x_i| for t < |x_i|.
pub fn mean_pool(tape: &mut Tape, h: Var, x: &Batch) -> Var {
    let (n, t, d) = (x.batch, x.seq_len, tape.shape(h)[2]);
    let mut p = ndarray::Array2::<f32>::zeros((n, n * t));
    for i in 0..n {
        let len = x.length(i).max(1);
        for k in 0..len {
            p[[i, i * t + k]] = 1.0 / len as f32;
        }
    }
    let p = tape.constant(p.into_dyn());
    let rows = tape.reshape(h, &[n * t, d]);
    tape.matmul(p, rows)
}

/// The encoder trained contrastively (parameters `encoder.*`, as the masked LM's, so a
/// masked-LM checkpoint can start it) and the MLP (`simcse.mlp.*`, used with `[CLS]` pooling in
/// training only).
#[derive(Clone, Debug)]
pub struct SimCse {
    /// The encoder whose pooled states are the sentence embedding.
    pub encoder: Encoder,
    /// h = tanh(W h_CLS + b), used in training only, with [`Pooling::Cls`].
    pub mlp: Linear,
    /// τ.
    pub tau: f32,
    /// How h is read from the states, in the loss and afterwards.
    pub pool: Pooling,
}

impl SimCse {
    /// Build the encoder for `config` (its dropout is the augmentation) and the MLP.
    pub fn new(params: &mut Params, config: &TransformerConfig, rng: &mut impl Rng) -> Result<SimCse, String> {
        let encoder = Encoder::new(params, "encoder", config, rng)?;
        let d = config.d_model;
        let mlp = Linear::new(params, "simcse.mlp", d, d, true, rng);
        Ok(SimCse {
            encoder,
            mlp,
            tau: TEMPERATURE,
            pool: Pooling::Cls,
        })
    }

    /// This model with pooling `pool`.
    pub fn with_pool(self, pool: Pooling) -> SimCse {
        SimCse { pool, ..self }
    }

    /// The embedding used afterwards, [N, D]: h_CLS, or the mean of the real positions' states.
    pub fn embedding(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        match self.pool {
            Pooling::Cls => self.cls(tape, params, x, rng),
            Pooling::Mean => {
                let h = self.encoder.forward(tape, params, x, rng);
                mean_pool(tape, h, x)
            }
        }
    }

    /// h_CLS [N, D]: the encoder's state at position 0 of each sequence of `x`.
    pub fn cls(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        let h = self.encoder.forward(tape, params, x, rng); // [N, T, D]
        let (n, t, d) = (x.batch, x.seq_len, tape.shape(h)[2]);
        let rows = tape.reshape(h, &[n * t, d]);
        let first: Vec<usize> = (0..n).map(|i| i * t).collect();
        tape.embedding(rows, &first, &[n]) // gather position 0 of each sequence
    }

    /// h for one pass over `x` in training: tanh(W h_CLS + b) with `[CLS]` pooling, the mean
    /// of the states with mean pooling.
    pub fn view(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        match self.pool {
            Pooling::Cls => {
                let h_cls = self.cls(tape, params, x, rng);
                let z = self.mlp.forward(tape, params, h_cls);
                tape.tanh(z)
            }
            Pooling::Mean => self.embedding(tape, params, x, rng),
        }
    }

    /// L for N >= 2 distinct sentences `x` and their positives `x_plus` (row i of each belongs
    /// together; `x_plus` = `x` for dropout views, whose two passes draw different masks), then
    /// [`info_nce`]. Call `backward` on `.mean`.
    pub fn loss(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &Batch,
        x_plus: &Batch,
        rng: &mut impl Rng,
    ) -> Result<CrossEntropy, String> {
        let h = self.view(tape, params, x, rng);
        let h_plus = self.view(tape, params, x_plus, rng);
        info_nce(tape, h, h_plus, self.tau)
    }

    /// Start from a masked-LM checkpoint (the usual recipe): its config with dropout `dropout`
    /// (the augmentation), its encoder's weights, a fresh MLP. The tokenizer comes with it.
    pub fn from_masked_lm(
        path: &Path,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<(SimCse, Params, Tokenizer), String> {
        let (mlm, mlm_params, tokenizer) = crate::objectives::MaskedLm::load(path)?;
        let config = TransformerConfig {
            dropout,
            ..mlm.encoder.config.clone()
        };
        let mut params = Params::new();
        let model = SimCse::new(&mut params, &config, rng)?;
        let ids: Vec<_> = params.ids().collect();
        for id in ids {
            let name = params.name(id).to_string();
            if let Some(from) = mlm_params.find(&name) {
                *params.value_mut(id) = mlm_params.value(from).clone(); // encoder.*: same shapes
            }
        }
        Ok((model, params, tokenizer))
    }

    /// What a checkpoint needs: the encoder's config, τ and the pooling.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.encoder.config.to_metadata();
        m.insert("simcse.tau".into(), self.tau.to_string());
        let pool = if self.pool == Pooling::Mean { "mean" } else { "cls" };
        m.insert("simcse.pool".into(), pool.into());
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote (`[CLS]` pooling when the
    /// checkpoint predates `simcse.pool`).
    pub fn load(path: &Path) -> Result<(SimCse, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, _tokenizer, metadata, params| {
            let pool = match metadata.get("simcse.pool").map(String::as_str) {
                None | Some("cls") => Pooling::Cls,
                Some("mean") => Pooling::Mean,
                Some(other) => return Err(format!("simcse.pool is {other:?}, not \"cls\" or \"mean\"")),
            };
            let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
            Ok(SimCse::new(params, config, rng)?.with_pool(pool))
        })
    }

    /// Validation on (sentences, their positives) batches, in evaluation mode with the embedding
    /// used afterwards ([`SimCse::embedding`], no MLP): the InfoNCE loss of each sentence against
    /// the positives of its batch, and the share of sentences whose own positive scores highest.
    pub fn validation(&self, params: &Params, batches: &[(Batch, Batch)]) -> super::Evaluation {
        let (mut loss_sum, mut hits, mut count) = (0.0f64, 0usize, 0usize);
        for (x, x_plus) in batches {
            // [`EMBED_CHUNK`] texts per tape, each dropped once its embeddings are read: an
            // evaluation tape keeps every value it computes, so memory stays that of one chunk
            // whatever the batch.
            let embedding = |x: &Batch| {
                let parts: Vec<_> = (0..x.batch)
                    .step_by(EMBED_CHUNK)
                    .map(|s| {
                        let mut tape = Tape::no_grad();
                        let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
                        let h = self.embedding(&mut tape, params, &x.rows(s, (s + EMBED_CHUNK).min(x.batch)), rng);
                        tape.value(h).clone()
                    })
                    .collect();
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                ndarray::concatenate(ndarray::Axis(0), &views).expect("chunks share D")
            };
            let mut tape = Tape::no_grad();
            let h = tape.constant(embedding(x));
            let h_plus = tape.constant(embedding(x_plus));
            let cos = cosine_matrix(&mut tape, h, h_plus);
            let best = tape.argmax(cos, 1);
            hits += tape
                .value(best)
                .iter()
                .enumerate()
                .filter(|(i, &j)| *i == j as usize)
                .count();
            let l = info_nce(&mut tape, h, h_plus, self.tau).expect("validation batches hold 2 or more lines");
            loss_sum += tape.scalar(l.sum) as f64;
            count += l.count;
        }
        let per = |v: f64| v / count.max(1) as f64;
        super::Evaluation {
            loss: per(loss_sum),
            accuracy: Some(per(hits as f64)),
            count,
            extra: Vec::new(),
        }
    }
}
