//! # 8. BERT's pretraining: masked LM with next-sentence or sentence-order prediction
//!
//! The encoder reads `[CLS] A [SEP] B [SEP]`, fills in masked characters of both segments and
//! says whether B followed A in the text: L = L_MLM + L_NSP (`src/objectives/nsp.rs`).
//!
//!   cargo run --release --example bert                     (NSP: NotNext B from another play)
//!   cargo run --release --example bert -- --pair-task sop  (ALBERT's SOP: A and B swapped)
//!   cargo run --release --example bert -- --pair-task none (MLM alone: RoBERTa's question)
//!   cargo run --release --example bert -- --init runs/mlm/checkpoint.safetensors --steps 400
//!                                      (start from the mlm example's trained encoder and head)
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
//! The model is the mlm example's (same flags, or `--init`'s checkpoint) with segment
//! embeddings, a pooler (`--pool cls`, BERT's, or `mean`) and a two-way classifier.

use microlm::cli::{Domain, Flags};
use microlm::data::pairs::random_pair_batch;
use microlm::inspect::show_next_sentence;
use microlm::objectives::sentence_embeddings::Pooling;
use microlm::recipe::{print_pair_results, read_pair_task, Recipe, SHAPE_FLAGS};
use std::path::PathBuf;

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
    let init: String = flags.arg(
        "init",
        "none".into(),
        "masked-LM checkpoint to start from (none: fresh)",
    )?;
    let pool = flags.arg_choice("pool", "cls", &["cls", "mean"], "what the pair head's pooler reads")?;
    let weight = flags.arg_in("pair-weight", 1.0, Domain::above(0.0), "λ in L = L_MLM + λ L_pair")?;
    if flags.help_or_finish("bert")? {
        return Ok(());
    }
    let init = (init != "none").then(|| PathBuf::from(init));
    if init.is_some() {
        flags.refuse_given(SHAPE_FLAGS, "the model's shape comes from --init's checkpoint")?;
        flags.refuse_given(&["head-transform"], "the masked-LM head comes from --init's checkpoint")?;
    }

    // Data: sentence pairs from each split; the model (segment embeddings, pooler and classifier
    // fresh; the encoder and masked-LM head from --init's masked LM when given).
    let data = recipe.load_data()?;
    let (model, mut params) = recipe.bert(&data, (task, use_pair_loss), head_transform, init.as_deref())?;
    let (pairs, specials) = (recipe.sentence_pairs(&data, task)?, data.tokenizer.specials());
    let val = recipe.pair_batches(&pairs.val, &data);
    let pool = if pool == "mean" { Pooling::Mean } else { Pooling::Cls };
    let model = model.with_pair_weight(weight).with_pool(pool);

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
