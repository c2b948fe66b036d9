//! Stochastic gradient descent with momentum, in PyTorch's convention (`torch.optim.SGD` docs,
//! with dampening 0 and no Nesterov). For each parameter p with gradient g, at every step:
//!
//!   g = g + wd p                 (L2 weight decay, added to the gradient; wd = 0 by default)
//!   v = mu v + g                 (momentum buffer; at the first step v = g)
//!   p = p - lr v
//!
//! Two details follow PyTorch:
//!
//! - The buffer is initialised to the first gradient itself (v_1 = g_1), so the first step is a
//!   plain gradient step p = p - lr g_1. With no dampening (the only case here) this equals
//!   starting from v_0 = 0; PyTorch special-cases the first step because with dampening d it
//!   skips the (1 - d) factor there.
//! - lr multiplies the whole buffer (v = mu v + g, p = p - lr v), rather than being folded into
//!   it (v = mu v + lr g, p = p - v, as in Sutskever et al., 2013). The two agree while lr is
//!   constant and differ once a schedule changes it.
//!
//! With mu = 0 no buffer is kept and the update is p = p - lr g.
//!
//! Checkpoints: [`Sgd::state`] names the buffers `sgd.momentum.{param name}`;
//! [`Sgd::load_state`] reads them back.

use super::load_named;
use crate::gradients::Gradients;
use crate::kernels::PAR_MIN_ELEMENTS;
use crate::params::{ParamId, Params};
use crate::tensor::Tensor;
use ndarray::{ArrayD, Zip};
use std::collections::BTreeMap;

/// SGD's state and hyper-parameters.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate (set it every step for a schedule).
    pub lr: f32,
    /// Momentum mu, default 0.9. Zero means plain SGD.
    pub momentum: f32,
    /// L2 weight decay wd, added to the gradient as wd * p; default 0.0.
    pub weight_decay: f32,
    /// Steps taken so far.
    pub step: u64,
    /// The momentum buffer v per parameter, created at the first step that sees its gradient.
    v: Vec<Option<ArrayD<f32>>>,
}

impl Sgd {
    /// Momentum 0.9, no weight decay.
    pub fn new(params: &Params, lr: f32) -> Sgd {
        Sgd {
            lr,
            momentum: 0.9,
            weight_decay: 0.0,
            step: 0,
            v: vec![None; params.len()],
        }
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &mut Params, grads: &Gradients) {
        self.step += 1;
        let (lr, mu, wd) = (self.lr, self.momentum, self.weight_decay);
        for (id, g) in grads.params() {
            let n = self.v.len();
            assert!(
                id.index() < n,
                "Sgd: gradient for {id:?}, but Sgd was built for {n} parameters"
            );
            let p = params.value_mut(id);
            assert_eq!(p.shape(), g.shape(), "Sgd: gradient shape differs for {id:?}");
            let parallel = g.len() >= PAR_MIN_ELEMENTS;
            if mu == 0.0 {
                // No buffer: p = p - lr (g + wd p).
                let update = |p: &mut f32, &g: &f32| *p -= lr * (g + wd * *p);
                let z = Zip::from(p).and(g);
                if parallel {
                    z.par_for_each(update)
                } else {
                    z.for_each(update)
                }
                continue;
            }
            match &mut self.v[id.index()] {
                Some(v) => {
                    // v = mu v + (g + wd p); p = p - lr v.
                    let update = |p: &mut f32, v: &mut f32, &g: &f32| {
                        *v = mu * *v + (g + wd * *p);
                        *p -= lr * *v;
                    };
                    let z = Zip::from(p).and(v).and(g);
                    if parallel {
                        z.par_for_each(update)
                    } else {
                        z.for_each(update)
                    }
                }
                slot => {
                    // First step: v = g + wd p; p = p - lr v.
                    let mut v = ArrayD::zeros(g.raw_dim());
                    let update = |p: &mut f32, v: &mut f32, &g: &f32| {
                        *v = g + wd * *p;
                        *p -= lr * *v;
                    };
                    let z = Zip::from(p).and(&mut v).and(g);
                    if parallel {
                        z.par_for_each(update)
                    } else {
                        z.for_each(update)
                    }
                    *slot = Some(v);
                }
            }
        }
    }

    /// The momentum buffers to checkpoint: `sgd.momentum.{name}` for every parameter that has
    /// one. The step count is not a tensor; save [`Sgd::step`] beside them.
    pub fn state(&self, params: &Params) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, v) in self.v.iter().enumerate() {
            if let Some(v) = v {
                let name = params.name(ParamId::from_index(i));
                out.push((format!("sgd.momentum.{name}"), v.to_shared()));
            }
        }
        out
    }

    /// Restore buffers saved by [`Sgd::state`], and set the step count to `step`. Tensors whose
    /// names do not start with `sgd.` are ignored. A parameter with no saved buffer starts a new
    /// one (v = g) at its next gradient.
    ///
    /// Errors (naming the tensor) if a tensor names no parameter or its shape differs from the
    /// parameter's; also if `params` is not the store Sgd was built for (a different number of
    /// parameters). On error, `self` is unchanged.
    pub fn load_state(&mut self, params: &Params, step: u64, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let n = self.v.len();
        if params.len() != n {
            return Err(format!(
                "Sgd state: built for {n} parameters, but the store has {}",
                params.len()
            ));
        }
        self.v = load_named(params, "sgd.momentum.", tensors, "Sgd")?;
        self.step = step;
        Ok(())
    }
}
