//! # 10. Contrastive learning: SimCSE sentence embeddings, and what they retrieve
//!
//! Each line goes through the encoder twice; dropout makes two views, and each view must pick
//! out its twin among the batch's other lines (InfoNCE, `src/objectives/simcse.rs`).
//!
//!   cargo run --release --example mlm                      (first: the masked-LM checkpoint)
//!   cargo run --release --example simcse -- --init runs/mlm/checkpoint.safetensors
//!   cargo run --release --example simcse                   (or from scratch)
//!
//! What happens:
//! 1. Lines: the distinct spoken lines of each split with at least 20 characters.
//! 2. Each update draws 64 distinct training lines and scores the two dropout views.
//! 3. Every 100 steps: 1,000 held-out lines against copies with one character in 20 dropped or
//!    swapped (`--edit-rate`): InfoNCE loss and top-1 accuracy within each batch.
//! 4. At the end, for the untrained encoder, the masked LM (mean-pooled and `[CLS]`) and SimCSE:
//!    alignment, uniformity, retrieval among all 1,000 copies; then nearest neighbours.

use microlm::cli::{Domain, Flags};
use microlm::inspect::{compare_embeddings, show_neighbours};
use microlm::objectives::sentence_embeddings::Pooling;
use microlm::recipe::{Recipe, SHAPE_FLAGS};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        steps: 500,
        batch: 64,
        lr: 1e-4,
        min_lr: 1e-5,
        warmup: 50,
        dropout: 0.1,
        eval_batches: 16,
        out: "runs/simcse".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let init: Option<std::path::PathBuf> = flags.arg_opt("init", "start from this masked-LM checkpoint")?;
    let edit_rate = flags.arg_in(
        "edit-rate",
        0.05,
        Domain::between(0.0, 1.0),
        "share of a copy's characters dropped or swapped",
    )?;
    if flags.help_or_finish("simcse")? {
        return Ok(());
    }
    if init.is_some() {
        flags.refuse_given(SHAPE_FLAGS, "the model's shape comes from --init's checkpoint")?;
    }

    // Data: distinct lines; the held-out lines and their lightly corrupted copies.
    let data = recipe.load_data()?;
    let train_lines = recipe.training_lines(&data)?;
    let val = recipe.line_pairs(&data, edit_rate)?;
    let tokenizer = &data.tokenizer;

    // The model: the masked LM's encoder (with dropout for the views) or a fresh one.
    let (model, mut params) = recipe.simcse(&data, init.as_deref())?;
    let ((untrained_model, untrained), before) = (recipe.simcse(&data, None)?, params.clone());

    // Train: two dropout views of 64 distinct lines per update.
    let batches = recipe.line_pair_batches(&val, tokenizer);
    let recipe = recipe.with_line_tokens(&train_lines);
    let report = recipe.train(
        &data,
        &mut params,
        &model.metadata(),
        |tape, params, rng| {
            let x = recipe.line_batch(&train_lines, tokenizer, rng);
            model.loss(tape, params, &x, rng).expect("batches of 2 or more lines")
        },
        |params| model.validation(params, &batches),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // The table, then the nearest neighbours by the SimCSE embedding.
    let mut rows = vec![(
        "untrained encoder, [CLS]",
        &untrained_model.encoder,
        &untrained,
        Pooling::Cls,
    )];
    if init.is_some() {
        rows.push(("masked LM, mean-pooled", &model.encoder, &before, Pooling::Mean));
        rows.push((
            "masked LM, [CLS] (SimCSE before)",
            &model.encoder,
            &before,
            Pooling::Cls,
        ));
    }
    rows.push(("SimCSE, mean-pooled", &model.encoder, &params, Pooling::Mean));
    rows.push(("SimCSE, [CLS]", &model.encoder, &params, Pooling::Cls));
    let simcse = compare_embeddings(&rows, &val, tokenizer);
    show_neighbours(&val.lines(), &simcse, &[0, 10, 20], 5);
    Ok(())
}
