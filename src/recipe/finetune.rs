//! Fine-tuning a [`Classifier`] on a [`TextTask`] (speaker attribution, acceptability): updates
//! over the labelled texts with early stopping on validation accuracy, then the test split
//! scored once, with the weights of the best evaluation. Per update, as the pretraining
//! trainer's: L, g = dL/dθ, clip, AdamW.
//!
//! - **The same budget for every run**: at most `updates` updates, whatever the number of
//!   labelled texts; a small training set is passed over many times. (Counting epochs
//!   instead gave 100 labels 4 updates an epoch, too few to leave the majority class.)
//! - The learning rate is constant and lower than pretraining's (1e-4 against 1e-3; BERT's
//!   fine-tuning uses 2e-5 to 5e-5 against 1e-4), and there is no dropout by default (the
//!   `mlm` example pretrains without). On the acceptability task, dropout 0.1 or lr 5e-4 sent
//!   the validation accuracy from the probe's 0.84 to 0.51-0.65 within 20 updates (NOTES.md
//!   §11.8).
//! - Every pass over the training texts shuffles them with a generator seeded by (seed,
//!   pass), so a run is the same every time.
//! - Early stopping: the validation accuracy before the first update and every `eval_every`
//!   updates; the run stops when it has not improved for `patience` evaluations, and the best
//!   evaluation's weights are kept (the starting weights, if nothing beat them).
//! - **LP-FT** (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and
//!   Underperform Out-of-Distribution"): with `head_from_probe`, the head starts from a linear
//!   probe fitted on the same labelled texts ([`head_from_probe`], in `linear_probe.rs`), not
//!   from random weights. With a random head and 100 labelled
//!   lines, the pretrained encoder stayed at the majority class on the acceptability task
//!   (lr 5e-4 or 2e-3, dropout 0.1; NOTES.md §11.8): the pooled states differ between the
//!   classes by little, and 120 updates did not find it.
//! - A **linear probe** (`recipe::linear_probe`) measures what the frozen states hold as they
//!   are, with a logistic regression fitted to convergence. (`frozen` in [`FinetuneConfig`]
//!   instead trains the head under fine-tuning's budget; a probe that stops early measures
//!   the optimiser as much as the states.)

use super::linear_probe::head_from_probe;
use super::{memory_total, Footprint};
use crate::checkpoint::{check_compatible, load_encoder, Feeds};
use crate::cli::Domain;
use crate::data::acceptability::Corruption;
use crate::data::labelled::{text_batch, LabelledText, TextTask};
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
    /// Texts per update.
    pub batch: usize,
    /// Updates at most (the budget).
    pub updates: usize,
    /// Updates between validation evaluations.
    pub eval_every: usize,
    /// Stop after this many evaluations without a better validation accuracy.
    pub patience: usize,
    /// Tokens of each text read (the encoder's positions).
    pub max_len: usize,
    /// Only the head learns (a linear probe).
    pub frozen: bool,
    /// Start the head from a linear probe fitted on the training texts (LP-FT), not from
    /// random weights.
    pub head_from_probe: bool,
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

/// Batches of at most `batch` texts, in order.
pub fn batches(
    texts: &[&LabelledText],
    tokenizer: &Tokenizer,
    batch: usize,
    max_len: usize,
) -> Vec<(crate::data::Batch, Vec<usize>)> {
    texts.chunks(batch).map(|c| text_batch(c, tokenizer, max_len)).collect()
}

/// Fine-tune `model` (weights in `params`, replaced by the best evaluation's) on `train`, stop early
/// on `val`, score `test` once.
pub fn finetune(
    model: &Classifier,
    params: &mut Params,
    tokenizer: &Tokenizer,
    train: &[&LabelledText],
    val: &[&LabelledText],
    test: &[&LabelledText],
    config: &FinetuneConfig,
) -> FinetuneResult {
    assert!(
        config.updates > 0 && config.eval_every > 0,
        "finetune: updates and eval_every must be at least 1"
    );
    let mut adamw = AdamW::new(params, config.lr);
    let val_batches = batches(val, tokenizer, 64, config.max_len);
    let start = model.accuracy(params, &val_batches); // update 0 is a candidate too
    print!(" {start:.2}");
    let (mut best, mut best_update, mut best_params) = (start, 0, params.clone());
    let (mut update, mut pass) = (0, 0);
    'passes: loop {
        pass += 1; // one pass over the training texts, freshly shuffled
        let mut rng = pass_rng(config.seed, pass);
        let mut order: Vec<&LabelledText> = train.to_vec();
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

/// `n` training texts drawn without replacement with `seed` (all of them if `n` is larger).
pub fn subset(train: &[LabelledText], n: usize, seed: u64) -> Vec<&LabelledText> {
    let mut all: Vec<&LabelledText> = train.iter().collect();
    all.shuffle(&mut StdRng::seed_from_u64(seed));
    all.truncate(n);
    all
}

/// The generator of pass `pass` of a run seeded with `seed`.
fn pass_rng(seed: u64, pass: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(pass))
}

