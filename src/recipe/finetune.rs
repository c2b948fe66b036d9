//! Fine-tuning a [`Classifier`] on the speaker task: updates over the labelled speeches with
//! early stopping on validation accuracy, then the test split scored once, with the weights of
//! the best evaluation. Per update, as the pretraining trainer's: L, g = dL/dθ, clip, AdamW.
//!
//! - **The same budget for every run**: at most `updates` updates, whatever the number of
//!   labelled speeches; a small training set is passed over many times. (Counting epochs
//!   instead gave 100 labels 4 updates an epoch, too few to leave the majority class.)
//! - The learning rate is constant and lower than pretraining's (5e-4 against 1e-3; BERT's
//!   fine-tuning uses 2e-5 to 5e-5 against 1e-4). In a first, epoch-counted version (seed 0,
//!   every label), the pretrained encoder reached 0.169 test accuracy at 1e-4 and 0.208 at
//!   5e-4 (NOTES.md §11.8).
//! - Every pass over the training speeches shuffles them with a generator seeded by (seed,
//!   pass), so a run is the same every time.
//! - Early stopping: every `eval_every` updates the validation accuracy; the run stops when it
//!   has not improved for `patience` evaluations, and the best evaluation's weights are kept.

use super::{memory_total, Footprint};
use crate::checkpoint::{check_compatible, Feeds};
use crate::cli::Domain;
use crate::data::speakers::{speech_batch, SpeakerTask, Speech};
use crate::nn::{Encoder, TransformerConfig};
use crate::objectives::classify::Classifier;
use crate::optim::{clip_grad_norm, AdamW};
use crate::params::Params;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// How to fine-tune.
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneConfig {
    /// Constant learning rate.
    pub lr: f32,
    /// Speeches per update.
    pub batch: usize,
    /// Updates at most (the budget).
    pub updates: usize,
    /// Updates between validation evaluations.
    pub eval_every: usize,
    /// Stop after this many evaluations without a better validation accuracy.
    pub patience: usize,
    /// Tokens of each speech read (the encoder's positions).
    pub max_len: usize,
    /// Only the head learns (a linear probe).
    pub frozen: bool,
    /// Seeds the shuffles and dropout.
    pub seed: u64,
}

/// What a fine-tuning run reached.
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneResult {
    /// The number of updates behind the weights kept.
    pub best_update: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Test accuracy with its weights, measured once.
    pub test_accuracy: f64,
}

/// Batches of at most `batch` speeches, in order.
pub fn batches(
    speeches: &[&Speech],
    tokenizer: &Tokenizer,
    batch: usize,
    max_len: usize,
) -> Vec<(crate::data::Batch, Vec<usize>)> {
    speeches
        .chunks(batch)
        .map(|c| speech_batch(c, tokenizer, max_len))
        .collect()
}

/// Fine-tune `model` (weights in `params`, replaced by the best evaluation's) on `train`, stop early
/// on `val`, score `test` once.
pub fn finetune(
    model: &Classifier,
    params: &mut Params,
    tokenizer: &Tokenizer,
    train: &[&Speech],
    val: &[&Speech],
    test: &[&Speech],
    config: &FinetuneConfig,
) -> FinetuneResult {
    assert!(
        config.updates > 0 && config.eval_every > 0,
        "finetune: updates and eval_every must be at least 1"
    );
    let mut adamw = AdamW::new(params, config.lr);
    let val_batches = batches(val, tokenizer, 64, config.max_len);
    let (mut best, mut best_update, mut best_params) = (-1.0, 0, params.clone());
    let (mut update, mut pass) = (0, 0);
    'passes: loop {
        pass += 1; // one pass over the training speeches, freshly shuffled
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(pass));
        let mut order: Vec<&Speech> = train.to_vec();
        order.shuffle(&mut rng);
        for (x, y) in batches(&order, tokenizer, config.batch, config.max_len) {
            let mut tape = Tape::new();
            let l = model.loss(&mut tape, params, &x, &y, config.frozen, &mut rng); // L
            let mut grads = tape.backward(l.mean); // g = dL/dθ
            clip_grad_norm(&mut grads, 1.0);
            adamw.step(params, &grads); // θ = AdamW(θ, g)
            update += 1;
            if update % config.eval_every == 0 || update == config.updates {
                let acc = model.accuracy(params, &val_batches);
                print!(" {acc:.2}"); // progress: one validation accuracy per evaluation
                let _ = std::io::Write::flush(&mut std::io::stdout());
                if acc > best {
                    (best, best_update, best_params) = (acc, update, params.clone());
                } else if update - best_update >= config.patience * config.eval_every {
                    break 'passes;
                }
            }
            if update == config.updates {
                break 'passes;
            }
        }
    }
    *params = best_params;
    let test_accuracy = model.accuracy(params, &batches(test, tokenizer, 64, config.max_len));
    FinetuneResult {
        best_update,
        val_accuracy: best,
        test_accuracy,
    }
}

/// Where a fine-tuning run starts.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// From a pretrained encoder and its weights.
    Pretrained(&'a Encoder, &'a Params),
    /// From the same architecture, freshly initialised with the run's seed.
    Random(&'a TransformerConfig),
}

