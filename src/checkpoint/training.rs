//! A training run's checkpoint: the model, the optimizer's state and every setting of the run,
//! and the checks a resume makes before it continues.

use super::{assign, check_finite, is_optimizer_state, read, save, Checkpoint};
use crate::optim::Optimizer;
use crate::params::Params;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// The metadata key listing (comma-separated) the parameters that had no optimizer state when
/// the checkpoint was saved, because they had not received a gradient yet.
pub const WITHOUT_STATE_KEY: &str = "optim.without_state";

/// Save a training run to `path` (atomically): the parameters, the optimizer's state (named
/// `adamw.*` or `sgd.*`), `train.step`, [`WITHOUT_STATE_KEY`] and `metadata`, which holds every
/// setting of the run.
pub fn save_training(
    path: &Path,
    params: &Params,
    optimizer: &Optimizer,
    step: usize,
    metadata: &BTreeMap<String, String>,
) -> Result<(), String> {
    let mut all = params.clone(); // shares storage, copies nothing
    for (name, tensor) in optimizer.state(params) {
        all.add(name, tensor);
    }
    let mut meta = metadata.clone();
    meta.insert("train.step".into(), step.to_string());
    meta.insert(WITHOUT_STATE_KEY.into(), optimizer.without_state(params).join(","));
    save(path, &all, &meta).map_err(|e| e.to_string())
}

/// Restore a run written by [`save_training`] into `params` and `optimizer`, after checking
/// that every entry of `expected` (the settings this run asks for) equals the checkpoint's; the
/// error lists every difference. Returns the step to continue from.
///
/// Every tensor must be a parameter or optimizer state ([`is_optimizer_state`]), and finite.
/// The optimizer's state must be complete: every parameter not listed under
/// [`WITHOUT_STATE_KEY`] must have all its state tensors ([`Optimizer::state_names`]), so a lost
/// moment is an error rather than a silent restart from zero.
pub fn load_training(
    path: &Path,
    params: &mut Params,
    optimizer: &mut Optimizer,
    expected: &BTreeMap<String, String>,
) -> Result<usize, String> {
    let ckpt = read(path).map_err(|e| e.to_string())?;
    check_metadata(path, &ckpt.metadata, expected)?;
    let in_file = |e: String| format!("checkpoint {}: {e}", path.display());
    let raw = ckpt
        .metadata
        .get("train.step")
        .ok_or_else(|| in_file("no 'train.step' in its metadata".into()))?;
    let step: usize = raw.parse().map_err(|e| in_file(format!("train.step {raw:?}: {e}")))?;
    // Model tensors are the ones the parameter store names; optimizer state is `adamw.*` or
    // `sgd.*`; anything else is refused.
    let (model, state): (BTreeMap<_, _>, BTreeMap<_, _>) = ckpt
        .tensors
        .into_iter()
        .partition(|(name, _)| params.find(name).is_some());
    if let Some(extra) = state.keys().find(|n| !is_optimizer_state(n)) {
        return Err(in_file(format!(
            "tensor '{extra}' is neither a parameter of this model nor optimizer state"
        )));
    }
    for (name, t) in &state {
        check_finite(path, name, t).map_err(|e| e.to_string())?;
    }
    check_state_complete(params, optimizer, &ckpt.metadata, &state).map_err(in_file)?;
    let model = Checkpoint {
        tensors: model,
        metadata: ckpt.metadata,
    };
    assign(path, model, params).map_err(|e| e.to_string())?;
    optimizer.load_state(params, step as u64, &state).map_err(in_file)?;
    Ok(step)
}

/// Every parameter not listed under [`WITHOUT_STATE_KEY`] has all its state tensors in `state`.
fn check_state_complete(
    params: &Params,
    optimizer: &Optimizer,
    metadata: &BTreeMap<String, String>,
    state: &BTreeMap<String, Tensor>,
) -> Result<(), String> {
    let Some(listed) = metadata.get(WITHOUT_STATE_KEY) else {
        return Err(format!(
            "no '{WITHOUT_STATE_KEY}' in its metadata, so its optimizer state cannot be checked"
        ));
    };
    let without: Vec<&str> = listed.split(',').filter(|n| !n.is_empty()).collect();
    for id in params.ids() {
        let name = params.name(id);
        if without.contains(&name) {
            continue;
        }
        if let Some(missing) = optimizer.state_names(name).into_iter().find(|s| !state.contains_key(s)) {
            return Err(format!(
                "optimizer state '{missing}' is missing, and '{WITHOUT_STATE_KEY}' does not list '{name}' as a parameter without state"
            ));
        }
    }
    Ok(())
}

/// Refuse a checkpoint whose metadata disagrees with `expected` on any key; the error lists
/// every difference.
pub fn check_metadata(
    path: &Path,
    found: &BTreeMap<String, String>,
    expected: &BTreeMap<String, String>,
) -> Result<(), String> {
    let differences: Vec<String> = expected
        .iter()
        .filter(|(key, want)| found.get(*key) != Some(*want))
        .map(|(key, want)| match found.get(key) {
            Some(have) => format!("{key} is {have} there, {want} here"),
            None => format!("{key} is missing there, {want} here"),
        })
        .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "checkpoint {} was made with other settings than this run asks for: {}",
            path.display(),
            differences.join("; ")
        ))
    }
}
