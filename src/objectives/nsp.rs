//! Next-sentence prediction (NSP), BERT's second pretraining task: read `[CLS] A [SEP] B [SEP]`
//! and say whether B followed A in the text,
//!
//!   L_NSP = -(1/N) sum_b log softmax(W tanh(W_p h_CLS + b_p) + c)_{y_b},
//!
//! with y_b = 0 for IsNext and 1 for NotNext, and BERT's pretraining loss
//!
//!   L = L_MLM + L_NSP.
//!
//! Sentence-order prediction (SOP, ALBERT) is the same head and the same loss on other pairs:
//! both segments are consecutive text of one document, and y_b = 1 when they were swapped
//! (`data/pairs.rs`, [`PairTask::Sop`]). Lan et al., 2019, "ALBERT", section 3.1
//! (inter-sentence coherence loss) and 4.6; google-research/albert `create_pretraining_data.py`.
//!
//! Sources: Devlin et al., 2019, "BERT", section 3.1 (Task #2: NSP) and appendix A.2;
//! google-research/bert `modeling.py` (the pooler: a dense tanh layer over the first token)
//! and `run_pretraining.py` (`get_next_sentence_output`); transformers' `BertForPreTraining`;
//! `docs/objectives.md` §2 and §2b. The pairs are built in `data/pairs.rs`.
//!
//! The model, [`Bert`], is the masked LM's encoder (with segment embeddings) and MLM head, plus
//! the pooler and the two-way classifier, in one pass:
//!
//!   h = Encoder(X_masked, segments)              [B, T, D]
//!   p = tanh(W_p h_CLS + b_p)                  [B, D]      (h_CLS = h[b, 0])
//!   s = W p + c                                  [B, 2]
//!   L = CE(MlmHead(h_M), x_M) + CE(s, y)
//!
//! MLM masking applies to both segments and never chooses `[CLS]`, `[SEP]` or padding.

use super::mlm::{mask_tokens, mlm_loss, MaskedBatch, MaskedLm};
use super::sentence_embeddings::Pooling;
use super::simcse::mean_pool;
use super::{Evaluation, Tally};
use crate::data::{Batch, NspLabel, PairBatch, PairTask};
use crate::nn::{Linear, TransformerConfig};
use crate::ops::CrossEntropy;
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

/// L_NSP = mean_b CE(s_b, y_b) over the two-way scores `s` [N, 2], with y_b = 0 for IsNext and
/// 1 for NotNext: [`two_way_loss`] of NSP's classes.
pub fn nsp_loss(tape: &mut Tape, s: Var, labels: &[NspLabel]) -> CrossEntropy {
    two_way_loss(tape, s, labels.iter().map(|y_b| y_b.class()))
}

/// The loss of a two-way "do these belong together?" head: the mean cross-entropy of the scores
/// `s` [N, 2] against one class per row. NSP uses it, and so does image-text matching
/// (`itm.rs`), each with its own classes.
///
/// ```text
/// L       = -(1/N) sum_b log softmax(s_b)_{y_b}
/// dL/ds_b = (softmax(s_b) - onehot(y_b)) / N
/// ```
pub fn two_way_loss(tape: &mut Tape, s: Var, classes: impl IntoIterator<Item = usize>) -> CrossEntropy {
    let y: Vec<Option<usize>> = classes.into_iter().map(Some).collect();
    tape.cross_entropy(s, &y)
}

/// BERT's pooler and NSP classifier: s = W tanh(W_p h_CLS + b_p) + c.
#[derive(Clone, Debug)]
pub struct NspHead {
    /// W_p, b_p: [D, D], `nsp.pooler.*`.
    pub pooler: Linear,
    /// W, c: [2, D], `nsp.classifier.*`.
    pub classifier: Linear,
}

impl NspHead {
    /// The pooler and the classifier for hidden states of width `d`.
    pub fn new(params: &mut Params, d: usize, rng: &mut impl Rng) -> NspHead {
        NspHead::named(params, "nsp", d, rng)
    }

    /// The same head under another name (`{name}.pooler.*`, `{name}.classifier.*`): image-text
    /// matching uses it as `itm`.
    pub fn named(params: &mut Params, name: &str, d: usize, rng: &mut impl Rng) -> NspHead {
        NspHead {
            pooler: Linear::new(params, &format!("{name}.pooler"), d, d, true, rng),
            classifier: Linear::new(params, &format!("{name}.classifier"), d, 2, true, rng),
        }
    }

    /// h [B, T, D] -> the pooled `[CLS]` state p = tanh(W_p h_CLS + b_p), [B, D].
    pub fn pool(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let (b, t, d) = match *tape.shape(h) {
            [b, t, d] => (b, t, d),
            ref s => panic!("NspHead::pool: expected h [B, T, D], got {s:?}"),
        };
        let rows = tape.reshape(h, &[b * t, d]);
        let cls: Vec<usize> = (0..b).map(|i| i * t).collect(); // position 0 of each row
        let h_cls = tape.embedding(rows, &cls, &[b]); // gather, [B, D]
        let z = self.pooler.forward(tape, params, h_cls); // W_p h_CLS + b_p
        tape.tanh(z)
    }

