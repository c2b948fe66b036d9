//! # 8. BERT's pretraining: masked LM with next-sentence or sentence-order prediction
//!
//! The encoder reads `[CLS] A [SEP] B [SEP]`, fills in masked characters of both segments and
//! says whether B followed A in the text: L = L_MLM + L_NSP (`src/objectives/nsp.rs`).
//!
//!   cargo run --release --example bert                     (NSP: NotNext B from another play)
//!   cargo run --release --example bert -- --pair-task sop  (ALBERT's SOP: A and B swapped)
//!   cargo run --release --example bert -- --pair-task none (MLM alone: RoBERTa's question)
//!
//! What happens:
//! 1. Each split is cut into plays (read off the speaker names), documents of 8 speeches and
//!    whole sentences (`src/data/plays.rs`); pairs are built as BERT builds them, but trimmed by
//!    whole sentences (`src/data/pairs.rs`). NSP: half the time B is the text after A, otherwise
//!    it comes from another play. SOP: A and B are consecutive, swapped half the time.
//! 2. Each update draws 32 pairs of up to 128 characters, masks 15% of their characters and
//!    scores both tasks.
//! 3. Every 260 steps: the masked-character loss and accuracy, and the pair task's loss and
//!    accuracy, on the fixed validation pairs (written to `metrics.csv` and `loss.svg`).
//! 4. At the end: a few held-out pairs with P(IsNext), then the pair accuracy beside a boundary
//!    n-gram baseline, a word-overlap baseline and the majority label, and the masked LM's.
//!
//! The model is the mlm example's (same flags) with segment embeddings, a pooler and a
//! two-way classifier.

use microlm::cli::Flags;
use microlm::data::pairs::random_pair_batch;
use microlm::inspect::show_next_sentence;
use microlm::nn::TransformerConfig;
use microlm::objectives::Bert;
use microlm::recipe::{print_pair_results, read_pair_task, Recipe};
use microlm::Params;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        eval_every: 260,
        out: "runs/bert".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let head_transform = flags.arg("head-transform", false, "BERT's Linear-GELU-LN before the output")?;
    let (task, use_pair_loss) = read_pair_task(&mut flags)?;
    if flags.help_or_finish("bert")? {
        return Ok(());
    }

    // Data: sentence pairs from each split; the model, with segment embeddings.
    let data = recipe.load_data()?;
    let (pairs, specials) = (recipe.sentence_pairs(&data, task)?, data.tokenizer.specials());
    let val = recipe.pair_batches(&pairs.val, &data);
    let config = TransformerConfig {
        type_vocab_size: 2,
        ..recipe.model_config(&data)?
    };
    let mut params = Params::new();
    let model = Bert::new(
        &mut params,
        &config,
        &data.tokenizer,
        head_transform,
        task,
        use_pair_loss,
        &mut recipe.init_rng(),
    )?;

    // Train: masked LM and the pair task on each batch of pairs; validation reports both.
    let report = recipe.train(
        &data,
        &mut params,
        &model.metadata(),
        |tape, params, rng| {
            let batch = random_pair_batch(&pairs.train, recipe.batch, recipe.seq_len, &specials, rng);
            model.loss(tape, params, &batch, rng)
        },
        |params| model.validation(params, &val),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // What it learned: P(IsNext) on held-out pairs, then the accuracies beside the baselines.
    show_next_sentence(&model, &params, &pairs.val, &val[0], &data.tokenizer, 4);
    let (mlm, pair) = model.evaluate(&params, &val);
    let accuracy = use_pair_loss.then(|| pair.accuracy.unwrap_or(0.0));
    print_pair_results(task, &pairs, accuracy, &mlm, &data.tokenizer);
    Ok(())
}