/// `n` training speeches drawn without replacement with `seed` (all of them if `n` is larger).
pub fn subset(train: &[Speech], n: usize, seed: u64) -> Vec<&Speech> {
    let mut all: Vec<&Speech> = train.iter().collect();
    all.shuffle(&mut StdRng::seed_from_u64(seed));
    all.truncate(n);
    all
}

/// One run: a fresh head (and, for [`Start::Random`], a fresh encoder) from `config.seed`, `n`
/// labelled training speeches, then [`finetune`].
pub fn run(
    start: Start,
    task: &SpeakerTask,
    tokenizer: &Tokenizer,
    n: usize,
    config: &FinetuneConfig,
) -> Result<FinetuneResult, String> {
    let rng = &mut StdRng::seed_from_u64(config.seed);
    let (encoder, mut params) = match start {
        Start::Pretrained(encoder, params) => (encoder.clone(), params.clone()),
        Start::Random(c) => {
            let mut params = Params::new();
            (Encoder::new(&mut params, "encoder", c, rng)?, params)
        }
    };
    let model = Classifier::new(&mut params, encoder, task.names.len(), rng);
    let train = subset(&task.train, n, config.seed);
    let (val, test): (Vec<&Speech>, Vec<&Speech>) = (task.val.iter().collect(), task.test.iter().collect());
    Ok(finetune(&model, &mut params, tokenizer, &train, &val, &test, config))
}

/// "100,300,1000,all" -> [100, 300, 1000, usize::MAX]. The error names the flag and the item.
pub fn parse_counts(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|item| match item.trim() {
            "all" => Ok(usize::MAX),
            n => match n.parse::<usize>() {
                Ok(k) if k > 0 => Ok(k),
                _ => Err(format!("--labels: '{n}' is not a positive count or 'all'")),
            },
        })
        .collect()
}

/// Print the classes with their counts per split, and the majority-class baseline.
pub fn describe(task: &SpeakerTask) {
    let (tr, va, te) = (
        task.class_counts(&task.train),
        task.class_counts(&task.val),
        task.class_counts(&task.test),
    );
    println!(
        "speaker attribution: {} classes; speeches train / validation / test",
        task.names.len()
    );
    for (c, name) in task.names.iter().enumerate() {
        println!("  {c}: {name:<18} {:>4} {:>4} {:>4}", tr[c], va[c], te[c]);
    }
    println!(
        "  total               {:>4} {:>4} {:>4}; majority class on test: {:.3}",
        task.train.len(),
        task.val.len(),
        task.test.len(),
        task.majority_baseline(&task.test)
    );
}

