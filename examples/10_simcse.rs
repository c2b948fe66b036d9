//! # 10. Contrastive learning: sentence embeddings that find what belongs together
//!
//! Each training text has a positive; each must pick out its own among the batch's other
//! positives (InfoNCE, `src/objectives/simcse.rs`). The positives decide what is learned:
//! two spans of one speech (DeCLUTR, the default), two dropout views of a line (SimCSE), or a
//! line and its misspelt copy.
//!
//!   cargo run --release --example mlm                      (first: the masked-LM checkpoint)
//!   cargo run --release --example simcse -- --init runs/mlm/checkpoint.safetensors
//!   cargo run --release --example simcse -- --init ... --positives dropout --pool cls
//!
//! What happens:
//! 1. Training pairs from the first 90% of the text; held out: the speeches of the last 10%.
//! 2. Each update draws 32 distinct speeches (or lines) and their positives, and differentiates
//!    the loss 16 texts at a time (gradient caching, `src/objectives/grad_cache.rs`).
//! 3. Every 100 steps: InfoNCE and top-1 within batches of held-out speech halves.
//! 4. At the end, two tables, each encoder beside the baselines: relatedness (the second half
//!    of a held-out speech from its first half, among all of them; bags of words and of
//!    characters), then spelling (a held-out line from a copy with characters dropped or
//!    swapped); then nearest neighbours.

use microlm::cli::{Domain, Flags};
use microlm::inspect::{compare_embeddings, show_neighbours};
use microlm::objectives::sentence_embeddings::Pooling;
use microlm::recipe::relatedness::{pooled_rows, relatedness_table, Positives};
use microlm::recipe::{Recipe, SHAPE_FLAGS};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let positives = flags.arg_choice("positives", "span", &Positives::NAMES, "what makes a pair")?;
    let positives = Positives::parse(&positives)?;
    let defaults = Recipe {
        steps: 500,
        batch: 32,
        lr: 1e-3,
        min_lr: 1e-5,
        warmup: 50,
        dropout: positives.default_dropout(),
        eval_batches: 16,
        out: "runs/simcse".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let init: Option<std::path::PathBuf> = flags.arg_opt("init", "start from this masked-LM checkpoint")?;
    let pool = flags.arg_choice("pool", "mean", &["mean", "cls"], "the embedding, in the loss and after")?;
    let edit_rate = flags.arg_in(
        "edit-rate",
        0.2,
        Domain::between(0.0, 1.0),
        "share of a copy's characters edited",
    )?;
    let chunk_help = "texts per backward pass (gradient caching); 0: the whole batch at once";
    let chunk = flags.arg_in("chunk", 16usize, Domain::at_least(0), chunk_help)?;
    if flags.help_or_finish("simcse")? {
        return Ok(());
    }
    if init.is_some() {
        flags.refuse_given(SHAPE_FLAGS, "the model's shape comes from --init's checkpoint")?;
    }
    positives.check_dropout(recipe.dropout)?;
    let pool = if pool == "mean" { Pooling::Mean } else { Pooling::Cls };

    // Data: the pairs to train on, the held-out speech halves and the misspelt lines.
    let data = recipe.load_data()?;
    let source = recipe.pair_source(&data, positives, edit_rate)?;
    let (halves, edits) = (recipe.speech_halves(&data)?, recipe.line_pairs(&data, edit_rate)?);
    let tokenizer = &data.tokenizer;

    // The model: the masked LM's encoder (with dropout) or a fresh one; and copies of the start.
    let (model, mut params) = recipe.simcse(&data, init.as_deref(), chunk)?;
    let model = model.with_pool(pool);
    let ((untrained_model, untrained), before) = (recipe.simcse(&data, None, chunk)?, params.clone());

    // Train: `--batch` pairs per update, `--chunk` texts per backward; validate on held-out halves.
    let report = recipe.train_contrastive(&data, &mut params, &model, &source, &halves, chunk)?;
    if report.interrupted {
        return Ok(());
    }

    // Both tables, every encoder beside the baselines; then neighbours by the trained embedding.
    let start = if init.is_some() { "masked LM" } else { "start" };
    let rows = pooled_rows(&[
        ("untrained encoder", &untrained_model.encoder, &untrained),
        (start, &model.encoder, &before),
        ("contrastive", &model.encoder, &params),
    ]);
    relatedness_table(&rows, &halves, &data);
    println!("\nspelling: a held-out line from its copy with {edit_rate} of its characters edited");
    let f = compare_embeddings(&rows, &edits, tokenizer);
    show_neighbours(&edits.lines(), &f, &[0, 10, 20], 5);
    Ok(())
}
