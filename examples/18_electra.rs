//! # 18. ELECTRA: replaced-token detection, at the masked LM's compute
//!
//! A small generator (a masked LM a quarter as wide) fills 15% of the positions with its own
//! samples; the discriminator, the mlm example's encoder, says at every position whether the
//! character is the original: L = L_MLM(G) + 50 L_D (`src/objectives/electra.rs`). The
//! discriminator learns from every position, where the masked LM learns from 15%.
//!
//!   cargo run --release --example electra
//!   cargo run --release --example finetune -- --electra runs/electra/checkpoint.safetensors
//!
//! What happens:
//! 1. The mlm example's data, model and optimizer (`src/recipe/`), plus the generator.
//! 2. Each update draws 32 windows of 128 characters, masks 19 positions of each (85% become
//!    `[MASK]`, 15% stay), lets the generator fill them by sampling, and scores the generator
//!    at the masked positions and the discriminator at all of them.
//! 3. 1,169 updates: the same training FLOPs as the mlm example's 1,300 (its forward and
//!    backward products, counted as the profiler counts them, `src/objectives/compute.rs`;
//!    printed at the start).
//! 4. At the end: the discriminator's accuracy on replaced and on original positions beside
//!    always answering "original", the generator's loss, and validation text with the
//!    replaced characters and P(replaced) marked.
//!
//! Output in `--out` (default `runs/electra`): `checkpoint.safetensors` (the discriminator is
//! `encoder.*`, which the finetune example loads with `--electra`), `metrics.csv`, `loss.svg`.

use microlm::cli::{Domain, Flags};
use microlm::inspect::show_replaced_tokens;
use microlm::objectives::replaced_tokens::detection_table;
use microlm::objectives::Electra;
use microlm::recipe::Recipe;
use microlm::Params;
use std::path::PathBuf;

/// The updates that match the mlm example's compute (NOTES.md §11.9 counts them).
const STEPS: usize = 1169;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        steps: STEPS,
        out: PathBuf::from("runs/electra"),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let width = recipe.d_model / 4;
    let dg = flags.arg_in("generator-d-model", width, Domain::at_least(1), "the generator's width")?;
    if flags.help_or_finish("electra")? {
        return Ok(());
    }

    // Data, model, and what it costs beside the mlm example's masked LM.
    let data = recipe.load_data()?;
    let mut params = Params::new();
    let config = recipe.model_config(&data)?;
    let model = Electra::new(&mut params, &config, &data.tokenizer, dg, &mut recipe.init_rng())?;
    println!("{}", recipe.electra_compute_report(&data, &model)?);

    // Train: each update masks a fresh batch, samples the generator, scores both networks.
    let (report, val) = recipe.train_on_windows(
        &data,
        &mut params,
        &model.metadata(),
        |tape, params, batch, rng| model.loss(tape, params, batch, rng),
        |params, val| model.evaluate(params, val),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // What it learned: detection against the baseline, and what the discriminator sees.
    let e = report
        .last_eval
        .as_ref()
        .expect("the trainer validates after the last step");
    println!("\n{}", detection_table(e));
    show_replaced_tokens(&model, &params, &data.tokenizer, &val[0], 2, 64);
    Ok(())
}
