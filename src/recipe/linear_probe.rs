//! Linear probes, and the head LP-FT starts from.
//!
//! - A **linear probe** ([`probe`]) measures what a frozen encoder's states hold as they are:
//!   each text's pooled state is computed once ([`pooled_states`]) and a logistic regression
//!   is fitted to convergence on them ([`fit`]: [`Logistic`], lambda 1e-2, 300 full-batch
//!   steps, features standardised). Nothing is chosen on a validation split, so none is read.
//! - **LP-FT** (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and
//!   Underperform Out-of-Distribution"): fine-tuning starts the classifier's head from such a
//!   probe ([`head_from_probe`]), its weights folded back from standardised features onto the
//!   raw pooled states, instead of from random weights (`recipe::finetune`).

use super::baselines::Logistic;
use crate::data::labelled::{text_batch, LabelledText};
use crate::objectives::classify::Classifier;
use crate::params::Params;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The frozen encoder's pooled state of each text, [N, D], in evaluation mode (batches of 64).
pub fn pooled_states(
    model: &Classifier,
    params: &Params,
    texts: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) -> Tensor {
    let mut rows = Vec::new();
    for chunk in texts.chunks(64) {
        let (x, _) = text_batch(chunk, tokenizer, max_len);
        let mut tape = Tape::no_grad();
        let p = model.pooled(&mut tape, params, &x, &mut StdRng::seed_from_u64(0));
        rows.extend(tape.value(p).iter().copied());
    }
    let d = model.encoder.config.d_model;
    ArrayD::from_shape_vec(IxDyn(&[texts.len(), d]), rows)
        .expect("one pooled state per text")
        .into_shared()
}

/// The pooled states of `texts` as f64 rows, and their classes.
pub fn features(
    model: &Classifier,
    params: &Params,
    texts: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let p = pooled_states(model, params, texts, tokenizer, max_len);
    let x = p
        .outer_iter()
        .map(|row| row.iter().map(|&v| v as f64).collect())
        .collect();
    (x, texts.iter().map(|t| t.class).collect())
}

/// The logistic regression of a linear probe, fitted to convergence on the pooled states of
/// `train` (one class per output of `model`'s head).
pub fn fit(
    model: &Classifier,
    params: &Params,
    train: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) -> Logistic {
    let (x, y) = features(model, params, train, tokenizer, max_len);
    Logistic::fit(&x, &y, model.head.d_out, 1e-2, 300)
}

/// A linear probe of `model`'s frozen encoder: [`fit`] on `train`, scored on `test`; returns
/// the test accuracy.
pub fn probe(
    model: &Classifier,
    params: &Params,
    train: &[&LabelledText],
    test: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) -> f64 {
    let fitted = fit(model, params, train, tokenizer, max_len);
    let (x, y) = features(model, params, test, tokenizer, max_len);
    fitted.accuracy(&x, &y)
}

/// LP-FT's start: set `model`'s head (weight, and bias if it has one) to a linear probe
/// [`fit`] on `train`, unstandardised so that it reads the raw pooled states.
pub fn head_from_probe(
    model: &Classifier,
    params: &mut Params,
    train: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) {
    let (w, c) = fit(model, params, train, tokenizer, max_len).unstandardised();
    let d = model.encoder.config.d_model;
    *params.value_mut(model.head.weight) =
        ArrayD::from_shape_fn(IxDyn(&[w.len(), d]), |ix| w[ix[0]][ix[1]] as f32).into_shared();
    if let Some(b) = model.head.bias {
        *params.value_mut(b) = ArrayD::from_shape_fn(IxDyn(&[c.len()]), |ix| c[ix[0]] as f32).into_shared();
    }
}

/// How far a corruption moves the frozen encoder's pooled state p, as a share of how far apart
/// two different texts are. `texts` come in pairs, a text and then its corrupted copy (as
/// the acceptability task lays them out), K pairs in all:
///
/// ```text
/// shift = mean_k |p_2k - p_2k+1| / mean_k |p_2k - p_2(k+1 mod K)|      (Euclidean distances)
/// ```
///
/// Near 0: the encoder barely sees the corruption, and a head on its pooled states has
/// little to learn from, fine-tuned or not.
pub fn corruption_shift(
    model: &Classifier,
    params: &Params,
    texts: &[&LabelledText],
    tokenizer: &Tokenizer,
    max_len: usize,
) -> f64 {
    let k = texts.len() / 2;
    assert!(
        texts.len().is_multiple_of(2) && k >= 2,
        "corruption_shift: needs at least two (text, corrupted) pairs, got {} texts",
        texts.len()
    );
    let p = pooled_states(model, params, texts, tokenizer, max_len);
    let distance = |i: usize, j: usize| -> f64 {
        let (a, b) = (p.index_axis(ndarray::Axis(0), i), p.index_axis(ndarray::Axis(0), j));
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let within: f64 = (0..k).map(|i| distance(2 * i, 2 * i + 1)).sum();
    let across: f64 = (0..k).map(|i| distance(2 * i, 2 * ((i + 1) % k))).sum();
    within / across
}
