//! Fine-tuning a [`Classifier`] on a [`TextTask`] (speaker attribution, acceptability): updates
//! over the labelled texts with early stopping on validation accuracy, then the test split
//! scored once, with the weights of the best evaluation. Per update, as the pretraining
//! trainer's: L, g = dL/dθ, clip, AdamW.
//!
//! - **The same budget for every run**: at most `updates` updates, whatever the number of
//!   labelled texts; a small training set is passed over many times. (Counting epochs
//!   instead gave 100 labels 4 updates an epoch, too few to leave the majority class.)
//! - The learning rate is constant (after an optional linear warmup) and lower than pretraining's (1e-4 against 1e-3; BERT's
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
use crate::cli::Domain;
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
    /// Learning rate, constant after the warmup.
    pub lr: f32,
    /// Updates over which the learning rate rises linearly from lr / warmup to lr (0: none).
    pub warmup: usize,
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
    /// The training loss L of every update, in order (the batch's mean cross-entropy before
    /// the update): ln K all along is an optimiser that never started, a loss falling to 0
    /// while validation stays put is memorising.
    pub losses: Vec<f32>,
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
    let (mut update, mut pass, mut losses) = (0, 0, Vec::new());
    'passes: loop {
        pass += 1; // one pass over the training texts, freshly shuffled
        let mut rng = pass_rng(config.seed, pass);
        let mut order: Vec<&LabelledText> = train.to_vec();
        order.shuffle(&mut rng);
        for (x, y) in batches(&order, tokenizer, config.batch, config.max_len) {
            let mut tape = Tape::new();
            let l = model.loss(&mut tape, params, &x, &y, config.frozen, &mut rng); // L
            losses.push(tape.scalar(l.mean));
            let mut grads = tape.backward(l.mean); // g = dL/dθ
            clip_grad_norm(&mut grads, 1.0);
            update += 1;
            adamw.lr = warmup_lr(config.lr, config.warmup, update);
            adamw.step(params, &grads); // θ = AdamW(θ, g)
            if update % config.eval_every == 0 || update == config.updates {
                let acc = model.accuracy(params, &val_batches);
                // progress: each evaluation's validation accuracy, and the mean training loss
                // of the updates since the previous one
                let since = &losses[(update - 1) / config.eval_every * config.eval_every..];
                print!(" {acc:.2} (L {:.3})", since.iter().sum::<f32>() / since.len() as f32);
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
        losses,
    }
}

/// The learning rate of update `update` (counted from 1): lr * min(1, update / warmup), a
/// linear rise over the first `warmup` updates; lr throughout when `warmup` is 0.
pub fn warmup_lr(lr: f32, warmup: usize, update: usize) -> f32 {
    lr * (update as f32 / warmup.max(1) as f32).min(1.0)
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
    /// Read `--lr`, `--warmup`, `--batch`, `--updates`, `--eval-every`, `--patience` and
    /// `--head-from-probe` (defaults 1e-4, 0, 32, 120, 20, 3, true) for encoders of `max_len`
    /// positions. Errors name the flag.
    pub fn read(flags: &mut crate::cli::Flags, max_len: usize) -> Result<FinetuneConfig, String> {
        let one = Domain::at_least(1);
        Ok(FinetuneConfig {
            lr: flags.arg_in("lr", 1e-4, Domain::above(0.0), "fine-tuning learning rate")?,
            warmup: flags.arg_in("warmup", 0, Domain::at_least(0), "updates of linear warmup")?,
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
