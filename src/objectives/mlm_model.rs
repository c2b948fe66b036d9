//! The BERT-shaped model MLM trains: the bidirectional encoder, then the MLM head, evaluated
//! only at the masked positions (the other positions carry no label, so their logits would be
//! computed for nothing):
//!
//!   h = Encoder(X_masked)              [B, T, D]
//!   h_M = rows of h at M               [|M|, D]
//!   z_M = MlmHead(h_M)                 [|M|, V]
//!   L = mean over M of CE(z_M, x_M)

use super::mlm::{mlm_loss, MaskedBatch};
use crate::checkpoint;
use crate::nn::{Encoder, MlmHead, Tokens, TransformerConfig};
use crate::tokenizer::Tokenizer;
use crate::{CrossEntropy, Params, Tape, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// Encoder (parameters `encoder.*`) and MLM head (`mlm_head.*`).
#[derive(Clone, Debug)]
pub struct MaskedLm {
    /// The stack.
    pub encoder: Encoder,
    /// Transform and tied (by `config.tie_embeddings`) output projection.
    pub head: MlmHead,
}

/// Validation figures over a set of masked batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlmEvaluation {
    /// Mean cross-entropy over every masked position, in nats.
    pub loss: f64,
    /// Share of masked positions whose most probable token (argmax over the whole vocabulary)
    /// is the original.
    pub accuracy: f64,
    /// Number of masked positions, |M|, summed over the batches.
    pub count: usize,
}

impl MaskedLm {
    /// Build the model for `config` with BERT's head (transform, then the projection); an
    /// invalid config is refused with the field named.
    pub fn new(params: &mut Params, config: &TransformerConfig, rng: &mut impl Rng) -> Result<MaskedLm, String> {
        MaskedLm::with_head(params, config, true, rng)
    }

    /// [`MaskedLm::new`] with the choice of head: `head_transform` false gives a plain projection
    /// from the final hidden states, as the PyTorch reference script has.
    pub fn with_head(
        params: &mut Params,
        config: &TransformerConfig,
        head_transform: bool,
        rng: &mut impl Rng,
    ) -> Result<MaskedLm, String> {
        let encoder = Encoder::new(params, "encoder", config, rng)?;
        let head = MlmHead::new(
            params,
            "mlm_head",
            &encoder.embed.token,
            config.tie_embeddings,
            head_transform,
            config.layer_norm_eps,
            rng,
        );
        Ok(MaskedLm { encoder, head })
    }

    /// What a checkpoint needs to rebuild this model: the config, and `mlm.head_transform`.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.encoder.config.to_metadata();
        m.insert("mlm.head_transform".into(), self.head.transform.is_some().to_string());
        m
    }

    /// Rebuild a trained model from a checkpoint the trainer wrote: its config and tokenizer
    /// come from the metadata, its parameters from the tensors (optimizer state is skipped).
    pub fn load(path: &Path) -> Result<(MaskedLm, Params, Tokenizer), String> {
        let mut ckpt = checkpoint::read(path).map_err(|e| e.to_string())?;
        let in_file = |e: String| format!("checkpoint {}: {e}", path.display());
        let config = TransformerConfig::from_metadata(&ckpt.metadata).map_err(in_file)?;
        let tokenizer = Tokenizer::from_metadata(&ckpt.metadata).map_err(in_file)?;
        let mut params = Params::new();
        let head_transform = ckpt.metadata.get("mlm.head_transform").map(String::as_str) != Some("false");
        let model = MaskedLm::with_head(&mut params, &config, head_transform, &mut StdRng::seed_from_u64(0))
            .map_err(in_file)?;
        ckpt.tensors.retain(|name, _| params.find(name).is_some());
        checkpoint::assign(path, ckpt, &mut params).map_err(|e| e.to_string())?;
        Ok((model, params, tokenizer))
    }

    /// z_M: logits at the given flat positions (b * T + i) of `x`, `[positions.len(), V]`.
    pub fn logits_at(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &Tokens,
        positions: &[usize],
        rng: &mut impl Rng,
    ) -> Var {
        let d = self.encoder.config.d_model;
        let h = self.encoder.forward(tape, params, x, rng); // [B, T, D]
        let h = tape.reshape(h, &[x.batch * x.seq_len, d]); // [B*T, D]
        let h_masked = tape.embedding(h, positions, &[positions.len()]); // gather rows, [|M|, D]
        self.head.forward(tape, params, h_masked) // [|M|, V]
    }

    /// L_MLM of one corrupted batch, with its sum and |M|. Call `backward` on `.mean`.
    pub fn loss(&self, tape: &mut Tape, params: &Params, batch: &MaskedBatch, rng: &mut impl Rng) -> CrossEntropy {
        let logits_masked = self.logits_at(tape, params, &batch.x_masked, &batch.masked_positions, rng);
        mlm_loss(tape, logits_masked, &batch.labels)
    }

    /// Loss and accuracy over `batches` in evaluation mode (no dropout, no gradients).
    pub fn evaluate(&self, params: &Params, batches: &[MaskedBatch]) -> MlmEvaluation {
        let (mut loss_sum, mut correct, mut count) = (0.0f64, 0usize, 0usize);
        let mut unused_rng = StdRng::seed_from_u64(0); // dropout is off: never drawn
        for batch in batches {
            let mut tape = Tape::no_grad();
            let z = self.logits_at(
                &mut tape,
                params,
                &batch.x_masked,
                &batch.masked_positions,
                &mut unused_rng,
            );
            let ce = mlm_loss(&mut tape, z, &batch.labels);
            loss_sum += tape.scalar(ce.sum) as f64;
            count += ce.count;
            let predicted = tape.argmax(z, 1);
            correct += tape
                .value(predicted)
                .iter()
                .zip(&batch.labels)
                .filter(|(&p, &x_i)| p as usize == x_i)
                .count();
        }
        MlmEvaluation {
            loss: if count == 0 { 0.0 } else { loss_sum / count as f64 },
            accuracy: if count == 0 { 0.0 } else { correct as f64 / count as f64 },
            count,
        }
    }

    /// P(x_i = v | X) at each of `positions` of `x`, in evaluation mode: `[positions.len()][V]`.
    pub fn probabilities(&self, params: &Params, x: &Tokens, positions: &[usize]) -> Vec<Vec<f32>> {
        let mut tape = Tape::no_grad();
        let mut unused_rng = StdRng::seed_from_u64(0);
        let z = self.logits_at(&mut tape, params, x, positions, &mut unused_rng);
        let p = tape.softmax(z, 1);
        let v = self.encoder.config.vocab_size;
        tape.value(p)
            .as_standard_layout()
            .as_slice()
            .unwrap()
            .chunks(v)
            .map(|r| r.to_vec())
            .collect()
    }
}
