//! # 9. Denoising: an encoder-decoder learns to undo BART's noise (or T5's span corruption)
//!
//! The encoder reads a corrupted document x̃; the decoder writes what the corruption hid,
//! L = -(1/|T|) sum log P(y_t | y_<t, x̃) (`src/objectives/denoise.rs`).
//!
//!   cargo run --release --example denoise
//!   cargo run --release --example denoise -- --noise t5      (T5's span corruption)
//!
//! What happens:
//! 1. Each split is cut into short documents: a few lines of one speech, its name line left
//!    out, at most `seq-len - 2` characters (`line_documents` in `src/data/documents.rs`).
//! 2. Each update corrupts 8 documents of similar length afresh (BART-large's noise by default:
//!    30% of the characters infilled in Poisson(3) spans, every sentence shuffled) and scores
//!    the decoder's every target token under teacher forcing; 6,000 updates of a 2 + 2-layer
//!    encoder-decoder.
//! 3. Every 500 steps: the teacher-forced loss and accuracy on 320 fixed corrupted validation
//!    documents (`metrics.csv`, `loss.svg`).
//! 4. At the end, BART: held-out originals, their corruption and the greedy reconstruction,
//!    then the character error rate and exact-match rate beside the identity baseline. T5: the
//!    predicted spans beside the true ones, and span-token accuracy beside always guessing the
//!    most frequent character.

use microlm::cli::{Domain, Flags};
use microlm::inspect::show_denoising;
use microlm::nn::TransformerConfig;
use microlm::objectives::Denoiser;
use microlm::recipe::{length_grouped_documents, read_noise, Recipe};
use microlm::Params;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    // Two layers in each stack and small batches: at this budget more updates beat wider
    // batches and deeper stacks (NOTES.md §11.5 has the runs that chose them).
    let defaults = Recipe {
        layers: 2,
        batch: 8,
        steps: 6000,
        eval_every: 500,
        eval_batches: 40,
        out: "runs/denoise".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let noise = read_noise(&mut flags)?;
    let shown = flags.arg("show", 4, "held-out documents printed at the end")?;
    let scored = flags.arg_in(
        "score",
        200,
        Domain::at_least(1),
        "held-out documents reconstructed and scored",
    )?;
    if flags.help_or_finish("denoise")? {
        return Ok(());
    }

    // Data: short documents from each split; the encoder-decoder (T5 adds its sentinels).
    let data = recipe.load_data()?;
    let docs = recipe.line_documents(&data, &noise)?;
    let config = TransformerConfig {
        vocab_size: Denoiser::vocab_size(&data.tokenizer, &noise),
        ..recipe.model_config(&data)?
    };
    let mut params = Params::new();
    let model = Denoiser::new(&mut params, &config, noise, &data.tokenizer, &mut recipe.init_rng())?;
    let (examples, val) = recipe.denoise_validation(&model, &docs.val);
    println!("noise: {}", model.noise.describe());
    let recipe = recipe.with_tokens_per_step(&examples);

    // Train: corrupt a fresh batch of documents each update.
    let report = recipe.train(
        &data,
        &mut params,
        &model.metadata(),
        |tape, params, rng| {
            let picked = length_grouped_documents(&docs.train, recipe.batch, rng);
            model.loss(tape, params, &model.batch(&picked, rng), rng)
        },
        |params| model.evaluate(params, &val),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // What it learned, on held-out documents.
    let last = report.last_eval.as_ref();
    show_denoising(
        &model,
        &params,
        &data.tokenizer,
        &examples,
        &data.train,
        last,
        shown,
        scored,
    )
}