    /// h [B, T, D] -> the scores s = W p + c, [B, 2].
    pub fn forward(&self, tape: &mut Tape, params: &Params, h: Var) -> Var {
        let p = self.pool(tape, params, h);
        self.classifier.forward(tape, params, p)
    }
}

/// The two losses of one batch. Call `backward` on `total`.
pub struct BertLoss {
    /// L_MLM + L_NSP (or L_MLM alone when NSP is off).
    pub total: Var,
    /// L_MLM over the masked positions.
    pub mlm: CrossEntropy,
    /// L_NSP over the pairs.
    pub nsp: CrossEntropy,
}

/// The trainer differentiates `total`.
impl From<BertLoss> for Var {
    fn from(l: BertLoss) -> Var {
        l.total
    }
}

/// The masked LM (encoder with segments, MLM head) and the pair head (NSP or SOP).
#[derive(Clone, Debug)]
pub struct Bert {
    /// Encoder, MLM head and corruption.
    pub mlm: MaskedLm,
    /// Pooler and classifier.
    pub nsp: NspHead,
    /// The pairs it reads, which name its measures.
    pub task: PairTask,
    /// Whether the pair loss is part of the total (false: MLM alone on the same pairs).
    pub use_pair_loss: bool,
    /// λ in L = L_MLM + λ L_pair (BERT: 1).
    pub pair_weight: f32,
    /// What the pooler reads: h_CLS (BERT) or the mean of h over the pair's real positions.
    pub pool: Pooling,
}

