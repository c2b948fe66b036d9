//! AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019, Algorithm 2), the
//! optimizer BERT and GPT-2 train with. For each parameter p with gradient g, at step t = 1, 2, ...:
//!
//!   m = beta1 m + (1 - beta1) g                  (first moment)
//!   v = beta2 v + (1 - beta2) g^2                (second moment)
//!   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   (bias correction)
//!   p = p - lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)
//!
//! The decay term wd * p is applied to p directly, not added to g ("decoupled"), so it is not
//! rescaled by the adaptive denominator. Parameters exempt from decay use wd = 0.

use crate::kernels::PAR_MIN_ELEMENTS;
use crate::{Gradients, ParamId, Params};
use ndarray::{ArrayD, Zip};

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
    /// PyTorch's defaults (betas 0.9, 0.999, eps 1e-8, weight decay 0.01), with weight decay on
    /// every parameter. Use [`AdamW::exempt_from_decay`] to spare some.
    pub fn new(params: &Params, lr: f32) -> AdamW {
        AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            step: 0,
            moments: vec![None; params.len()],
            decay: vec![true; params.len()],
        }
    }

    /// Turn weight decay off for one parameter.
    pub fn exempt_from_decay(&mut self, id: ParamId) {
        self.decay[id.index()] = false;
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
        let bc1 = 1.0 - b1.powi(t); // 1 - beta1^t
        let bc2 = 1.0 - b2.powi(t); // 1 - beta2^t
        for (id, g) in grads.params() {
            let wd = if self.decay[id.index()] { self.weight_decay } else { 0.0 };
            let (m, v) = self.moments[id.index()]
                .get_or_insert_with(|| (ArrayD::zeros(g.raw_dim()), ArrayD::zeros(g.raw_dim())));
            let p = params.value_mut(id);
            assert_eq!(p.shape(), g.shape(), "AdamW: gradient shape differs for {id:?}");
            let update = |p: &mut f32, m: &mut f32, v: &mut f32, &g: &f32| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let (m_hat, v_hat) = (*m / bc1, *v / bc2);
                *p -= lr * (m_hat / (v_hat.sqrt() + eps) + wd * *p);
            };
            let z = Zip::from(p).and(m).and(v).and(g);
            if g.len() >= PAR_MIN_ELEMENTS {
                z.par_for_each(update);
            } else {
                z.for_each(update);
            }
        }
    }
}
