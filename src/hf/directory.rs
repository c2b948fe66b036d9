//! A Hugging Face model directory: `config.json` (the class and its settings),
//! `model.safetensors` (the tensors under the class's names, with the `{"format": "pt"}`
//! metadata `transformers` asks for), `tokenizer.json` and `tokenizer_config.json`.

use super::json::{self, JsonFile};
use super::tokenizer_json::{read_tokenizer, tokenizer_config, tokenizer_json};
use crate::checkpoint;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A model in another library's terms: its `config.json` and its tensors by that library's
/// names, with notes on anything the mapping did beyond renaming (a bias moved, say).
#[derive(Clone, Debug)]
pub struct HfModel {
    /// `config.json`.
    pub config: Value,
    /// The tensors of `model.safetensors`.
    pub tensors: BTreeMap<String, Tensor>,
    /// One line per change of form that keeps the function (for the user to read).
    pub notes: Vec<String>,
}

/// The model file's name in the directory.
pub const MODEL_FILE: &str = "model.safetensors";

/// Write `model` and `tokenizer` into `dir` (created if needed); `max_len` is the longest input.
pub fn write_dir(dir: &Path, model: &HfModel, tokenizer: &Tokenizer, max_len: usize) -> Result<(), String> {
    let tokenizer_doc = tokenizer_json(tokenizer)?; // before writing anything: it may refuse
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    json::write(dir, "config.json", &model.config)?;
    let metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let tensors = model.tensors.iter().map(|(k, v)| (k.as_str(), v));
    checkpoint::save_named(&dir.join(MODEL_FILE), tensors, &metadata).map_err(|e| e.to_string())?;
    json::write(dir, "tokenizer.json", &tokenizer_doc)?;
    json::write(dir, "tokenizer_config.json", &tokenizer_config(max_len))
}

/// A model directory read back: its config, its tensors (F32 only) and its tokenizer.
pub struct HfDir {
    /// `config.json`.
    pub config: JsonFile,
    /// `model.safetensors`.
    pub tensors: BTreeMap<String, Tensor>,
    /// From `tokenizer.json`.
    pub tokenizer: Tokenizer,
}

/// Read `dir`; every error names the file.
pub fn read_dir(dir: &Path) -> Result<HfDir, String> {
    let config = JsonFile::read(dir, "config.json")?;
    let path = dir.join(MODEL_FILE);
    if !path.exists() {
        return Err(format!(
            "{} is missing (a model saved as pytorch_model.bin must be saved again with safe_serialization)",
            path.display()
        ));
    }
    let tensors = checkpoint::read(&path)
        .map_err(|e| match e.to_string() {
            e if e.contains("dtype") => format!("{e} (save the model in float32: model.float().save_pretrained(dir))"),
            e => e,
        })?
        .tensors;
    let tokenizer = read_tokenizer(&JsonFile::read(dir, "tokenizer.json")?)?;
    Ok(HfDir {
        config,
        tensors,
        tokenizer,
    })
}

/// The settings neither class has, refused before any work with the setting and the flag named.
pub fn refuse_unmapped(c: &crate::nn::TransformerConfig, class: &str) -> Result<(), String> {
    if c.norm == crate::nn::NormPlacement::Post {
        return Err(format!(
            "config.norm = post: {class} is pre-LN (a LayerNorm before each sub-layer, one after the last \
             layer); microlm's examples always train pre-LN, so this model was built by hand with \
             TransformerConfig::norm = Post"
        ));
    }
    if c.embedding_norm {
        return Err(format!(
            "config.embedding_norm = true: {class} has no LayerNorm on the embedding sum; train with \
             --embedding-norm false (the default) to export"
        ));
    }
    if c.type_vocab_size > 0 {
        return Err(format!(
            "config.type_vocab_size = {}: the exported models read no segment ids",
            c.type_vocab_size
        ));
    }
    Ok(())
}