impl Bert {
    /// Build it for `task`'s pairs; `config` must have segment embeddings (`type_vocab_size` >= 2).
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        tokenizer: &Tokenizer,
        head_transform: bool,
        task: PairTask,
        use_pair_loss: bool,
        rng: &mut impl Rng,
    ) -> Result<Bert, String> {
        if config.type_vocab_size < 2 {
            return Err(format!(
                "Bert: sentence pairs need segment embeddings, but config.type_vocab_size = {}",
                config.type_vocab_size
            ));
        }
        let mlm = MaskedLm::new(params, config, tokenizer, head_transform, rng)?;
        let nsp = NspHead::new(params, config.d_model, rng);
        Ok(Bert {
            mlm,
            nsp,
            task,
            use_pair_loss,
            pair_weight: 1.0,
            pool: Pooling::Cls,
        })
    }

    /// BERT whose encoder and masked-LM head start from the masked LM trained into the
    /// checkpoint at `path` (its shape, tokenizer, head and corruption come from there), with
    /// `dropout`; what the masked LM did not have is fresh from `rng`: the segment embeddings
    /// (the masked LM reads one segment) and the pooler and classifier. Check the checkpoint
    /// against the program first (`checkpoint::check_compatible`); errors name the file.
    pub fn from_masked_lm(
        path: &Path,
        dropout: f32,
        task: PairTask,
        use_pair_loss: bool,
        rng: &mut impl Rng,
    ) -> Result<(Bert, Params), String> {
        let (mlm, mlm_params, tokenizer) = MaskedLm::load(path)?;
        let config = TransformerConfig {
            dropout,
            type_vocab_size: 2,
            ..mlm.encoder.config.clone()
        };
        let head_transform = mlm.head.transform.is_some();
        let mut params = Params::new();
        let model = Bert::new(
            &mut params,
            &config,
            &tokenizer,
            head_transform,
            task,
            use_pair_loss,
            rng,
        )?;
        let model = Bert {
            mlm: MaskedLm {
                corruption: mlm.corruption,
                ..model.mlm
            },
            ..model
        };
        let ids: Vec<_> = params.ids().collect();
        for id in ids {
            let name = params.name(id).to_string();
            if let Some(from) = mlm_params.find(&name) {
                *params.value_mut(id) = mlm_params.value(from).clone(); // encoder.*, mlm_head.*
            }
        }
        Ok((model, params))
    }

    /// The same model with the pooler reading `pool` (`[CLS]`, or the mean over real positions).
    pub fn with_pool(self, pool: Pooling) -> Bert {
        Bert { pool, ..self }
    }

    /// s [B, 2] from the encoder states h [B, T, D] of `x`: W tanh(W_p h_CLS + b_p) + c, or with
    /// [`Pooling::Mean`] the mean of h over `x`'s real positions in place of h_CLS.
    fn pair_scores(&self, tape: &mut Tape, params: &Params, h: Var, x: &Batch) -> Var {
        let p = match self.pool {
            Pooling::Cls => self.nsp.pool(tape, params, h),
            Pooling::Mean => {
                let h_mean = mean_pool(tape, h, x); // [B, D]
                let z = self.nsp.pooler.forward(tape, params, h_mean);
                tape.tanh(z)
            }
        };
        self.nsp.classifier.forward(tape, params, p)
    }

    /// The same model with λ = `w` in L = L_MLM + λ L_pair.
    pub fn with_pair_weight(self, w: f32) -> Bert {
        Bert { pair_weight: w, ..self }
    }

    /// z_M [|M|, V] and s [B, 2] of a masked batch, from one pass of the encoder.
    fn scores(&self, tape: &mut Tape, params: &Params, masked: &MaskedBatch, rng: &mut impl Rng) -> (Var, Var) {
        let h = self.mlm.encoder.forward(tape, params, &masked.x_masked, rng); // [B, T, D]
        let z_masked = self.mlm.head_at(tape, params, h, &masked.masked_positions); // [|M|, V]
        let s = self.pair_scores(tape, params, h, &masked.x_masked); // [B, 2]
        (z_masked, s)
    }

    /// Mask `pairs` with draws from `rng`, run the encoder once, and score both tasks.
    pub fn loss(&self, tape: &mut Tape, params: &Params, pairs: &PairBatch, rng: &mut impl Rng) -> BertLoss {
        let masked = mask_tokens(&pairs.x, &self.mlm.vocab, &self.mlm.corruption, rng);
        let (z_masked, s) = self.scores(tape, params, &masked, rng);
        let mlm = mlm_loss(tape, z_masked, &masked.labels);
        let nsp = nsp_loss(tape, s, &pairs.labels);
        let total = if self.use_pair_loss && self.pair_weight == 1.0 {
            tape.add(mlm.mean, nsp.mean) // L_MLM + L_NSP (or L_SOP)
        } else if self.use_pair_loss {
            let weighted = tape.mul_scalar(nsp.mean, self.pair_weight);
            tape.add(mlm.mean, weighted) // L_MLM + λ L_pair
        } else {
            mlm.mean
        };
        BertLoss { total, mlm, nsp }
    }

    /// [`Bert::evaluate`] as one [`Evaluation`] for the trainer: the masked-token loss and
    /// accuracy, with the pair task's as extra measures (`nsp_loss` and `nsp_accuracy`, or
    /// `sop_loss` and `sop_accuracy`).
    pub fn validation(&self, params: &Params, batches: &[PairBatch]) -> Evaluation {
        let (mlm, pair) = self.evaluate(params, batches);
        let task = self.task.name();
        let extra = vec![
            (format!("{task}_loss"), pair.loss),
            (format!("{task}_accuracy"), pair.accuracy.unwrap_or(0.0)),
        ];
        Evaluation { extra, ..mlm }
    }

    /// What a checkpoint needs to rebuild this model and repeat its training: the masked LM's
    /// settings, the pair task, and whether its loss is trained.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.mlm.metadata();
        m.insert("pairs.task".into(), self.task.name().to_string());
        m.insert("pairs.trained".into(), self.use_pair_loss.to_string());
        if self.pool == Pooling::Mean {
            m.insert("pairs.pool".into(), "mean".into());
        }
        if self.pair_weight != 1.0 {
            m.insert("pairs.weight".into(), self.pair_weight.to_string());
        }
        m
    }

    /// P(IsNext) for each pair of an unmasked batch, in evaluation mode.
    pub fn is_next_probabilities(&self, params: &Params, pairs: &PairBatch) -> Vec<f32> {
        let mut tape = Tape::no_grad();
        let h = self
            .mlm
            .encoder
            .forward(&mut tape, params, &pairs.x, &mut StdRng::seed_from_u64(0));
        let s = self.pair_scores(&mut tape, params, h, &pairs.x); // [B, 2]
        let p = tape.softmax(s, 1);
        let p = tape.value(p);
        (0..pairs.x.batch).map(|b| p[[b, NspLabel::IsNext.class()]]).collect()
    }

    /// Masked-token and pair-task loss and accuracy over `batches` in evaluation mode; batch k is
    /// masked with draws seeded by k alone, as [`MaskedLm::evaluate`] does.
    pub fn evaluate(&self, params: &Params, batches: &[PairBatch]) -> (Evaluation, Evaluation) {
        let (mut mlm, mut nsp) = (Tally::default(), Tally::default());
        for (k, pairs) in batches.iter().enumerate() {
            let masked = mask_tokens(
                &pairs.x,
                &self.mlm.vocab,
                &self.mlm.corruption,
                &mut StdRng::seed_from_u64(k as u64),
            );
            let mut tape = Tape::no_grad();
            let (z_masked, s) = self.scores(&mut tape, params, &masked, &mut StdRng::seed_from_u64(0));
            let targets: Vec<Option<usize>> = masked.labels.iter().map(|&x_i| Some(x_i)).collect();
            mlm.add(&mut tape, z_masked, &targets);
            let y: Vec<Option<usize>> = pairs.labels.iter().map(|y_b| Some(y_b.class())).collect();
            nsp.add(&mut tape, s, &y);
        }
        (mlm.finish(), nsp.finish())
    }
}
