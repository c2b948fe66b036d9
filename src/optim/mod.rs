//! Optimizers: they read a [`Gradients`] and update a [`Params`] store in place. One training
//! update is, in order:
//!
//!   norm = clip_grad_norm(grads, max_norm)     (optional; `clip.rs`)
//!   lr   = schedule.lr_at(step)                (`schedule.rs`)
//!   p    = p - lr * direction(g, state)        (`adamw.rs` or `sgd.rs`)
//!
//! Inside:
//!
//! - [`adamw`]: [`AdamW`], Adam with decoupled weight decay; biases, LayerNorm parameters and
//!   embedding tables are exempt from decay by default.
//! - [`sgd`]: [`Sgd`], SGD with momentum in PyTorch's convention (v = mu v + g; p = p - lr v).
//! - [`schedule`]: [`LrSchedule`], linear warmup then [`Decay::Cosine`] or [`Decay::Linear`]
//!   decay to a floor.
//! - [`clip`]: [`clip_grad_norm`], clipping by global norm.
//! - [`Optimizer`]: either optimizer behind one type, so a training loop can be written once.
//!
//! Each optimizer's state (moments, momentum buffers) can be saved with `state` as named
//! tensors, `adamw.*` or `sgd.*` followed by the parameter's name, and restored with
//! `load_state`, so a resumed run continues exactly where it stopped.

pub mod adamw;
pub mod clip;
pub mod schedule;
pub mod sgd;

pub use adamw::AdamW;
pub use clip::clip_grad_norm;
pub use schedule::{Decay, LrSchedule};
pub use sgd::Sgd;

use crate::gradients::Gradients;
use crate::params::Params;
use crate::tensor::Tensor;
use ndarray::ArrayD;
use std::collections::BTreeMap;

/// One of the optimizers, chosen at run time (e.g. from a config file).
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Adam with decoupled weight decay.
    AdamW(AdamW),
    /// SGD with momentum.
    Sgd(Sgd),
}

impl Optimizer {
    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &mut Params, grads: &Gradients) {
        match self {
            Optimizer::AdamW(o) => o.step(params, grads),
            Optimizer::Sgd(o) => o.step(params, grads),
        }
    }

    /// Set the learning rate for the next steps (call it every step with a schedule).
    pub fn set_lr(&mut self, lr: f32) {
        match self {
            Optimizer::AdamW(o) => o.lr = lr,
            Optimizer::Sgd(o) => o.lr = lr,
        }
    }

    /// The current learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::AdamW(o) => o.lr,
            Optimizer::Sgd(o) => o.lr,
        }
    }

    /// Number of steps taken so far (restored by [`Optimizer::load_state`]).
    pub fn steps_taken(&self) -> u64 {
        match self {
            Optimizer::AdamW(o) => o.step,
            Optimizer::Sgd(o) => o.step,
        }
    }

    /// `"adamw"` or `"sgd"`, e.g. for a checkpoint's metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::AdamW(_) => "adamw",
            Optimizer::Sgd(_) => "sgd",
        }
    }

    /// Every setting that shapes the updates, as checkpoint metadata (`optim.*`): the name,
    /// the hyperparameters, and the parameters exempt from weight decay. The learning rate is
    /// the schedule's, stored by the trainer.
    pub fn settings(&self, params: &Params) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("optim.name".to_string(), self.name().to_string());
        match self {
            Optimizer::AdamW(o) => {
                m.insert("optim.beta1".into(), o.beta1.to_string());
                m.insert("optim.beta2".into(), o.beta2.to_string());
                m.insert("optim.eps".into(), o.eps.to_string());
                m.insert("optim.weight_decay".into(), o.weight_decay.to_string());
                let exempt: Vec<&str> = params
                    .ids()
                    .filter(|&id| !o.decays(id))
                    .map(|id| params.name(id))
                    .collect();
                m.insert("optim.no_decay".into(), exempt.join(","));
            }
            Optimizer::Sgd(o) => {
                m.insert("optim.momentum".into(), o.momentum.to_string());
                m.insert("optim.weight_decay".into(), o.weight_decay.to_string());
            }
        }
        m
    }

    /// The state to checkpoint, as named tensors (see [`AdamW::state`] and [`Sgd::state`]).
    pub fn state(&self, params: &Params) -> Vec<(String, Tensor)> {
        match self {
            Optimizer::AdamW(o) => o.state(params),
            Optimizer::Sgd(o) => o.state(params),
        }
    }

    /// The names of the state tensors [`Optimizer::state`] writes for the parameter `name` once
    /// it has received a gradient: `adamw.m.{name}` and `adamw.v.{name}`, `sgd.momentum.{name}`,
    /// or none for SGD without momentum.
    pub fn state_names(&self, name: &str) -> Vec<String> {
        match self {
            Optimizer::AdamW(_) => vec![format!("adamw.m.{name}"), format!("adamw.v.{name}")],
            Optimizer::Sgd(o) if o.momentum != 0.0 => vec![format!("sgd.momentum.{name}")],
            Optimizer::Sgd(_) => Vec::new(),
        }
    }

    /// The parameters that have no state yet because they never received a gradient (their
    /// [`Optimizer::state_names`] are missing from [`Optimizer::state`]). A checkpoint records
    /// them, so that a resume can tell a legitimately absent state from a lost one.
    pub fn without_state(&self, params: &Params) -> Vec<String> {
        let saved: std::collections::BTreeSet<String> = self.state(params).into_iter().map(|(n, _)| n).collect();
        params
            .ids()
            .map(|id| params.name(id))
            .filter(|name| self.state_names(name).iter().any(|s| !saved.contains(s)))
            .map(str::to_string)
            .collect()
    }

    /// Restore state saved by [`Optimizer::state`] and set the step count to `step` (see
    /// [`AdamW::load_state`] and [`Sgd::load_state`]).
    pub fn load_state(&mut self, params: &Params, step: u64, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        match self {
            Optimizer::AdamW(o) => o.load_state(params, step, tensors),
            Optimizer::Sgd(o) => o.load_state(params, step, tensors),
        }
    }
}

/// For `load_state`: the tensors named `{prefix}{param name}`, one slot per parameter of
/// `params` (`None` where none was saved). Errors, naming the tensor and prefixed with `who`,
/// if a name after `prefix` is no parameter's or a shape differs from the parameter's. Tensors
/// without `prefix` are ignored.
pub(crate) fn load_named(
    params: &Params,
    prefix: &str,
    tensors: &BTreeMap<String, Tensor>,
    who: &str,
) -> Result<Vec<Option<ArrayD<f32>>>, String> {
    let mut out = vec![None; params.len()];
    for (key, t) in tensors.range(prefix.to_string()..) {
        let Some(name) = key.strip_prefix(prefix) else { break };
        let Some(id) = params.find(name) else {
            return Err(format!("{who} state: tensor '{key}' names no parameter '{name}'"));
        };
        let want = params.value(id).shape();
        if t.shape() != want {
            return Err(format!(
                "{who} state: tensor '{key}' has shape {:?}, but parameter '{name}' has shape {want:?}",
                t.shape()
            ));
        }
        out[id.index()] = Some(t.to_owned());
    }
    Ok(out)
}
