//! AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019, "Decoupled Weight Decay
//! Regularization", Algorithm 2), the optimizer BERT and GPT-2 train with. For each parameter p
//! with gradient g, at step t = 1, 2, ...:
//!
//!   m = beta1 m + (1 - beta1) g                  (first moment)
//!   v = beta2 v + (1 - beta2) g^2                (second moment)
//!   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   (bias correction)
//!   p = p - lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)
//!
//! The decay term wd * p is applied to p directly, not added to g ("decoupled"), so it is not
//! rescaled by the adaptive denominator. This is `torch.optim.AdamW` with its defaults; as
//! there, the bias corrections 1 - beta^t are computed in double precision.
//!
//! Which parameters decay. Parameters exempt from decay use wd = 0. By default (see
//! [`decays_by_default`]) these are exempt:
//!
//! - every parameter with fewer than 2 dimensions: biases, LayerNorm's gain and shift;
//! - every parameter whose name contains "embedding": the token and segment tables (a tied
//!   output projection is the token table, so it is exempt too).
//!
//! Every other parameter (the weight matrices of the linear layers) decays. This is the split
//! BERT's reference code makes (it excludes "bias" and "LayerNorm"), extended to embeddings as
//! minGPT does. Change it per parameter with [`AdamW::set_decay`], or decay everything with
//! [`AdamW::decay_all`].
//!
//! Checkpoints: [`AdamW::state`] names the moments `adamw.m.{param name}` and
//! `adamw.v.{param name}`; [`AdamW::load_state`] reads them back.

use super::load_named;
use crate::gradients::Gradients;
use crate::kernels::TASK_ELEMENTS;
use crate::params::{ParamId, Params};
use crate::tensor::Tensor;
use ndarray::{ArrayD, ArrayView1, ArrayViewMut1, Zip};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The default decay rule: false (exempt) for a parameter of fewer than 2 dimensions or whose
/// name contains "embedding"; true otherwise.
pub fn decays_by_default(name: &str, shape: &[usize]) -> bool {
    shape.len() >= 2 && !name.contains("embedding")
}

/// AdamW's state and hyper-parameters.
#[derive(Clone, Debug)]
pub struct AdamW {
    /// Learning rate (set it every step for a schedule).
    pub lr: f32,
    /// First-moment decay, default 0.9.
    pub beta1: f32,
    /// Second-moment decay, default 0.999.
    pub beta2: f32,
    /// Added to sqrt(v_hat), default 1e-8.
    pub eps: f32,
    /// Decoupled weight decay, default 0.01.
    pub weight_decay: f32,
    /// Steps taken so far (t after the last step).
    pub step: u64,
    /// m and v per parameter, created at the first step that sees its gradient.
    moments: Vec<Option<(ArrayD<f32>, ArrayD<f32>)>>,
    /// Per parameter: whether weight decay applies.
    decay: Vec<bool>,
}

