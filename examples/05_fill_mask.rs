//! # 5. Fill in masks
//!
//! Fill in the `[MASK]`s of a sentence with a model the `mlm` example trained.
//!
//!   cargo run --release --example mlm                       # trains, writes runs/mlm/checkpoint.safetensors
//!   cargo run --release --example fill_mask -- "To be, or not to b[MASK]: that is the qu[MASK]stion."
//!   cargo run --release --example fill_mask -- --checkpoint other/checkpoint.safetensors --top 10 "..."
//!
//! For each `[MASK]` it prints the model's top guesses (special tokens left out) with their
//! probabilities, then the sentence with every mask replaced by its most probable token.

use microlm::checkpoint::load_checked;
use microlm::cli::{check, Domain, Flags};
use microlm::data::Batch;
use microlm::inspect::{special_ids, top_k_excluding, unknown_chars_warning};
use microlm::objectives::MaskedLm;
use std::path::Path;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let path: String = flags.arg(
        "checkpoint",
        "runs/mlm/checkpoint.safetensors".into(),
        "the mlm example's checkpoint",
    )?;
    let top: usize = flags.arg_in("top", 5, Domain::at_least(1), "guesses to show per [MASK]")?;
    flags.takes_positional(1, 1, "one sentence with [MASK] in it, quoted");
    if flags.help_or_finish("fill_mask \"a sentence with [MASK] in it\"")? {
        return Ok(());
    }
    let sentence = flags.positional()[0].clone(); // exactly one, checked by help_or_finish
    let (model, params, tokenizer) = load_checked(Path::new(&path), "checkpoint", "mlm", MaskedLm::load)?;
    check(top <= tokenizer.vocab_size(), "top", top, "exceeds the vocabulary")?;

    let text = sentence.replace("[MASK]", "");
    if let Some(warning) = unknown_chars_warning(&tokenizer, &text, "the sentence") {
        eprintln!("{warning}");
    }

    // The text between the masks is tokenized as usual; each [MASK] becomes the mask id.
    let mask = tokenizer.special("[MASK]");
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    for (i, piece) in sentence.split("[MASK]").enumerate() {
        if i > 0 {
            positions.push(ids.len());
            ids.push(mask);
        }
        ids.extend(tokenizer.encode(piece));
    }
    if positions.is_empty() {
        return Err(format!("the sentence {sentence:?} has no [MASK] to fill"));
    }
    let max_len = model.encoder.config.max_len;
    if ids.len() > max_len {
        return Err(format!(
            "the sentence is {} tokens long; this model reads at most {max_len}",
            ids.len()
        ));
    }
    let n = ids.len();
    let probs = model.probabilities(&params, &Batch::new(ids.clone(), 1, n), &positions);
    let specials = special_ids(&tokenizer); // never suggested: [PAD] [UNK] [CLS] [SEP] [MASK]
    let mut filled = ids.clone();
    for (k, (&p, row)) in positions.iter().zip(&probs).enumerate() {
        let order = top_k_excluding(row, top, &specials);
        let guesses: Vec<String> = order
            .iter()
            .map(|&v| format!("{:?} {:.3}", tokenizer.token_text(v), row[v]))
            .collect();
        println!("[MASK] {} (token {p}): {}", k + 1, guesses.join("  "));
        filled[p] = order[0];
    }
    println!("\n{}", tokenizer.decode(&filled));
    Ok(())
}
