//! # 8. BERT's pretraining: masked LM and next-sentence prediction
//!
//! The encoder reads `[CLS] A [SEP] B [SEP]`, fills in masked characters of both segments and
//! says whether B followed A in the text: L = L_MLM + L_NSP (`src/objectives/nsp.rs`).
//!
//!   cargo run --release --example bert
//!   cargo run --release --example bert -- --nsp false     (MLM alone, same pairs and budget)
//!
//! What happens:
//! 1. Each split is cut into documents (8 consecutive speeches) and sentences, and sentence
//!    pairs are built as BERT builds them (`src/data/pairs.rs`): half the time B is the text
//!    after A (IsNext), otherwise it starts somewhere in another document (NotNext).
//! 2. Each update draws 32 pairs, masks 15% of their characters and scores both tasks.
//! 3. Every 100 steps: the masked-character loss and accuracy, and the NSP loss and accuracy,
//!    on the fixed validation pairs (written to `metrics.csv` and `loss.svg`).
//! 4. At the end: a few held-out pairs with P(IsNext), the NSP accuracy beside a word- and
//!    bigram-overlap baseline, and the masked-character accuracy.
//!
//! The model is the mlm example's (same flags) with segment embeddings, a pooler and a
//! two-way classifier.

use microlm::cli::Flags;
use microlm::data::pairs::random_pair_batch;
use microlm::inspect::show_next_sentence;
use microlm::nn::TransformerConfig;
use microlm::objectives::nsp::overlap_baseline;
use microlm::objectives::Bert;
use microlm::recipe::{Recipe, PAIR_PASSES};
use microlm::Params;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        out: "runs/bert".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read(&mut flags, defaults)?;
    let head_transform = flags.arg("head-transform", false, "BERT's Linear-GELU-LN before the output")?;
    let use_nsp = flags.arg("nsp", true, "train next-sentence prediction beside the masked LM")?;
    if flags.help_or_finish("bert")? {
        return Ok(());
    }

    // Data: sentence pairs from each split; the model, with segment embeddings.
    let data = recipe.load_data()?;
    let (pairs, specials) = (recipe.sentence_pairs(&data)?, data.tokenizer.specials());
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
        use_nsp,
        &mut recipe.init_rng(),
    )?;

    // Train: masked LM and NSP on each batch of pairs; validation reports both.
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

    // What it learned: P(IsNext) on held-out pairs, then the accuracies beside the baseline
    // (fitted on the first 1/PAIR_PASSES of the training pairs, about one pass).
    show_next_sentence(&model, &params, &pairs.val, &val[0], &data.tokenizer, 4);
    let (mlm, nsp) = model.evaluate(&params, &val);
    let one_pass = &pairs.train[..pairs.train.len() / PAIR_PASSES];
    let baseline = overlap_baseline(one_pass, &pairs.val, |ids| data.tokenizer.decode(ids));
    println!(
        "\nheld-out NSP accuracy {:.4} on {} pairs (overlap baseline {baseline:.4}, chance 0.5); masked-character accuracy {:.4}",
        nsp.accuracy.unwrap_or(0.0),
        nsp.count,
        mlm.accuracy.unwrap_or(0.0)
    );
    Ok(())
}
