//! Next-sentence prediction (NSP), BERT's second pretraining task: read `[CLS] A [SEP] B [SEP]`
//! and say whether B followed A in the text,
//!
//!   L_NSP = -(1/N) sum_b log softmax(W tanh(W_p h_CLS + b_p) + c)_{y_b},
//!
//! with y_b = 0 for IsNext and 1 for NotNext, and BERT's pretraining loss
//!
//!   L = L_MLM + L_NSP.
//!
//! Sources: Devlin et al., 2019, "BERT", section 3.1 (Task #2: NSP) and appendix A.2;
//! google-research/bert `modeling.py` (the pooler: a dense tanh layer over the first token)
//! and `run_pretraining.py` (`get_next_sentence_output`); transformers' `BertForPreTraining`;
//! `docs/objectives.md` §2. The pairs are built in `data/pairs.rs`.
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
use super::{Evaluation, Tally};
use crate::data::{NspLabel, Pair, PairBatch};
use crate::nn::{Linear, TransformerConfig};
use crate::tokenizer::Tokenizer;
use crate::{CrossEntropy, Params, Tape, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

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

/// The masked LM (encoder with segments, MLM head) and the NSP head.
#[derive(Clone, Debug)]
pub struct Bert {
    /// Encoder, MLM head and corruption.
    pub mlm: MaskedLm,
    /// Pooler and classifier.
    pub nsp: NspHead,
    /// Whether L_NSP is part of the loss (false: MLM alone on the same pairs).
    pub use_nsp: bool,
}

impl Bert {
    /// Build it; `config` must have segment embeddings (`type_vocab_size` >= 2).
    pub fn new(
        params: &mut Params,
        config: &TransformerConfig,
        tokenizer: &Tokenizer,
        head_transform: bool,
        use_nsp: bool,
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
        Ok(Bert { mlm, nsp, use_nsp })
    }

    /// z_M [|M|, V] and s [B, 2] of a masked batch, from one pass of the encoder.
    fn scores(&self, tape: &mut Tape, params: &Params, masked: &MaskedBatch, rng: &mut impl Rng) -> (Var, Var) {
        let h = self.mlm.encoder.forward(tape, params, &masked.x_masked, rng); // [B, T, D]
        let z_masked = self.mlm.head_at(tape, params, h, &masked.masked_positions); // [|M|, V]
        let s = self.nsp.forward(tape, params, h); // [B, 2]
        (z_masked, s)
    }

    /// Mask `pairs` with draws from `rng`, run the encoder once, and score both tasks.
    pub fn loss(&self, tape: &mut Tape, params: &Params, pairs: &PairBatch, rng: &mut impl Rng) -> BertLoss {
        let masked = mask_tokens(&pairs.x, &self.mlm.vocab, &self.mlm.corruption, rng);
        let (z_masked, s) = self.scores(tape, params, &masked, rng);
        let mlm = mlm_loss(tape, z_masked, &masked.labels);
        let nsp = nsp_loss(tape, s, &pairs.labels);
        let total = if self.use_nsp {
            tape.add(mlm.mean, nsp.mean) // L_MLM + L_NSP
        } else {
            mlm.mean
        };
        BertLoss { total, mlm, nsp }
    }

    /// [`Bert::evaluate`] as one [`Evaluation`] for the trainer: the masked-token loss and
    /// accuracy, with `nsp_loss` and `nsp_accuracy` as extra measures.
    pub fn validation(&self, params: &Params, batches: &[PairBatch]) -> Evaluation {
        let (mlm, nsp) = self.evaluate(params, batches);
        let extra = vec![
            ("nsp_loss".to_string(), nsp.loss),
            ("nsp_accuracy".to_string(), nsp.accuracy.unwrap_or(0.0)),
        ];
        Evaluation { extra, ..mlm }
    }

    /// What a checkpoint needs to rebuild this model and repeat its training: the masked LM's
    /// settings, and whether NSP is trained.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.mlm.metadata();
        m.insert("nsp.enabled".into(), self.use_nsp.to_string());
        m
    }

    /// P(IsNext) for each pair of an unmasked batch, in evaluation mode.
    pub fn is_next_probabilities(&self, params: &Params, pairs: &PairBatch) -> Vec<f32> {
        let mut tape = Tape::no_grad();
        let h = self
            .mlm
            .encoder
            .forward(&mut tape, params, &pairs.x, &mut StdRng::seed_from_u64(0));
        let s = self.nsp.forward(&mut tape, params, h); // [B, 2]
        let p = tape.softmax(s, 1);
        let p = tape.value(p);
        (0..pairs.x.batch).map(|b| p[[b, NspLabel::IsNext.class()]]).collect()
    }

    /// Masked-token and NSP loss and accuracy over `batches` in evaluation mode; batch k is
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

/// The non-neural baseline NSP is compared against: logistic regression on how much A and B
/// share, with two features per pair, the Jaccard overlap of their lower-cased word sets and of
/// their character-bigram sets (NotNext segments, from elsewhere in the plays, tend to share
/// fewer). Fitted on `train` by full-batch gradient descent on standardised features (2,000
/// steps, rate 0.5), it returns its accuracy on `test`. `text` decodes a segment's ids.
pub fn overlap_baseline(train: &[Pair], test: &[Pair], text: impl Fn(&[usize]) -> String) -> f64 {
    let features = |pairs: &[Pair]| -> Vec<([f64; 2], f64)> {
        pairs
            .iter()
            .map(|p| {
                let (a, b) = (text(&p.a).to_lowercase(), text(&p.b).to_lowercase());
                let words = |s: &str| -> BTreeSet<String> {
                    s.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect()
                };
                let bigrams = |s: &str| -> BTreeSet<(char, char)> { s.chars().zip(s.chars().skip(1)).collect() };
                let y = p.label.class() as f64; // 1 for NotNext
                (
                    [jaccard(&words(&a), &words(&b)), jaccard(&bigrams(&a), &bigrams(&b))],
                    y,
                )
            })
            .collect()
    };
    let (fit, eval) = (features(train), features(test));
    // Standardise with the training set's mean and deviation.
    let n = fit.len().max(1) as f64;
    let mean: Vec<f64> = (0..2).map(|k| fit.iter().map(|(x, _)| x[k]).sum::<f64>() / n).collect();
    let sd: Vec<f64> = (0..2)
        .map(|k| {
            (fit.iter().map(|(x, _)| (x[k] - mean[k]).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let z = |x: &[f64; 2]| [(x[0] - mean[0]) / sd[0], (x[1] - mean[1]) / sd[1]];
    let fit: Vec<([f64; 2], f64)> = fit.iter().map(|(x, y)| (z(x), *y)).collect();
    let (mut w, mut c) = ([0.0f64; 2], 0.0f64);
    let sigmoid = |t: f64| 1.0 / (1.0 + (-t).exp());
    for _ in 0..2000 {
        let (mut gw, mut gc) = ([0.0f64; 2], 0.0f64);
        for (x, y) in &fit {
            let err = sigmoid(w[0] * x[0] + w[1] * x[1] + c) - y; // d(log loss)/d(logit)
            gw[0] += err * x[0];
            gw[1] += err * x[1];
            gc += err;
        }
        w[0] -= 0.5 * gw[0] / n;
        w[1] -= 0.5 * gw[1] / n;
        c -= 0.5 * gc / n;
    }
    let hits = eval
        .iter()
        .filter(|(x, y)| {
            let x = z(x);
            let predicted = (w[0] * x[0] + w[1] * x[1] + c > 0.0) as u8 as f64;
            predicted == *y
        })
        .count();
    hits as f64 / eval.len().max(1) as f64
}

/// |a ∩ b| / |a ∪ b| (0 for two empty sets).
fn jaccard<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}
