//! # 15. Data biases are learned
//!
//! Two masked LMs trained alike on twin generated corpora (`src/data/bias_corpus.rs`) that
//! differ in one planted skew: in the skewed one, sentences about seven occupations say "mr"
//! 80% of the time and about seven others 20%; in the balanced one, 50% for all.
//!
//!   cargo run --release --example bias       # about 4 minutes on two cores
//!
//! It writes `runs/bias/{skewed,balanced}.txt` and trains the masked LM of `04_mlm.rs` on each,
//! smaller (d_model 64, 2 layers, 0.1M parameters; 64 characters per sequence) and longer:
//! 5,000 updates at lr 3e-3. One letter in 30 depends on the occupation, so the association is
//! learned last (the 0.8M model had barely begun on it after 2,000 updates). Then it probes
//! each model with held-out sentences, never in either corpus, such as
//! "yesterday i saw the nurse, m[MASK] lee, by the station.".
//!
//! **What is measured**: at the masked second letter of the title, P("r") / (P("r") + P("s")),
//! the model's P(mr) normalised over {mr, ms}, averaged over 3 sentences x 6 surnames per
//! occupation. (Why a title and not "he"/"she": the corpus's docs.) Targets: the skewed model
//! within 0.15 of the planted 0.8 or 0.2, the balanced one within 0.15 of 0.5. What the toy
//! does and does not show is printed at the end ([`bias_corpus::WHAT_IT_SHOWS`]).

use microlm::cli::{check, Domain, Flags};
use microlm::data::bias_corpus::{self, Occupation};
use microlm::data::Batch;
use microlm::recipe::Recipe;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        steps: 5000,
        d_model: 64,
        layers: 2,
        seq_len: 64,
        lr: 3e-3,
        warmup: 50,
        eval_every: 500,
        eval_batches: 10,
        out: "runs/bias".into(),
        ..Recipe::default()
    };
    // It writes its own corpora, and each run starts anew: no --corpus, no --resume.
    let recipe = Recipe::read_without(&mut flags, defaults, &["corpus", "resume"])?;
    let sentences = flags.arg_in(
        "sentences",
        bias_corpus::DEFAULT_SENTENCES,
        Domain::at_least(1),
        "sentences per corpus",
    )?;
    let seed: u64 = flags.arg_in("corpus-seed", 16, Domain::seeds(), "seeds the generated corpora")?;
    if flags.help_or_finish("bias")? {
        return Ok(());
    }
    let why = "must be at least 64: the probes read 64 characters";
    check(recipe.seq_len >= 64, "seq-len", recipe.seq_len, why)?;
    std::fs::create_dir_all(&recipe.out).map_err(|e| format!("{}: {e}", recipe.out.display()))?;

    let skewed = bias_corpus::skewed(sentences, seed);
    let balanced = bias_corpus::balanced(sentences, seed);
    let mut measured = Vec::new();
    for (name, corpus) in [("skewed", &skewed), ("balanced", &balanced)] {
        let path = recipe.out.join(format!("{name}.txt"));
        std::fs::write(&path, &corpus.text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("\n== the {name} corpus, {}", path.display());
        let mut r = recipe.clone();
        (r.corpus, r.out) = (path, recipe.out.join(name));
        match train_and_probe(&r, &corpus.occupations)? {
            Some(p_mr) => measured.push(p_mr),
            None => return Ok(()), // Ctrl-C
        }
    }
    let table = bias_corpus::table(&skewed.occupations, &measured[0], &measured[1]);
    let shows = bias_corpus::WHAT_IT_SHOWS;
    println!("\nP(mr | occupation) on held-out sentences, normalised over {{mr, ms}}:\n{table}\n\n{shows}");
    Ok(())
}

/// Train the masked LM as `04_mlm.rs` does, then measure its P(mr) for each occupation;
/// `None` if interrupted.
fn train_and_probe(recipe: &Recipe, occupations: &[Occupation]) -> Result<Option<Vec<f64>>, String> {
    let data = recipe.load_data()?;
    let (model, params, report) = recipe.train_masked_lm(&data, &data.train_windows()?, Default::default())?;
    let probabilities = |x: &Batch, at: usize| model.probabilities(&params, x, &[at]);
    Ok((!report.interrupted).then(|| bias_corpus::measure(&data.tokenizer, occupations, probabilities)))
}
