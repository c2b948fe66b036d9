//! Contrastive learning: unsupervised SimCSE. The same sentences go through the encoder twice;
//! dropout makes the two passes differ, so each sentence has two views. Each view must pick
//! out its twin among the other sentences of the batch:
//!
//!   l_i = -log( e^{cos(h_i, h_i+)/τ} / sum_j e^{cos(h_i, h_j+)/τ} ),   L = (1/N) sum_i l_i,
//!
//! with τ = 0.05, h_i the first view of sentence i and h_j+ the second view of sentence j.
//!
//! Sources: Gao, Yao and Chen, 2021, "SimCSE: Simple Contrastive Learning of Sentence
//! Embeddings", §3 (the unsupervised form); princeton-nlp/SimCSE, `simcse/models.py`
//! (`cl_forward`: cosine over the temperature, then cross-entropy whose label for row i is i);
//! docs/objectives.md §6a.
//!
//! - **Views.** The only augmentation is dropout (p = 0.1 in the reference): two forward passes
//!   of the same batch in training mode.
//! - **h.** During training, h = tanh(W h_CLS + b), an MLP over the `[CLS]` state. The embedding
//!   used afterwards is h_CLS itself, without the MLP (the reference's unsupervised models keep
//!   the state "before the pooler" for evaluation, and so do we).
//! - **Cosine.** cos(a, b) = a·b / ((|a| + ε)(|b| + ε)), ε = 1e-8, so that a zero vector gives 0,
//!   never a division by 0.
//! - **Negatives.** The other N - 1 sentences of the batch; N >= 2 is required (with N = 1 the
//!   loss is 0 and nothing is learned). A sentence that occurs twice in a batch is a false
//!   negative: the caller avoids it by drawing distinct sentences from a list without
//!   duplicates.

use crate::checkpoint;
use crate::data::Batch;
use crate::nn::{Encoder, Linear, TransformerConfig};
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

/// The encoder trained with SimCSE (parameters `encoder.*`, as the masked LM's, so a masked-LM
/// checkpoint can start it) and the training-only MLP (`simcse.mlp.*`).
#[derive(Clone, Debug)]
pub struct SimCse {
    /// The encoder whose `[CLS]` state is the sentence embedding.
    pub encoder: Encoder,
    /// h = tanh(W h_CLS + b), used in training only.
    pub mlp: Linear,
    /// τ.
    pub tau: f32,
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
        })
    }

    /// h_CLS [N, D]: the encoder's state at position 0 of each sequence of `x`.
    pub fn cls(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        let h = self.encoder.forward(tape, params, x, rng); // [N, T, D]
        let (n, t, d) = (x.batch, x.seq_len, tape.shape(h)[2]);
        let rows = tape.reshape(h, &[n * t, d]);
        let first: Vec<usize> = (0..n).map(|i| i * t).collect();
        tape.embedding(rows, &first, &[n]) // gather position 0 of each sequence
    }

    /// h = tanh(W h_CLS + b) for one pass over `x`.
    pub fn view(&self, tape: &mut Tape, params: &Params, x: &Batch, rng: &mut impl Rng) -> Var {
        let h_cls = self.cls(tape, params, x, rng);
        let z = self.mlp.forward(tape, params, h_cls);
        tape.tanh(z)
    }

    /// L for a batch of N >= 2 distinct sentences: two passes (dropout draws differ), then
    /// [`info_nce`]. Call `backward` on `.mean`.
    pub fn loss(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &Batch,
        rng: &mut impl Rng,
    ) -> Result<CrossEntropy, String> {
        let h = self.view(tape, params, x, rng);
        let h_plus = self.view(tape, params, x, rng);
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

    /// What a checkpoint needs: the encoder's config and τ.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.encoder.config.to_metadata();
        m.insert("simcse.tau".into(), self.tau.to_string());
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote.
    pub fn load(path: &Path) -> Result<(SimCse, Params, Tokenizer), String> {
        checkpoint::load_model(path, |config, _tokenizer, _metadata, params| {
            SimCse::new(
                params,
                config,
                &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0),
            )
        })
    }

    /// Validation on (lines, their corrupted copies) batches, in evaluation mode with the
    /// embedding used afterwards (h_CLS, no MLP): the InfoNCE loss of each line against the
    /// copies of its batch, and the share of lines whose own copy scores highest.
    pub fn validation(&self, params: &Params, batches: &[(Batch, Batch)]) -> super::Evaluation {
        let (mut loss_sum, mut hits, mut count) = (0.0f64, 0usize, 0usize);
        for (x, x_plus) in batches {
            let mut tape = Tape::no_grad();
            let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
            let h = self.cls(&mut tape, params, x, rng);
            let h_plus = self.cls(&mut tape, params, x_plus, rng);
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
