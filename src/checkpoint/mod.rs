//! Checkpoints in the safetensors format (a JSON header naming each tensor's dtype, shape and
//! byte range, then the raw little-endian data), read and written with the `safetensors` crate.
//! A file we write loads in PyTorch with `safetensors.torch.load_file(path)`.
//!
//! Everything about checkpoints lives here:
//! - the file: [`save`] (or [`save_named`]), [`read`], [`load_into`] / [`assign`];
//! - a training run: [`save_training`] writes the model, the optimizer's state and every
//!   setting of the run; [`load_training`] restores them after checking that this run asks for
//!   exactly the same settings ([`check_metadata`] lists every difference);
//! - a checkpoint given to a program: [`check_compatible`] checks it against what the program
//!   will feed it (tokenizer, positions, objective) before any work starts;
//! - inference: [`load_model`] rebuilds a model from the config and tokenizer in the metadata.
//!
//! - Every parameter is stored under its name in the [`Params`] store (e.g.
//!   `encoder.layers.0.self_attn.q_proj.weight`), as F32. A tied weight is stored once.
//! - String metadata (the model's config, say) goes in the header's `__metadata__`.
//! - Saving writes a temporary file beside the target and renames it over the target, so an
//!   interrupted save leaves the previous checkpoint intact.
//! - Loading checks names, shapes and dtype against the parameters a freshly built model
//!   expects, and refuses NaN or infinite values and any tensor that is neither a parameter nor
//!   optimizer state; every error names the file and the offending tensor. A truncated, corrupt
//!   or hostile file is an error, never a panic.
//! - [`load_model`] checks the config's bounds, the tokenizer's vocabulary and the tensors'
//!   shapes against the config before it builds anything; [`load_training`] requires the
//!   optimizer's state to be complete (see [`WITHOUT_STATE_KEY`]).
//! - The header's keys are written in sorted order (`header.rs`), so two identical runs write
//!   byte-identical files.
//! - A save first removes temporary files that killed saves of the same target left behind.

mod compatible;
mod header;
mod model;
mod training;

pub use compatible::{check_compatible, describe_tokenizer, load_checked, objective_of, Feeds};
pub use model::{check_config_against_tensors, load_encoder, load_model, EXTRA_IDS};
pub use training::{check_metadata, load_training, save_training, WITHOUT_STATE_KEY};

use crate::params::Params;
use crate::tensor::Tensor;
use ndarray::IxDyn;
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What went wrong with a checkpoint, in words that name the file and the tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointError(pub String);

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckpointError {}

fn err<T>(path: &Path, what: impl std::fmt::Display) -> Result<T, CheckpointError> {
    Err(CheckpointError(format!("checkpoint {}: {what}", path.display())))
}

/// Save every parameter and the `metadata` strings to `path` (atomically: temp file, then
/// rename).
pub fn save(path: &Path, params: &Params, metadata: &BTreeMap<String, String>) -> Result<(), CheckpointError> {
    save_named(
        path,
        params.ids().map(|id| (params.name(id), params.value(id))),
        metadata,
    )
}

/// Save named tensors and the `metadata` strings to `path`, the same way as [`save`]: for files
/// whose names are not a [`Params`] store's (another library's, say).
pub fn save_named<'a>(
    path: &Path,
    tensors: impl Iterator<Item = (&'a str, &'a Tensor)>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    // The file's bytes, its header in sorted order (the same bytes for the same model).
    let entries: Vec<header::Entry<'_>> = tensors
        .map(|(name, v)| header::Entry {
            name,
            shape: v.shape(),
            values: v.iter().copied().collect(),
        })
        .collect();
    let buffer = header::file_bytes(entries, metadata);
    // Write beside the target, flush to disk, then rename over it.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(path, &file_name);
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buffer)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return err(path, format!("cannot write: {e}"));
    }
    Ok(())
}