/// A classifier with a fresh head (and, for [`Start::Random`], a fresh encoder) drawn from
/// `seed`, for `classes` classes.
pub fn classifier(start: Start, classes: usize, seed: u64) -> Result<(Classifier, Params), String> {
    let rng = &mut StdRng::seed_from_u64(seed);
    let (encoder, mut params) = match start {
        Start::Pretrained(encoder, params) => (encoder.clone(), params.clone()),
        Start::Random(c) => {
            let mut params = Params::new();
            (Encoder::new(&mut params, "encoder", c, rng)?, params)
        }
    };
    let model = Classifier::new(&mut params, encoder, classes, rng);
    Ok((model, params))
}

/// One run: [`classifier`] from `config.seed`, `n` labelled training texts, then [`finetune`].
pub fn run(
    start: Start,
    task: &TextTask,
    tokenizer: &Tokenizer,
    n: usize,
    config: &FinetuneConfig,
) -> Result<FinetuneResult, String> {
    let (model, mut params) = classifier(start, task.names.len(), config.seed)?;
    let train = subset(&task.train, n, config.seed);
    if config.head_from_probe {
        head_from_probe(&model, &mut params, &train, tokenizer, config.max_len);
        // LP-FT
    }
    let (val, test): (Vec<&LabelledText>, Vec<&LabelledText>) = (task.val.iter().collect(), task.test.iter().collect());
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

impl FinetuneConfig {
    /// Read `--lr`, `--batch`, `--updates`, `--eval-every`, `--patience` and
    /// `--head-from-probe` (defaults 1e-4, 32, 120, 20, 3, true) for encoders of `max_len`
    /// positions. Errors name the flag.
    pub fn read(flags: &mut crate::cli::Flags, max_len: usize) -> Result<FinetuneConfig, String> {
        let one = Domain::at_least(1);
        Ok(FinetuneConfig {
            lr: flags.arg_in("lr", 1e-4, Domain::above(0.0), "fine-tuning learning rate")?,
            batch: flags.arg_in("batch", 32, one, "labelled texts per update")?,
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
            head_from_probe: flags.arg("head-from-probe", true, "start the head from a linear probe (LP-FT)")?,
            seed: 0,
        })
    }
}

/// The `finetune` example's settings, read from its flags.
#[derive(Clone, Debug)]
pub struct FinetuneFlags {
    /// The pretrained masked LM (`--init`).
    pub init: std::path::PathBuf,
    /// Further encoders to fine-tune as (d): (name, checkpoint) for `--bert`, `--simcse` and
    /// `--electra` (the discriminator).
    pub others: Vec<(&'static str, std::path::PathBuf)>,
    /// The tasks to run (`--tasks`): "acceptability", "speakers", or both.
    pub tasks: Vec<String>,
    /// Labelled lines per run on the acceptability task (`--labels`, `usize::MAX` for all).
    pub counts: Vec<usize>,
    /// Labelled speeches per run on the speaker task (`--speaker-labels`).
    pub speaker_counts: Vec<usize>,
    /// Seeds per setting (`--seeds`).
    pub seeds: u64,
    /// The acceptability task's corruptions (`--corruptions`).
    pub corruptions: Vec<Corruption>,
    /// Words whose inner letters a shuffle corruption shuffles (`--shuffled-words`).
    pub shuffled_words: usize,
    /// Dropout while fine-tuning (`--dropout`; the `mlm` example pretrains without).
    pub dropout: f32,
    /// The corpus (`--corpus`).
    pub corpus: std::path::PathBuf,
    /// Where the pictures go (`--out`).
    pub out: std::path::PathBuf,
    /// Fine-tuning settings (`--lr`, `--batch`, `--updates`, `--eval-every`, `--patience`,
    /// `--head-from-probe`).
    pub config: FinetuneConfig,
}

/// The flag, and the objective, of a (d) encoder's name: "SimCSE" -> "simcse", "ELECTRA" ->
/// "electra", "MLM + NSP" -> "bert".
fn flag_of(name: &str) -> &'static str {
    match name {
        "SimCSE" => "simcse",
        "ELECTRA" => "electra",
        _ => "bert",
    }
}

impl FinetuneFlags {
    /// Before any run: every checkpoint of (d) (`--bert`, `--simcse`, `--electra`) must come from its
    /// objective and read what the `--init` encoder reads (`tokenizer`, `max_len` positions),
    /// since the texts are encoded once, with `--init`'s tokenizer ([`check_compatible`]).
    /// [`FinetuneFlags::load_others`] then checks each one's memory.
    pub fn check_others(&self, tokenizer: &Tokenizer, max_len: usize) -> Result<(), String> {
        for (name, path) in &self.others {
            let flag = flag_of(name); // its flag is its objective's name
            let source = format!("--init {}", self.init.display());
            let feeds = Feeds {
                flag,
                tokenizer: Some((tokenizer, source.clone())),
                positions: Some((max_len, format!("the texts are cut to --init's {max_len} positions"))),
                objectives: &[flag],
            };
            check_compatible(path, &feeds)?;
        }
        Ok(())
    }

    /// Load the encoders of (d) (after [`FinetuneFlags::check_others`]), each refused, naming
    /// its flag, if its fine-tuning update would not fit in memory
    /// ([`FinetuneFlags::check_memory`]): a wide `--bert` needs more than `--init`.
    pub fn load_others(&self) -> Result<Vec<(String, Encoder, Params)>, String> {
        let mut others = Vec::new();
        for (name, path) in &self.others {
            let (encoder, params, _) = load_encoder(path, self.dropout)?;
            let flag = flag_of(name);
            self.check_memory(&encoder.config, params.num_elements())
                .map_err(|e| format!("--{flag} {}: {e}", path.display()))?;
            others.push((name.to_string(), encoder, params));
        }
        Ok(others)
    }

    /// Refuse an encoder of `config` with `parameters` weights whose fine-tuning update (`--batch`
    /// texts of `config.max_len` positions) would not fit in this machine's memory.
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
        for (name, flag) in [("MLM + NSP", "bert"), ("SimCSE", "simcse"), ("ELECTRA", "electra")] {
            let help = format!("a {flag} example checkpoint, fine-tuned as (d)");
            if let Some(p) = flags.arg_opt::<std::path::PathBuf>(flag, &help)? {
                others.push((name, p));
            }
        }
        let tasks: String = flags.arg(
            "tasks",
            "acceptability,speakers".into(),
            "tasks to run, comma-separated",
        )?;
        let tasks: Vec<String> = tasks.split(',').map(|t| t.trim().to_string()).collect();
        if let Some(t) = tasks
            .iter()
            .find(|t| !["acceptability", "speakers"].contains(&t.as_str()))
        {
            return Err(format!("--tasks: '{t}' is not a task (acceptability, speakers)"));
        }
        if let Some((_, t)) = tasks.iter().enumerate().find(|(i, t)| tasks[..*i].contains(t)) {
            return Err(format!("--tasks: '{t}' is given twice (each task runs once)"));
        }
        let labels: String = flags.arg("labels", "50,100,300,1000,all".into(), "labelled lines per run")?;
        let speaker_labels: String = flags.arg("speaker-labels", "100,all".into(), "labelled speeches per run")?;
        let corruptions: String = flags.arg("corruptions", "shuffle".into(), "swap, replace and/or shuffle")?;
        let one = Domain::at_least(1);
        let shuffled_words: usize = flags.arg_in(
            "shuffled-words",
            3,
            Domain::at_least(1),
            "words a shuffle corruption scrambles",
        )?;
        let seeds = flags.arg_in("seeds", 3, one, "seeds per setting (mean and sd are reported)")?;
        Ok(FinetuneFlags {
            init,
            others,
            tasks,
            counts: parse_counts(&labels)?,
            speaker_counts: parse_counts(&speaker_labels).map_err(|e| e.replacen("--labels", "--speaker-labels", 1))?,
            seeds,
            corruptions: Corruption::parse_list(&corruptions)?,
            shuffled_words,
            dropout: flags.arg_in("dropout", 0.0, Domain::below(0.0, 1.0), "dropout while fine-tuning")?,
            corpus: path(flags.arg("corpus", "data/tinyshakespeare.txt".into(), "corpus with NAME: lines")?),
            out: path(flags.arg("out", "runs/finetune".into(), "output directory")?),
            config: FinetuneConfig::read(flags, 128)?,
        })
    }
}
