//! # 16. Looking at attention
//!
//! What the heads of a trained masked LM (`04_mlm.rs`) and causal LM (`06_clm.rs`) attend to:
//! a heatmap of every layer and head for one sentence, and how much weight each head puts on
//! a few recognisable patterns, measured on validation text.
//!
//!   cargo run --release --example mlm        # writes runs/mlm/checkpoint.safetensors
//!   cargo run --release --example clm        # writes runs/clm/checkpoint.safetensors
//!   cargo run --release --example attention
//!   cargo run --release --example attention -- --mlm runs/mlm/checkpoint.safetensors --text "To be, or not to be"
//!
//! With neither `--mlm` nor `--clm` it reads both default checkpoints; with one, only that one.
//! For each it writes `runs/attention/{mlm,clm}.svg` (rows: layers, columns: heads; queries
//! down, keys across; darker is more weight; zoom in for the token labels), then prints each
//! head's mean attention mass on the previous and next token, itself, the same character
//! elsewhere, the rest of its word, spaces and punctuation, and the first position
//! (`src/attention_map/mod.rs` defines each), over every position of `--windows` evenly spaced
//! windows of the corpus's last 10% (the validation split), beside what uniform attention
//! would give; last, the heads with more than `--threshold` on one pattern.

use microlm::attention_map::{attention_grid_svg, token_labels, Looked};
use microlm::cli::{Domain, Flags};
use std::path::Path;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let mlm: Option<String> = flags.arg_opt("mlm", "a masked LM checkpoint (runs/mlm/checkpoint.safetensors)")?;
    let clm: Option<String> = flags.arg_opt("clm", "a causal LM checkpoint (runs/clm/checkpoint.safetensors)")?;
    let default_text = "ROMEO:\nBut soft, what light through yonder window breaks?".to_string();
    let text: String = flags.arg("text", default_text, "the sentence to draw")?;
    let corpus: String = flags.arg("corpus", "data/tinyshakespeare.txt".into(), "its last 10% is measured")?;
    let windows: usize = flags.arg_in("windows", 8, Domain::at_least(1), "validation windows measured")?;
    let threshold: f64 = flags.arg_in(
        "threshold",
        0.5,
        Domain::between(0.0, 1.0),
        "name the heads with more than this on a pattern",
    )?;
    let out: String = flags.arg("out", "runs/attention".into(), "output directory")?;
    if flags.help_or_finish("attention")? {
        return Ok(());
    }
    let default = |kind: &str| Some(format!("runs/{kind}/checkpoint.safetensors"));
    let checkpoints = match (mlm, clm) {
        (None, None) => [("mlm", default("mlm")), ("clm", default("clm"))],
        (mlm, clm) => [("mlm", mlm), ("clm", clm)],
    };
    for (kind, path) in &checkpoints {
        if let Some(path) = path {
            Looked::check(kind, Path::new(path))?; // both, before any work
        }
    }
    let corpus_text = microlm::data::load_text(Path::new(&corpus))?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{out}: {e}"))?;
    for (kind, path) in checkpoints {
        let Some(path) = path else { continue };
        let model = Looked::load(kind, Path::new(&path))?;
        let (c, tok) = (model.config(), &model.tokenizer);

        // The sentence's maps, drawn.
        let mut ids = tok.encode(&text);
        if ids.len() > c.max_len {
            eprintln!(
                "note: the text is {} tokens and the {kind} model reads {}: cut there",
                ids.len(),
                c.max_len
            );
            ids.truncate(c.max_len);
        }
        let title = format!("{kind}: {path}, {} layers x {} heads, {text:?}", c.layers, c.heads);
        let svg = attention_grid_svg(&token_labels(tok, &ids), &model.maps(&ids), &title);
        let svg_path = Path::new(&out).join(format!("{kind}.svg"));
        std::fs::write(&svg_path, svg).map_err(|e| format!("{}: {e}", svg_path.display()))?;

        // The patterns, measured on the validation split.
        let all = tok.encode(&corpus_text);
        let patterns = model.patterns(&all[all.len() * 9 / 10..], windows);
        println!("\n== {kind} ({path}): heatmaps in {}", svg_path.display());
        println!(
            "mean attention mass per head over {} validation positions:",
            patterns.queries()
        );
        println!("{}\nheads with more than {threshold} on a pattern:", patterns.table());
        let jobs = patterns.jobs(threshold);
        println!(
            "  {}",
            if jobs.is_empty() {
                "none (try a lower --threshold)".into()
            } else {
                jobs.join("\n  ")
            }
        );
    }
    Ok(())
}
