//! # 9. Denoising: an encoder-decoder learns to undo BART's noise (or T5's span corruption)
//!
//! The encoder reads a corrupted document x̃; the decoder writes the original back,
//! L = -(1/|T|) sum log P(y_t | y_<t, x̃) (`src/objectives/denoise.rs`).
//!
//!   cargo run --release --example denoise                  (BART-large's mix)
//!   cargo run --release --example denoise -- --noise infill  (mask|delete|infill|permute|rotate|t5)
//!   sh examples/denoise_table.sh                            (all seven: the per-noise table)
//!
//! Documents are whole lines of one speech, at most `seq-len - 2` = 62 characters (about one
//! line). Each update corrupts 8 of them afresh; 10,000 updates of a 2 + 2-layer model. At the
//! end 200 held-out documents are reconstructed by beam search (`--beam 4`, length-normalised,
//! no 10 characters written twice; `--beam 1` is greedy) and scored beside the identity
//! baseline, the corrupted input handed back (`src/objectives/denoise_scores.rs`). `--twin DIR`
//! writes every batch for the PyTorch twin (`benches/reference/`). NOTES.md §11.5: figures.

use microlm::cli::Flags;
use microlm::inspect::show_denoising;
use microlm::recipe::denoise_scoring::DenoiseScoring;
use microlm::recipe::{length_grouped_documents, read_noise, BatchLog, Recipe};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    // Short documents, two layers in each stack and small batches: at this budget more updates
    // beat longer documents, wider batches and deeper stacks (NOTES.md §11.5 has the runs).
    let defaults = Recipe {
        seq_len: 64,
        layers: 2,
        batch: 8,
        steps: 10000,
        eval_every: 1000,
        eval_batches: 40,
        out: "runs/denoise".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let noise = read_noise(&mut flags)?;
    let scoring = DenoiseScoring::read(&mut flags)?; // decodings, --score, --show, --twin, --load
    if flags.help_or_finish("denoise")? {
        return Ok(());
    }

    // Data: short documents from each split; the encoder-decoder (T5 adds its sentinels).
    let data = recipe.load_data()?;
    let (model, mut params) = recipe.denoiser(&data, noise, scoring.load.as_deref())?;
    let docs = recipe.line_documents(&data, &model.noise)?;
    let (examples, val) = recipe.denoise_validation(&model, &docs.val);
    println!("noise: {}", model.noise.describe());
    let recipe = recipe.with_tokens_per_step(&examples);
    let (tok, held_out) = (&data.tokenizer, &examples[..scoring.scored.min(examples.len())]);
    let decoding = scoring.decodings[0].1.to_settings();
    let mut log = (scoring.twin.as_ref())
        .map(|dir| BatchLog::create(dir.as_ref(), &recipe, &model, &params, tok, &val, held_out, &decoding))
        .transpose()?;

    // Train: corrupt a fresh batch of documents each update (unless --load gave a trained model).
    let last = match scoring.load {
        Some(_) => model.evaluate(&params, &val),
        None => {
            let report = recipe.train(
                &data,
                &mut params,
                &model.metadata(),
                |tape, params, rng| {
                    let batch = model.batch(&length_grouped_documents(&docs.train, recipe.batch, rng), rng);
                    log.iter_mut().for_each(|l| l.write(&batch));
                    model.loss(tape, params, &batch, rng)
                },
                |params| model.evaluate(params, &val),
            )?;
            log.map(BatchLog::finish).transpose()?;
            match report.last_eval {
                Some(last) if !report.interrupted => last,
                _ => return Ok(()), // interrupted: the checkpoint is saved; --resume continues
            }
        }
    };
    // What it learned: reconstructions of held-out documents, beside the identity baseline.
    show_denoising(&model, &params, tok, &examples, &data.train, Some(&last), &scoring)
}
