//! Everything a reimplementation elsewhere needs to train the denoiser on exactly our data and
//! be scored exactly as we are (`--twin DIR` of the denoise example; the PyTorch twin,
//! `benches/reference/denoise_torch.py`, reads it). Plain text, one record a line, ids separated
//! by spaces, fields by ` | `:
//!
//! - `settings.txt`: `key value` lines: the model's shape, the optimizer and its schedule, the
//!   special ids, the decoding;
//! - `vocab.txt`: `id hex` lines, the UTF-8 bytes each id decodes to (empty for the specials);
//! - `init.safetensors`: the parameters before the first update, under our names;
//! - `batches.txt`: the batch of every update, in order: `B S T | source | source lengths |
//!   decoder input | decoder input lengths | targets` (a target of -1 is padding);
//! - `val_batches.txt`: the teacher-forced validation batches, the same way;
//! - `val_examples.txt`: the held-out examples that are reconstructed and scored:
//!   `source | target`.

use super::Recipe;
use crate::checkpoint;
use crate::objectives::denoise::{Denoiser, Example, Seq2SeqBatch};
use crate::params::Params;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The open `batches.txt`, and the first write error (reported by [`BatchLog::finish`]).
pub struct BatchLog {
    path: PathBuf,
    file: BufWriter<File>,
    error: Option<String>,
}

fn ids(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ")
}

/// One batch as a line of `batches.txt`.
fn batch_line(b: &Seq2SeqBatch) -> String {
    let lengths = |l: &Option<Vec<usize>>| ids(l.as_deref().unwrap_or(&[]));
    let targets: Vec<String> = b
        .targets
        .iter()
        .map(|t| t.map_or("-1".to_string(), |y| y.to_string()))
        .collect();
    format!(
        "{} {} {} | {} | {} | {} | {} | {}",
        b.source.batch,
        b.source.seq_len,
        b.decoder_input.seq_len,
        ids(&b.source.ids),
        lengths(&b.source.lengths),
        ids(&b.decoder_input.ids),
        lengths(&b.decoder_input.lengths),
        targets.join(" ")
    )
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("--twin: cannot write {}: {e}", path.display()))
}

impl BatchLog {
    /// Create `dir` and write everything but the training batches, which [`BatchLog::write`]
    /// appends one update at a time. `decoding` holds the settings of the scored decoding.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        dir: &Path,
        recipe: &Recipe,
        model: &Denoiser,
        params: &Params,
        tokenizer: &Tokenizer,
        val_batches: &[Seq2SeqBatch],
        scored: &[Example],
        decoding: &BTreeMap<String, String>,
    ) -> Result<BatchLog, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("--twin: cannot create {}: {e}", dir.display()))?;
        let c = &model.model.config;
        let mut settings: BTreeMap<String, String> = BTreeMap::new();
        let mut put = |k: &str, v: String| settings.insert(k.to_string(), v);
        put("vocab_size", c.vocab_size.to_string());
        put("d_model", c.d_model.to_string());
        put("heads", c.heads.to_string());
        put("layers", c.layers.to_string());
        put("d_ff", c.d_ff.to_string());
        put("max_len", c.max_len.to_string());
        put("norm", format!("{:?}", c.norm).to_lowercase());
        put("activation", recipe.activation.clone());
        put("tie", c.tie_embeddings.to_string());
        put("scale_embeddings", c.scale_embeddings.to_string());
        put("position_scale", c.position_scale.to_string());
        put("layer_norm_eps", c.layer_norm_eps.to_string());
        put("dropout", c.dropout.to_string());
        put("steps", recipe.steps.to_string());
        put("lr", recipe.lr.to_string());
        put("min_lr", recipe.min_lr.to_string());
        put("warmup", recipe.warmup.to_string());
        put("weight_decay", recipe.weight_decay.to_string());
        put("beta2", recipe.beta2.to_string());
        put("decay_embeddings", recipe.decay_embeddings.to_string());
        put("grad_clip", recipe.grad_clip.to_string());
        put("eos", model.ids.noise.eos.to_string());
        put("pad", model.ids.pad.to_string());
        put("banned", ids(&model.banned()));
        put("prompt", ids(&model.prompt()));
        put("noise", model.noise.short_name().to_string());
        put("sentinels", model.ids.sentinels.count.to_string());
        settings.extend(decoding.clone());
        let text: String = settings.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        write_file(&dir.join("settings.txt"), &text)?;
        let vocab: String = (0..tokenizer.vocab_size())
            .map(|id| {
                let text = if tokenizer.specials().contains(id) {
                    String::new()
                } else {
                    tokenizer.decode(&[id])
                };
                let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
                format!("{id} {hex}\n")
            })
            .collect();
        write_file(&dir.join("vocab.txt"), &vocab)?;
        let path = dir.join("init.safetensors");
        checkpoint::save(&path, params, &BTreeMap::new())
            .map_err(|e| format!("--twin: cannot write {}: {e}", path.display()))?;
        let val: String = val_batches.iter().map(|b| batch_line(b) + "\n").collect();
        write_file(&dir.join("val_batches.txt"), &val)?;
        let examples: String = scored
            .iter()
            .map(|e| format!("{} | {}\n", ids(&e.source), ids(&e.target)))
            .collect();
        write_file(&dir.join("val_examples.txt"), &examples)?;
        let path = dir.join("batches.txt");
        let file = File::create(&path).map_err(|e| format!("--twin: cannot create {}: {e}", path.display()))?;
        Ok(BatchLog {
            path,
            file: BufWriter::new(file),
            error: None,
        })
    }

    /// Append one update's batch (a failure is kept for [`BatchLog::finish`]).
    pub fn write(&mut self, batch: &Seq2SeqBatch) {
        if self.error.is_none() {
            if let Err(e) = writeln!(self.file, "{}", batch_line(batch)) {
                self.error = Some(format!("--twin: cannot write {}: {e}", self.path.display()));
            }
        }
    }

    /// Flush, and report the first write error if there was one.
    pub fn finish(mut self) -> Result<(), String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.file
            .flush()
            .map_err(|e| format!("--twin: cannot write {}: {e}", self.path.display()))
    }
}