impl AdamW {
    /// PyTorch's defaults (betas 0.9, 0.999, eps 1e-8, weight decay 0.01). Weight decay applies
    /// to the parameters [`decays_by_default`] picks: not to 1-D parameters (biases, LayerNorm
    /// gain and shift) nor to parameters whose name contains "embedding"; to all others.
    pub fn new(params: &Params, lr: f32) -> AdamW {
        let decay = params
            .ids()
            .map(|id| decays_by_default(params.name(id), params.value(id).shape()))
            .collect();
        AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            step: 0,
            moments: vec![None; params.len()],
            decay,
        }
    }

    /// Turn weight decay off for one parameter.
    pub fn exempt_from_decay(&mut self, id: ParamId) {
        self.set_decay(id, false);
    }

    /// Turn weight decay on (`decay = true`) or off for one parameter.
    pub fn set_decay(&mut self, id: ParamId, decay: bool) {
        let n = self.decay.len();
        assert!(
            id.index() < n,
            "AdamW::set_decay: {id:?} is outside the {n} parameters AdamW was built for"
        );
        self.decay[id.index()] = decay;
    }

    /// Apply weight decay to every parameter, exempting none (plain `torch.optim.AdamW`).
    pub fn decay_all(&mut self) {
        self.decay.iter_mut().for_each(|d| *d = true);
    }

    /// Whether weight decay applies to `id`.
    pub fn decays(&self, id: ParamId) -> bool {
        self.decay[id.index()]
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &mut Params, grads: &Gradients) {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2, eps, lr) = (self.beta1, self.beta2, self.eps, self.lr);
        let bc1 = (1.0 - (b1 as f64).powi(t)) as f32; // 1 - beta1^t
        let bc2 = (1.0 - (b2 as f64).powi(t)) as f32; // 1 - beta2^t
        for (id, g) in grads.params() {
            let n = self.moments.len();
            assert!(
                id.index() < n,
                "AdamW: gradient for {id:?}, but AdamW was built for {n} parameters"
            );
            let wd = if self.decay[id.index()] { self.weight_decay } else { 0.0 };
            let (m, v) = self.moments[id.index()]
                .get_or_insert_with(|| (ArrayD::zeros(g.raw_dim()), ArrayD::zeros(g.raw_dim())));
            let p = params.value_mut(id);
            assert_eq!(p.shape(), g.shape(), "AdamW: gradient shape differs for {id:?}");
            // The loop below runs over row-major slices; anything else (rare) is made so first.
            if !p.is_standard_layout() {
                *p = p.as_standard_layout().into_owned().into_shared();
            }
            if !m.is_standard_layout() || !v.is_standard_layout() {
                (*m, *v) = (m.as_standard_layout().into_owned(), v.as_standard_layout().into_owned());
            }
            let g = g.as_standard_layout();
            let (p, g) = (p.as_slice_mut().expect("row-major"), g.as_slice().expect("row-major"));
            let (m, v) = (
                m.as_slice_mut().expect("row-major"),
                v.as_slice_mut().expect("row-major"),
            );
            // Elementwise, in chunks of TASK_ELEMENTS on rayon's threads (one chunk: this thread).
            // (ndarray's Zip over each chunk measured faster here than a zip of slice iterators.)
            let c = TASK_ELEMENTS;
            p.par_chunks_mut(c)
                .zip(m.par_chunks_mut(c))
                .zip(v.par_chunks_mut(c).zip(g.par_chunks(c)))
                .for_each(|((p, m), (v, g))| {
                    let (m, v, g) = (ArrayViewMut1::from(m), ArrayViewMut1::from(v), ArrayView1::from(g));
                    Zip::from(p).and(m).and(v).and(g).for_each(|p, m, v, &g| {
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        let (m_hat, v_hat) = (*m / bc1, *v / bc2);
                        *p -= lr * (m_hat / (v_hat.sqrt() + eps) + wd * *p);
                    });
                });
        }
    }

    /// The moments to checkpoint: `adamw.m.{name}` and `adamw.v.{name}` for every parameter
    /// that has them (one that never received a gradient has none). The step count is not a
    /// tensor; save [`AdamW::step`] beside them.
    pub fn state(&self, params: &Params) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, mv) in self.moments.iter().enumerate() {
            if let Some((m, v)) = mv {
                let name = params.name(ParamId::from_index(i));
                out.push((format!("adamw.m.{name}"), m.to_shared()));
                out.push((format!("adamw.v.{name}"), v.to_shared()));
            }
        }
        out
    }

    /// Restore moments saved by [`AdamW::state`], and set the step count to `step`. Tensors
    /// whose names do not start with `adamw.` are ignored, so one map may hold parameters and
    /// optimizer state together. Parameters with no saved moments start again from zero moments.
    ///
    /// Errors (naming the tensor) if a tensor names no parameter, its shape differs from the
    /// parameter's, or only one of m and v is present (whether every moment that should be there is
    /// there is [`crate::checkpoint::load_training`]'s check, which knows which parameters had
    /// none when the checkpoint was saved); also if `params` is not the store AdamW
    /// was built for (a different number of parameters). On error, `self` is unchanged.
    pub fn load_state(&mut self, params: &Params, step: u64, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let n = self.decay.len();
        if params.len() != n {
            return Err(format!(
                "AdamW state: built for {n} parameters, but the store has {}",
                params.len()
            ));
        }
        let m = load_named(params, "adamw.m.", tensors, "AdamW")?;
        let v = load_named(params, "adamw.v.", tensors, "AdamW")?;
        let mut moments = Vec::with_capacity(params.len());
        for (i, (m, v)) in m.into_iter().zip(v).enumerate() {
            let name = params.name(ParamId::from_index(i));
            moments.push(match (m, v) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(format!(
                        "AdamW state: 'adamw.m.{name}' has no matching 'adamw.v.{name}'"
                    ))
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "AdamW state: 'adamw.v.{name}' has no matching 'adamw.m.{name}'"
                    ))
                }
            });
        }
        self.moments = moments;
        self.step = step;
        Ok(())
    }
}
