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
//! 2. Each update corrupts 32 documents afresh (BART-large's noise by default: 30% of the
//!    characters infilled in Poisson(3) spans, every sentence shuffled) and scores the
//!    decoder's every target token under teacher forcing.
//! 3. Every 100 steps: the teacher-forced loss and accuracy on fixed corrupted validation
//!    documents (`metrics.csv`, `loss.svg`).
//! 4. At the end, BART: held-out originals, their corruption and the greedy reconstruction,
//!    then the character error rate and exact-match rate beside the identity baseline. T5: the
//!    predicted spans beside the true ones, and span-token accuracy beside always guessing the
//!    most frequent character.

use microlm::cli::Flags;
use microlm::nn::TransformerConfig;
use microlm::objectives::{Denoiser, Noise};
use microlm::recipe::{length_grouped_documents, read_noise, Recipe};
use microlm::Params;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        out: "runs/denoise".into(),
        eval_batches: 10,
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let noise = read_noise(&mut flags)?;
    let shown = flags.arg("show", 4, "held-out documents printed at the end")?;
    let scored = flags.arg("score", 200, "held-out documents reconstructed and scored")?;
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
    let tokenizer = &data.tokenizer;
    let scored = &examples[..scored.min(examples.len())];
    let mut printed = 0;
    let (ours, identity) = model.score_reconstructions(&params, scored, tokenizer, |e, written| {
        if printed < shown {
            printed += 1;
            println!("\ninput    {:?}", model.display(tokenizer, &e.source));
            println!("target   {:?}", model.display(tokenizer, &e.target));
            println!("written  {:?}", model.display(tokenizer, written));
        }
    })?;
    match &model.noise {
        Noise::Bart(_) => println!(
            "\non {} held-out documents: character error rate {:.4} (identity baseline {:.4}), exact match {:.4} (identity {:.4})",
            ours.documents, ours.cer(), identity.cer(), ours.exact_match(), identity.exact_match()
        ),
        Noise::T5(_) => {
            let accuracy = report.last_eval.as_ref().and_then(|e| e.extra.first()).map_or(0.0, |x| x.1);
            let (top, share) = model.most_frequent_baseline(&data.train, &examples);
            println!(
                "\nspan-token accuracy {accuracy:.4} (teacher-forced, held out); always {:?}: {share:.4}",
                tokenizer.decode(&[top])
            );
        }
    }
    Ok(())
}
