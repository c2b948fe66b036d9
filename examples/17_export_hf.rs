//! # 17. Taking a model to PyTorch
//!
//! Write a trained model as a Hugging Face `transformers` model directory (`config.json`,
//! `model.safetensors`, `tokenizer.json`), which PyTorch loads with no code of ours and runs to
//! the same logits; or read such a directory back into a microlm checkpoint.
//!
//!   cargo run --release --example clm                                  # runs/clm/checkpoint.safetensors
//!   cargo run --release --example export_hf -- --from runs/clm/checkpoint.safetensors --to runs/clm-hf
//!   cargo run --release --example mlm -- --head-transform true --out runs/mlm-ht
//!   cargo run --release --example export_hf -- --from runs/mlm-ht/checkpoint.safetensors --to runs/mlm-hf
//!   cargo run --release --example export_hf -- --import runs/clm-hf --to runs/clm-back.safetensors
//!
//! Then, in Python: `AutoModelForCausalLM.from_pretrained("runs/clm-hf")` (`GPT2LMHeadModel`) or
//! `AutoModelForMaskedLM.from_pretrained("runs/mlm-hf")` (`MegatronBertForMaskedLM`), and
//! `AutoTokenizer.from_pretrained(...)`. `scripts/check_hf.py` compares the logits and trains on.
//!
//! Both ways it also writes microlm's logits on held-out text (the first max_len tokens of the
//! corpus's validation split; for the masked LM every 8th token masked) as JSON, for the check.
//! A setting with no exact counterpart in the class is refused, naming the setting and the flag
//! that avoids it (the `mlm` example's default head, without the transform, is one: NOTES.md §15).

use microlm::cli::Flags;
use microlm::data::load_text;
use microlm::hf;
use std::path::{Path, PathBuf};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let from: Option<String> = flags.arg_opt("from", "a microlm checkpoint to export (clm or mlm)")?;
    let import: Option<String> = flags.arg_opt("import", "a transformers model directory to read back")?;
    let to: Option<String> = flags.arg_opt("to", "the directory to write (export) or the checkpoint (import)")?;
    let corpus: String = flags.arg(
        "corpus",
        "data/tinyshakespeare.txt".into(),
        "text whose last 10% is held out",
    )?;
    let logits: Option<String> = flags.arg_opt(
        "logits",
        "where microlm's logits go (default: DIR/microlm_logits.json; CHECKPOINT.logits.json)",
    )?;
    if flags.help_or_finish("export_hf")? {
        return Ok(());
    }
    let to = PathBuf::from(to.ok_or("--to is required: the directory (export) or checkpoint (import) to write")?);
    let text = load_text(Path::new(&corpus))?;

    let (checkpoint, logits) = match (from, import) {
        (Some(from), None) => {
            let exported = hf::export(Path::new(&from), &to)?;
            println!("{from} -> {} ({}):", to.display(), exported.class);
            // Every tensor's name and shape; of the layers, the first (the others are alike).
            let shapes = hf::shapes(&exported.model);
            let later = |n: &str| {
                ["h", "layer"]
                    .iter()
                    .any(|l| n.contains(&format!(".{l}.")) && !n.contains(&format!(".{l}.0.")))
            };
            for (name, shape) in shapes.iter().filter(|(n, _)| !later(n)) {
                println!("  {name:<52} {shape:?}");
            }
            println!("  ({} tensors in all)", shapes.len());
            for note in &exported.model.notes {
                println!("note: {note}");
            }
            let logits = logits.map_or(to.join("microlm_logits.json"), PathBuf::from);
            (PathBuf::from(from), logits)
        }
        (None, Some(import)) => {
            let class = hf::import(Path::new(&import), &to)?;
            println!("{import} ({class}) -> {}", to.display());
            let logits = logits.map_or(to.with_extension("logits.json"), PathBuf::from);
            (to, logits)
        }
        _ => return Err("give exactly one of --from CHECKPOINT (export) and --import DIR (import)".into()),
    };

    // microlm's own logits on held-out text, from the checkpoint as microlm reads it.
    let (model, params, tokenizer) = hf::load(&checkpoint)?;
    let reference = hf::reference_logits(&model, &params, &tokenizer, &text)?;
    hf::write_reference(&logits, &reference, &tokenizer)?;
    println!(
        "microlm's logits on {} held-out tokens -> {}",
        reference.clean_ids.len(),
        logits.display()
    );
    Ok(())
}
