//! # 4. Masked language modelling
//!
//! Masked language modelling on Tiny Shakespeare: a BERT-shaped encoder learns to fill in
//! masked characters, in about five minutes on two cores.
//!
//!   cargo run --release --example mlm
//!   cargo run --release --example mlm -- --steps 200 --out runs/short
//!   cargo run --release --example mlm -- --resume runs/mlm/checkpoint.safetensors
//!
//! What happens:
//! 1. The corpus is tokenized (characters by default) and split: the first 90% trains, the
//!    last 10% validates.
//! 2. Each update draws 32 random windows of 128 tokens, corrupts them as BERT does (15% of
//!    positions chosen, 80% of those become `[MASK]`, 10% a random token, 10% unchanged; see
//!    `src/objectives/mlm.rs`), and minimises the cross-entropy of the originals there.
//! 3. AdamW (lr 1e-3, weight decay 0.01 except on biases, LayerNorm and embeddings), 100 warmup
//!    steps then cosine decay to 1e-4, gradient norm clipped at 1 (`src/recipe/`).
//! 4. Every 100 steps it measures the loss and masked-token accuracy on 50 fixed validation
//!    batches (the same windows and masks every time, whatever the seed).
//! 5. At the end it fills in masked characters of validation lines, showing its top 5 guesses.
//!
//! Output in `--out` (default `runs/mlm`): `checkpoint.safetensors` (model, optimizer, step and
//! every setting; Ctrl-C saves one too), `metrics.csv`, and `loss.svg` (open it in a browser).
//! `--resume` with the same flags continues exactly as if never stopped; a checkpoint made
//! with other settings is refused, naming each difference. `--help` lists the flags.
//!
//! The model: the toy encoder (pre-LN, sinusoidal positions, no dropout by default), then an
//! output projection to the characters of its own. Token vectors start at std 0.02, so that
//! sqrt(d) E[x] starts smaller than the positions (RMS 0.23 against 0.71): the model leaves the
//! early plateau at the unigram loss (about 3 nats) some 150 steps sooner, and ends 0.32 nats
//! lower than with unit-size token vectors (1.536 against 1.856 at seed 0, NOTES.md §11.3).
//! The same model in PyTorch with the same start ends 0.05 nats above ours (1.583 against
//! 1.5345, seeds 0 and 1); with PyTorch's usual start (std d^-0.5) 0.3 above (NOTES.md §11.1).
//! BERT's own head, a Linear-GELU-LayerNorm transform and the projection tied to the token
//! embedding, is `--head-transform true --tie true`; at this size it ends 0.18 nats higher, as
//! the same ablation measures.

use microlm::cli::Flags;
use microlm::inspect::show_fill_mask;
use microlm::objectives::MaskedLm;
use microlm::recipe::Recipe;
use microlm::Params;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let recipe = Recipe::read(&mut flags, Recipe::default())?;
    let head_transform = flags.arg("head-transform", false, "BERT's Linear-GELU-LN before the output")?;
    if flags.help_or_finish("mlm")? {
        return Ok(());
    }

    // Data and model.
    let data = recipe.load_data()?;
    let mut params = Params::new();
    let config = recipe.model_config(&data)?;
    let model = MaskedLm::new(
        &mut params,
        &config,
        &data.tokenizer,
        head_transform,
        &mut recipe.init_rng(),
    )?;

    // Train: each update masks a fresh batch of windows and scores the masked positions.
    let (report, _) = recipe.train_on_windows(
        &data,
        &mut params,
        &model.metadata(),
        |tape, params, batch, rng| model.loss(tape, params, batch, rng),
        |params, val| model.evaluate(params, val),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // What it learned: its guesses at masked letters of validation lines.
    let val_text = data.tokenizer.decode(&data.val);
    show_fill_mask(&model, &params, &data.tokenizer, &val_text, recipe.seq_len, 4);
    Ok(())
}
