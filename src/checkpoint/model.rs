//! A trained model for inference: its config and tokenizer from the metadata, checked against
//! each other and against the tensors before anything is built.

use super::{assign, is_optimizer_state, read};
use crate::nn::{Encoder, TransformerConfig};
use crate::params::Params;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::path::Path;

/// The metadata key for ids a model adds above its tokenizer's (T5's sentinels).
pub const EXTRA_IDS: &str = "vocab.extra_ids";

/// Rebuild a trained model for inference: read the checkpoint, rebuild its config and tokenizer
/// from the metadata, check that they agree with each other (the config's vocabulary is the
/// tokenizer's plus any [`EXTRA_IDS`]) and with the tensors' shapes
/// ([`check_config_against_tensors`]), let `build(config, tokenizer, metadata, params)`
/// register the model's parameters, then fill them from the file. Optimizer state in the file
/// is skipped; any other tensor that is not a parameter is refused. Every error names the file.
pub fn load_model<M>(
    path: &Path,
    build: impl FnOnce(&TransformerConfig, &Tokenizer, &BTreeMap<String, String>, &mut Params) -> Result<M, String>,
) -> Result<(M, Params, Tokenizer), String> {
    let mut ckpt = read(path).map_err(|e| e.to_string())?;
    let in_file = |e: String| format!("checkpoint {}: {e}", path.display());
    let config = TransformerConfig::from_metadata(&ckpt.metadata).map_err(in_file)?;
    let tokenizer = Tokenizer::from_metadata(&ckpt.metadata).map_err(in_file)?;
    // Ids the model adds above the tokenizer's (T5's sentinels), 0 when the key is absent.
    let extra: usize = match ckpt.metadata.get(EXTRA_IDS) {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| in_file(format!("metadata '{EXTRA_IDS}' = {v:?} is not a count")))?,
    };
    if tokenizer.vocab_size() + extra != config.vocab_size {
        return Err(in_file(format!(
            "the tokenizer in the metadata has {} ids and '{EXTRA_IDS}' adds {extra}, but config.vocab_size is {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    check_config_against_tensors(&config, &ckpt.tensors).map_err(in_file)?;
    let mut params = Params::new();
    let model = build(&config, &tokenizer, &ckpt.metadata, &mut params).map_err(in_file)?;
    if let Some(extra) = ckpt
        .tensors
        .keys()
        .find(|n| params.find(n).is_none() && !is_optimizer_state(n))
    {
        return Err(in_file(format!(
            "tensor '{extra}' is neither a parameter of this model nor optimizer state"
        )));
    }
    ckpt.tensors.retain(|name, _| params.find(name).is_some()); // skip the optimizer's state
    assign(path, ckpt, &mut params).map_err(|e| e.to_string())?;
    Ok((model, params, tokenizer))
}

/// Before a model is built from `config`: every `*.token_embedding.weight` in `tensors` must have
/// shape [vocab_size, d_model], and every stack (`{stack}.layers.{i}.*`) must hold exactly the
/// layers 0..config.layers. The error names the config field and the tensor.
pub fn check_config_against_tensors(
    config: &TransformerConfig,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<(), String> {
    let want = [config.vocab_size, config.d_model];
    for (name, t) in tensors.iter().filter(|(n, _)| n.ends_with("token_embedding.weight")) {
        if t.shape() != want {
            return Err(format!(
                "config.vocab_size = {} and config.d_model = {} call for shape {want:?}, but tensor '{name}' has shape {:?}",
                config.vocab_size,
                config.d_model,
                t.shape()
            ));
        }
    }
    // Layer indices per stack prefix ("encoder", "decoder", ...).
    let mut stacks: BTreeMap<&str, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for name in tensors.keys().filter(|n| !is_optimizer_state(n)) {
        if let Some((stack, rest)) = name.split_once(".layers.") {
            let index = rest.split('.').next().and_then(|i| i.parse::<usize>().ok());
            let Some(index) = index else {
                return Err(format!("tensor '{name}' has no layer number after '.layers.'"));
            };
            stacks.entry(stack).or_default().insert(index);
        }
    }
    for (stack, indices) in stacks {
        let expected: std::collections::BTreeSet<usize> = (0..config.layers).collect();
        if indices != expected {
            let found: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
            return Err(format!(
                "config.layers = {}, but the tensors '{stack}.layers.{{i}}.*' hold layers {}",
                config.layers,
                found.join(", ")
            ));
        }
    }
    Ok(())
}

/// The encoder of a pretrained checkpoint, for fine-tuning: any model whose encoder is
/// registered as `encoder.*` (the masked LM, BERT, SimCSE). Its config (with `dropout`) and
/// tokenizer come from the metadata and its weights from the `encoder.*` tensors; every other
/// tensor (heads, optimizer state) is left out. Errors name the file and the missing or
/// misshapen tensor.
pub fn load_encoder(path: &Path, dropout: f32) -> Result<(Encoder, Params, Tokenizer), String> {
    let mut ckpt = read(path).map_err(|e| e.to_string())?;
    let in_file = |e: String| format!("checkpoint {}: {e}", path.display());
    let config = TransformerConfig::from_metadata(&ckpt.metadata).map_err(in_file)?;
    let tokenizer = Tokenizer::from_metadata(&ckpt.metadata).map_err(in_file)?;
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(in_file(format!(
            "the tokenizer in the metadata has {} ids, but config.vocab_size is {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    check_config_against_tensors(&config, &ckpt.tensors).map_err(in_file)?;
    let config = TransformerConfig { dropout, ..config };
    let mut params = Params::new();
    let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let encoder = Encoder::new(&mut params, "encoder", &config, rng).map_err(in_file)?;
    ckpt.tensors.retain(|name, _| name.starts_with("encoder."));
    assign(path, ckpt, &mut params).map_err(|e| e.to_string())?;
    Ok((encoder, params, tokenizer))
}
