//! Taking a model to PyTorch: a trained checkpoint written as a Hugging Face `transformers`
//! model directory that `AutoModelForCausalLM` / `AutoModelForMaskedLM.from_pretrained` load
//! with no custom code and that computes the same logits, and such a directory read back.
//!
//! - The causal LM (the `clm` example's) becomes `GPT2LMHeadModel` ([`gpt2`]), the masked LM
//!   (the `mlm` example's, with `--head-transform true`) `MegatronBertForMaskedLM`
//!   ([`megatron_bert`]): each the class whose computation is ours exactly, once the tensors are
//!   renamed, transposed, stacked, and (for positions and the sqrt(d) scale) written out as the
//!   tables our forward computes. Each module's docs hold its mapping table.
//! - A setting with no exact counterpart is refused with the setting and the flag that avoids
//!   it named; nothing is approximated.
//! - The tokenizer goes along as `tokenizer.json` ([`tokenizer_json`]).
//! - [`reference_logits`] computes microlm's own logits on held-out text, for
//!   `scripts/check_hf.py` to compare with what `transformers` computes.
//!
//! Reading order: `tensors.rs` (the arithmetic), `json.rs`, `tokenizer_json.rs`, `directory.rs`,
//! `gpt2.rs`, `megatron_bert.rs`, then this file.

pub mod directory;
pub mod gpt2;
pub mod json;
pub mod megatron_bert;
pub mod tensors;
pub mod tokenizer_json;

use crate::checkpoint::{self, objective_of};
use crate::data::corpus::split;
use crate::data::Batch;
use crate::objectives::{CausalLm, MaskedLm};
use crate::params::Params;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use directory::{read_dir, write_dir, HfModel};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// A model microlm can take to `transformers`, loaded from its checkpoint.
pub enum Model {
    /// The causal LM, to `GPT2LMHeadModel`.
    Causal(CausalLm),
    /// The masked LM, to `MegatronBertForMaskedLM`.
    Masked(MaskedLm),
}

/// Load the model of `path` if its objective is one the export takes (`clm` or `mlm`).
pub fn load(path: &Path) -> Result<(Model, Params, Tokenizer), String> {
    let metadata = checkpoint::read(path).map_err(|e| e.to_string())?.metadata;
    match objective_of(&metadata) {
        "clm" => CausalLm::load(path).map(|(m, p, t)| (Model::Causal(m), p, t)),
        "mlm" => MaskedLm::load(path).map(|(m, p, t)| (Model::Masked(m), p, t)),
        other => Err(format!(
            "checkpoint {}: its model was trained as {other}; the export takes the causal LM (the clm \
             example's, to {}) and the masked LM (the mlm example's, to {})",
            path.display(),
            gpt2::CLASS,
            megatron_bert::CLASS
        )),
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The `transformers` class.
    pub class: &'static str,
    /// The model in the other library's form (config, tensors, notes).
    pub model: HfModel,
}

/// Write the model of checkpoint `from` into the directory `to` as a `transformers` model with
/// its tokenizer. Refusals name the setting and the flag that makes the model exportable. A
/// directory that already holds a `model.safetensors` (perhaps trained on in PyTorch) is never
/// written over.
pub fn export(from: &Path, to: &Path) -> Result<Exported, String> {
    if to.join(directory::MODEL_FILE).exists() {
        return Err(format!(
            "{} already holds a model ({}); the export never writes over one: choose another directory or remove it",
            to.display(),
            directory::MODEL_FILE
        ));
    }
    let (model, params, tokenizer) = load(from)?;
    let pad = tokenizer.special("[PAD]");
    let in_file = |e: String| format!("checkpoint {}: {e}", from.display());
    let (class, hf, max_len) = match &model {
        Model::Causal(m) => (
            gpt2::CLASS,
            gpt2::to_gpt2(m, &params, pad).map_err(in_file)?,
            m.decoder.config.max_len,
        ),
        Model::Masked(m) => (
            megatron_bert::CLASS,
            megatron_bert::to_megatron_bert(m, &params, pad).map_err(in_file)?,
            m.encoder.config.max_len,
        ),
    };
    write_dir(to, &hf, &tokenizer, max_len)?;
    Ok(Exported { class, model: hf })
}

/// Read the `transformers` model directory `from` (a `gpt2` or `megatron-bert` model in a
/// configuration microlm has) and write it as a microlm checkpoint at `to`, which the `generate`
/// / `fill_mask` examples and [`load`] read; an existing file at `to` is never written over.
/// Returns the class read.
pub fn import(from: &Path, to: &Path) -> Result<&'static str, String> {
    if to.exists() {
        return Err(format!(
            "{} exists; the import never writes over a file: choose another path or remove it",
            to.display()
        ));
    }
    let dir = read_dir(from)?;
    let in_dir = |e: String| format!("{}: {e}", from.display());
    let vocab = dir.config.usize("vocab_size").map_err(in_dir)?;
    if vocab != dir.tokenizer.vocab_size() {
        return Err(in_dir(format!(
            "config.json has vocab_size {vocab}, tokenizer.json {} ids",
            dir.tokenizer.vocab_size()
        )));
    }
    let (class, params, mut metadata) = match dir.config.str_or("model_type", "").map_err(in_dir)? {
        gpt2::MODEL_TYPE => {
            let (m, p) = gpt2::from_gpt2(&dir.config, &dir.tensors).map_err(in_dir)?;
            (gpt2::CLASS, p, m.metadata())
        }
        megatron_bert::MODEL_TYPE => {
            let (m, p) =
                megatron_bert::from_megatron_bert(&dir.config, &dir.tensors, &dir.tokenizer).map_err(in_dir)?;
            (megatron_bert::CLASS, p, m.metadata())
        }
        other => {
            return Err(in_dir(format!(
                "config.json: model_type = {other:?}; microlm imports {:?} ({}) and {:?} ({})",
                gpt2::MODEL_TYPE,
                gpt2::CLASS,
                megatron_bert::MODEL_TYPE,
                megatron_bert::CLASS
            )))
        }
    };
    metadata.extend(dir.tokenizer.to_metadata());
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    checkpoint::save(to, &params, &metadata).map_err(|e| e.to_string())?;
    Ok(class)
}