/// Print the learning-curve table (mean test accuracy per label count) and the other rows.
pub fn print_table(
    task: &SpeakerTask,
    counts: &[usize],
    curves: &[(String, Vec<(f64, f64)>)],
    rows: &[(String, f64)],
    seeds: u64,
) {
    let header: Vec<String> = counts.iter().map(|&n| n.min(task.train.len()).to_string()).collect();
    println!("\ntest accuracy, mean over {seeds} seeds, by labelled training speeches:");
    println!(
        "| start | {} |\n|---|{}",
        header.join(" | "),
        "---|".repeat(counts.len())
    );
    for (name, points) in curves {
        let cells: Vec<String> = points.iter().map(|p| format!("{:.3}", p.1)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    for (name, acc) in rows {
        println!("| {name} | {} {acc:.3} |", "| ".repeat(counts.len() - 1));
    }
    println!("| majority class | {:.3} |", task.majority_baseline(&task.test));
}

impl FinetuneConfig {
    /// Read `--lr`, `--batch`, `--updates`, `--eval-every` and `--patience` (defaults 5e-4,
    /// 32, 120, 20, 3) for encoders of `max_len` positions. Errors name the flag.
    pub fn read(flags: &mut crate::cli::Flags, max_len: usize) -> Result<FinetuneConfig, String> {
        let one = Domain::at_least(1);
        let c = FinetuneConfig {
            lr: flags.arg_in("lr", 5e-4, Domain::above(0.0), "fine-tuning learning rate")?,
            batch: flags.arg_in("batch", 32, one, "speeches per update")?,
            updates: flags.arg_in("updates", 120, one, "updates at most, whatever the number of labels")?,
            eval_every: flags.arg_in("eval-every", 20, one, "updates between validation evaluations")?,
            patience: flags.arg_in(
                "patience",
                3,
                one,
                "evaluations without a better validation accuracy before stopping",
            )?,
            max_len,
            frozen: false,
            seed: 0,
        };
        crate::cli::check(c.lr > 0.0 && c.lr.is_finite(), "lr", c.lr, "must be positive")?;
        crate::cli::check(c.batch > 0, "batch", c.batch, "must be at least 1")?;
        crate::cli::check(c.updates > 0, "updates", c.updates, "must be at least 1")?;
        crate::cli::check(c.eval_every > 0, "eval-every", c.eval_every, "must be at least 1")?;
        crate::cli::check(c.patience > 0, "patience", c.patience, "must be at least 1")?;
        Ok(c)
    }
}

/// The mean test accuracy of [`run`] over seeds 0..`seeds`, printing each run's validation
/// accuracy at each evaluation as it goes.
pub fn mean_test_accuracy(
    start: Start,
    task: &SpeakerTask,
    tokenizer: &Tokenizer,
    n: usize,
    config: &FinetuneConfig,
    seeds: u64,
) -> Result<f64, String> {
    let mut sum = 0.0;
    for seed in 0..seeds {
        print!(
            "    seed {seed}, validation accuracy every {} updates:",
            config.eval_every
        );
        let r = run(start, task, tokenizer, n, &FinetuneConfig { seed, ..config.clone() })?;
        println!(
            "; best after {} updates ({:.3}), test {:.3}",
            r.best_update, r.val_accuracy, r.test_accuracy
        );
        sum += r.test_accuracy;
    }
    Ok(sum / seeds.max(1) as f64)
}

/// The `finetune` example's settings, read from its flags.
#[derive(Clone, Debug)]
pub struct FinetuneFlags {
    /// The pretrained masked LM (`--init`).
    pub init: std::path::PathBuf,
    /// Further encoders to fine-tune as (d): (name, checkpoint) for `--bert` and `--simcse`.
    pub others: Vec<(&'static str, std::path::PathBuf)>,
    /// Labelled speeches per run (`--labels`, `usize::MAX` for all).
    pub counts: Vec<usize>,
    /// Seeds per setting (`--seeds`).
    pub seeds: u64,
    /// The linear probe's learning rate (`--probe-lr`).
    pub probe_lr: f32,
    /// The corpus (`--corpus`).
    pub corpus: std::path::PathBuf,
    /// Where the picture goes (`--out`).
    pub out: std::path::PathBuf,
    /// Fine-tuning settings (`--lr`, `--batch`, `--updates`, `--eval-every`, `--patience`).
    pub config: FinetuneConfig,
}

impl FinetuneFlags {
    /// Before any run: every checkpoint of (d) (`--bert`, `--simcse`) must come from its
    /// objective and read what the `--init` encoder reads (`tokenizer`, `max_len` positions),
    /// since the speeches are encoded once, with `--init`'s tokenizer ([`check_compatible`]);
    /// and an update of any of them must fit in memory.
    pub fn check_others(&self, tokenizer: &Tokenizer, max_len: usize) -> Result<(), String> {
        for (name, path) in &self.others {
            let (flag, objective) = match *name {
                "SimCSE" => ("simcse", "simcse"),
                _ => ("bert", "bert"),
            };
            let source = format!("--init {}", self.init.display());
            let feeds = Feeds {
                flag,
                tokenizer: Some((tokenizer, source.clone())),
                positions: Some((max_len, format!("the speeches are cut to --init's {max_len} positions"))),
                objectives: &[objective],
            };
            check_compatible(path, &feeds)?;
        }
        Ok(())
    }

    /// Refuse an encoder of `config` with `parameters` weights whose fine-tuning update (`--batch`
    /// speeches of `config.max_len` positions) would not fit in this machine's memory.
    pub fn check_memory(&self, config: &TransformerConfig, parameters: usize) -> Result<(), String> {
        let c = &self.config;
        let footprint = Footprint::of_config(config, parameters as f64, c.batch, config.max_len, 0);
        let drivers = format!(
            "--batch {} x {} positions x d_model {}",
            c.batch, config.max_len, config.d_model
        );
        footprint.check(memory_total(), &drivers)
    }

    /// Read every flag; errors name the flag.
    pub fn read(flags: &mut crate::cli::Flags) -> Result<FinetuneFlags, String> {
        let path = |s: String| std::path::PathBuf::from(s);
        let init = path(flags.arg("init", "runs/mlm/checkpoint.safetensors".into(), "pretrained masked LM")?);
        let mut others = Vec::new();
        for (name, flag) in [("MLM + NSP", "bert"), ("SimCSE", "simcse")] {
            let help = format!("a {flag} example checkpoint, fine-tuned as (d)");
            if let Some(p) = flags.arg_opt::<std::path::PathBuf>(flag, &help)? {
                others.push((name, p));
            }
        }
        let labels: String = flags.arg("labels", "100,300,1000,all".into(), "labelled speeches per run")?;
        Ok(FinetuneFlags {
            init,
            others,
            counts: parse_counts(&labels)?,
            seeds: flags.arg_in(
                "seeds",
                2,
                Domain::at_least(1),
                "seeds per setting (the mean is reported)",
            )?,
            probe_lr: flags.arg_in(
                "probe-lr",
                1e-2,
                Domain::above(0.0),
                "learning rate of the linear probe's head",
            )?,
            corpus: path(flags.arg("corpus", "data/tinyshakespeare.txt".into(), "corpus with NAME: lines")?),
            out: path(flags.arg("out", "runs/finetune".into(), "output directory")?),
            config: FinetuneConfig::read(flags, 128)?,
        })
    }
}