/// Remove the `.{file_name}.tmp*` files an earlier save of the same target left behind when it
/// was killed between writing and renaming. Only files of exactly that pattern, in the target's
/// folder, are touched; a failure to list or remove is ignored (the save itself still works).
fn remove_stale_temporaries(path: &Path, file_name: &str) {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!(".{file_name}.tmp");
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_stale = name.to_str().is_some_and(|n| n.starts_with(&prefix));
        if is_stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `name` is an optimizer's state tensor (`adamw.*` or `sgd.*`, see
/// [`Optimizer::state`](crate::optim::Optimizer::state)) rather than a model parameter.
pub fn is_optimizer_state(name: &str) -> bool {
    name.starts_with("adamw.") || name.starts_with("sgd.")
}

/// Refuse a tensor holding NaN or an infinity, naming it and the first bad element's index.
fn check_finite(path: &Path, name: &str, t: &Tensor) -> Result<(), CheckpointError> {
    match t.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        None => Ok(()),
        Some((i, x)) => err(path, format!("tensor '{name}' holds {x} at flat index {i}")),
    }
}

/// Everything in a checkpoint: tensors by name, and the metadata strings.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// F32 tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// The header's `__metadata__`.
    pub metadata: BTreeMap<String, String>,
}

/// Read and validate a whole file. Every tensor must be F32.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let buffer = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return err(path, format!("cannot read: {e}")),
    };
    let (_, header) = match SafeTensors::read_metadata(&buffer) {
        Ok(m) => m,
        Err(e) => return err(path, format!("not a valid safetensors file: {e}")),
    };
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let file = match SafeTensors::deserialize(&buffer) {
        Ok(f) => f,
        Err(e) => return err(path, format!("not a valid safetensors file: {e}")),
    };
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        if view.dtype() != Dtype::F32 {
            return err(
                path,
                format!("tensor '{name}' has dtype {:?}, expected F32", view.dtype()),
            );
        }
        // The crate has checked that the byte range matches the shape; read it as f32s.
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let Ok(t) = Tensor::from_shape_vec(IxDyn(view.shape()), data) else {
            return err(
                path,
                format!("tensor '{name}': shape {:?} does not match its data", view.shape()),
            );
        };
        tensors.insert(name.to_string(), t);
    }
    Ok(Checkpoint { tensors, metadata })
}

/// Load a checkpoint into `params`, whose names and shapes (from a model built with the
/// checkpoint's config) say what must be there. Every parameter must be present with its exact
/// shape and finite values (no NaN, no infinity), and the file may hold nothing else. On error `params` is unchanged.
pub fn load_into(path: &Path, params: &mut Params) -> Result<BTreeMap<String, String>, CheckpointError> {
    assign(path, read(path)?, params)
}

/// [`load_into`] for a checkpoint already read (and perhaps with some tensors taken out, such
/// as an optimizer's state): the same strict checks, with errors naming `path`.
pub fn assign(
    path: &Path,
    mut ckpt: Checkpoint,
    params: &mut Params,
) -> Result<BTreeMap<String, String>, CheckpointError> {
    for id in params.ids() {
        let name = params.name(id);
        let expected = params.value(id).shape();
        match ckpt.tensors.get(name) {
            None => return err(path, format!("tensor '{name}' (shape {expected:?}) is missing")),
            Some(t) if t.shape() != expected => {
                return err(
                    path,
                    format!(
                        "tensor '{name}' has shape {:?}, the model expects {expected:?}",
                        t.shape()
                    ),
                )
            }
            Some(t) => check_finite(path, name, t)?,
        }
    }
    if let Some(extra) = ckpt.tensors.keys().find(|n| params.find(n).is_none()) {
        return err(path, format!("tensor '{extra}' is not a parameter of this model"));
    }
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let t = ckpt.tensors.remove(params.name(id)).expect("checked above");
        *params.value_mut(id) = t;
    }
    Ok(ckpt.metadata)
}