/// microlm's logits on held-out ids, for the check against `transformers`.
pub struct Reference {
    /// The held-out text the ids encode.
    pub text: String,
    /// Its ids.
    pub clean_ids: Vec<usize>,
    /// What the model reads: the same ids, with every 8th (from the 4th) replaced by `[MASK]` for
    /// the masked LM.
    pub input_ids: Vec<usize>,
    /// Logits at every position, [T, V].
    pub logits: Tensor,
    /// A longer stretch of the held-out ids (up to 4,096), for checking another library's
    /// tokenizer against ours on more text than the model reads at once.
    pub sample_ids: Vec<usize>,
}

/// The first max_len tokens of the validation split (the last 10%) of `corpus`, through the
/// model in evaluation mode.
pub fn reference_logits(
    model: &Model,
    params: &Params,
    tokenizer: &Tokenizer,
    corpus: &str,
) -> Result<Reference, String> {
    let ids = tokenizer.encode(corpus);
    let (_, held_out) = split(&ids, 0.9);
    let max_len = match model {
        Model::Causal(m) => m.decoder.config.max_len,
        Model::Masked(m) => m.encoder.config.max_len,
    };
    let t = max_len.min(held_out.len());
    if t < 2 {
        return Err(format!(
            "the corpus's validation split has {} tokens; the check needs 2",
            held_out.len()
        ));
    }
    let clean_ids = held_out[..t].to_vec();
    let mut tape = Tape::no_grad();
    let rng = &mut StdRng::seed_from_u64(0); // no dropout in evaluation
    let (input_ids, logits) = match model {
        Model::Causal(m) => {
            let logits = m
                .decoder
                .forward(&mut tape, params, &Batch::new(clean_ids.clone(), 1, t), rng);
            (clean_ids.clone(), logits)
        }
        Model::Masked(m) => {
            let mask = tokenizer.special("[MASK]");
            let input: Vec<usize> = clean_ids
                .iter()
                .enumerate()
                .map(|(i, &x)| if i % 8 == 3 { mask } else { x })
                .collect();
            let positions: Vec<usize> = (0..t).collect();
            let logits = m.logits_at(&mut tape, params, &Batch::new(input.clone(), 1, t), &positions, rng);
            (input, logits)
        }
    };
    let v = tokenizer.vocab_size();
    let logits = tape
        .value(logits)
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(vec![t, v]);
    Ok(Reference {
        text: tokenizer.decode(&clean_ids),
        sample_ids: held_out[..held_out.len().min(4096)].to_vec(),
        clean_ids,
        input_ids,
        logits: logits.map_err(|e| format!("logits: {e}"))?.into_shared(),
    })
}

/// Write `reference` as JSON: `text`, `clean_ids`, `input_ids`, `logits` (rows of floats), and
/// `sample_text` with its `sample_ids`.
pub fn write_reference(path: &Path, reference: &Reference, tokenizer: &Tokenizer) -> Result<(), String> {
    let rows: Vec<Vec<f32>> = reference
        .logits
        .outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect();
    let doc = json!({
        "text": reference.text,
        "clean_ids": reference.clean_ids,
        "input_ids": reference.input_ids,
        "logits": rows,
        "sample_text": tokenizer.decode(&reference.sample_ids),
        "sample_ids": reference.sample_ids,
    });
    let text = serde_json::to_string(&doc).expect("a JSON value always prints");
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The tensor names and shapes of an exported model, sorted: what a reader of `model.safetensors`
/// finds.
pub fn shapes(model: &HfModel) -> BTreeMap<String, Vec<usize>> {
    model
        .tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.shape().to_vec()))
        .collect()
}
