//! # 13. Fine-tuning: what pretraining buys, and where it stops paying
//!
//! Two downstream tasks with labels made from the corpus, each fine-tuned from the masked LM
//! and from scratch (`src/recipe/comparison.rs`):
//!
//! 1. **Acceptability** (`src/data/acceptability.rs`): a held-out line of Tiny Shakespeare, or
//!    the same line with the inner letters of three words shuffled ("fair and vrotuius")? The
//!    cue is spelling, which a character-level masked LM learns; a bag of characters cannot see
//!    it (both forms have the same characters).
//! 2. **Speaker attribution** (`src/data/speakers.rs`): which of the 10 most frequent speakers
//!    speaks a speech? The cue is topic words, which five minutes of character-level
//!    pretraining does not learn: the honest limit.
//!
//!   cargo run --release --example mlm                      (first: the pretrained encoder)
//!   cargo run --release --example finetune
//!
//! Compared under the same budget and seeds: (a) the pretrained encoder, fine-tuned; (b) the
//! same architecture from random initialisation, fine-tuned; (c) a linear probe (logistic
//! regression) on the frozen pretrained encoder, and on a random one; (d) encoders given with
//! `--bert`, `--simcse` or `--electra` (ELECTRA's discriminator); (e) no encoder, a logistic
//! regression on the bag of character pairs of the same labels. (b) has its own settings
//! (`--random-lr`, `--random-warmup`, `--random-updates`, `--random-patience`, and for an
//! extra, smaller row `--random-layers`, `--random-d-model`); `--arms` picks the settings to
//! run (`--arms ""`: only what needs no encoder). Fine-tuning starts its head
//! from the probe (LP-FT), then trains every weight at a lower learning rate than pretraining,
//! stops early on validation and scores test once (`src/recipe/finetune.rs`). Tables: mean ± sd over seeds; curves with error bars in
//! `runs/finetune/acceptability.svg` and `runs/finetune/speakers.svg`. Before its runs, the
//! acceptability task prints how far a corruption moves each encoder's pooled state (near 0:
//! the encoder cannot see it); each run prints its validation accuracies and training losses.

use microlm::checkpoint::{check_compatible, load_encoder, Feeds};
use microlm::cli::Flags;
use microlm::recipe::baselines::bag_of_characters_accuracy;
use microlm::recipe::comparison::{bigram_curve, compare, describe, print_corruption_shift, Encoders, Plan};
use microlm::recipe::finetune_flags::FinetuneFlags;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let f = FinetuneFlags::read(&mut flags)?;
    if flags.help_or_finish("finetune")? {
        return Ok(());
    }
    let text = std::fs::read_to_string(&f.corpus).map_err(|e| format!("{}: {e}", f.corpus.display()))?;
    let init = Feeds {
        flag: "init",
        objectives: &["mlm"],
        ..Feeds::default()
    };
    check_compatible(&f.init, &init).map_err(|e| format!("{e} (make it with: cargo run --release --example mlm)"))?;
    let (encoder, enc_params, tok) = load_encoder(&f.init, f.dropout)?;
    f.check_others(&tok, encoder.config.max_len)?; // before any run, not after (a)-(c)
    f.check_memory(&encoder.config, enc_params.num_elements())?;
    let others = f.load_others()?; // each checked for memory too
    let encoders = Encoders {
        pretrained: (&encoder, &enc_params),
        others: &others,
    };
    let max_len = encoder.config.max_len; // every text is cut to the encoder's positions
    let (mut config, mut random) = (f.config.clone(), f.random.clone());
    (config.max_len, random.max_len) = (max_len, max_len);
    let random_shape = f.random_config(&encoder.config)?; // (b)'s: the checkpoint's by default
    std::fs::create_dir_all(&f.out).map_err(|e| format!("{}: {e}", f.out.display()))?;

    for name in &f.tasks {
        let (task, counts, file) = f.task(name, &text)?;
        describe(&task);
        if name == "acceptability" {
            print_corruption_shift(&task, &tok, encoders)?; // what each encoder's states see
        }
        for e in task.train.iter().take(4) {
            println!("  example ({}): {}", task.names[e.class], e.text);
        }
        let plan = Plan {
            counts,
            seeds: f.seeds,
            pretrained: &config,
            random: &random,
            random_shape: &random_shape,
            arms: &f.arms,
        };
        let mut result = compare(&task, &tok, encoders, plan)?;
        let bag = bag_of_characters_accuracy(&task, &tok);
        result
            .baselines
            .push(("bag of characters (logistic regression, all labels)".into(), bag));
        result.curves.push(bigram_curve(&task, &result.counts, f.seeds));
        println!("\n{}\n{}\n", result.table(), result.summary());
        let path = f.out.join(file);
        std::fs::write(&path, result.svg()).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("learning curve: {}\n", path.display());
    }
    Ok(())
}
