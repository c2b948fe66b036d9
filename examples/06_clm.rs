//! # 6. Causal language modelling
//!
//! Causal language modelling on Tiny Shakespeare with nanoGPT's CPU recipe: a GPT-style
//! character model that learns to write Shakespeare-like text, in about a minute and a half on
//! two cores.
//!
//!   cargo run --release --example clm
//!   cargo run --release --example clm -- --steps 500 --out runs/short
//!
//! The recipe (karpathy/nanoGPT's README, "I only have a macbook": `config/train_shakespeare_char.py`
//! with `--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
//! --lr_decay_iters=2000 --dropout=0.0`):
//! - context 64, batch 12, 4 layers, 4 heads, d_model 128, d_ff 512, no dropout;
//! - 2,000 updates at lr 1e-3: 100 warmup updates, then cosine decay to 1e-4 at update 2,000;
//! - AdamW with betas (0.9, 0.99) and weight decay 0.1 on every matrix (nanoGPT's rule: every
//!   parameter of 2 or more dimensions, the embedding included), gradients clipped at norm 1;
//! - the first 90% of the characters train, the last 10% validate.
//! - Unlike nanoGPT, positions are the fixed sinusoidal table (this crate's architecture), the
//!   output projection is not tied to the embedding (`--tie true` ties it; tied, the whole-split
//!   loss is 1.812 instead of 1.761, NOTES.md §11.3), and a window of 64 tokens gives 63 targets
//!   (the CLM loss scores x_{t+1} for t < 63), where nanoGPT reads 65 characters to score 64.
//! - Token vectors start at std 0.02 and are scaled by sqrt(d_model), so they start smaller
//!   than the sinusoidal positions (RMS 0.23 against 0.71), as in the mlm example.
//!
//! Every 250 updates it prints the validation loss over 20 validation batches (the same 20
//! every time, drawn from a fixed seed); at the end the loss over the whole validation split,
//! and a 500-character sample.

use microlm::cli::{Domain, Flags};
use microlm::data::windows::covering_batches;
use microlm::generate::Sampling;
use microlm::objectives::CausalLm;
use microlm::recipe::Recipe;
use microlm::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let recipe = Recipe::read(&mut flags, Recipe::nanogpt_cpu())?;
    let sample_len: usize = flags.arg_in(
        "sample-len",
        500,
        Domain::at_least(1),
        "characters to sample at the end",
    )?;
    if flags.help_or_finish("clm")? {
        return Ok(());
    }

    // Data and model.
    let data = recipe.load_data()?;
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &recipe.model_config(&data)?, &mut recipe.init_rng())?;

    // Train: each update scores every next token of a fresh batch.
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

    // The whole validation split, every token after the first scored once.
    let whole = covering_batches(&data.val, recipe.seq_len, 8);
    let e = model.evaluate(&params, &whole);
    println!(
        "validation loss over the whole split: {:.4} ({} targets)",
        e.loss, e.count
    );

    // A sample, as nanoGPT's sample.py draws it: from a newline, temperature 0.8, top 200.
    let sampling = Sampling::TopK {
        k: 200,
        temperature: 0.8,
    };
    // Special tokens ([PAD], [MASK], ...) are never drawn.
    let mut rng = StdRng::seed_from_u64(recipe.seed);
    let t = std::time::Instant::now();
    let text = model.sample_text(&params, &data.tokenizer, "\n", sample_len, sampling, &mut rng)?;
    let speed = sample_len as f64 / t.elapsed().as_secs_f64();
    println!(
        "\n--- sample ({sample_len} characters, temperature 0.8, top-k 200, {speed:.0} tokens/s) ---\n{text}\n---"
    );
    Ok(())
}
