//! What every training example shares, written once: the flags, the corpus and its tokenizer,
//! the model's shape, the optimizer, the validation set, and the call to the trainer. An
//! example reads a [`Recipe`] (with its own defaults), builds its objective's model, and hands
//! the model's `loss` and `evaluate` to [`Recipe::train`] (or, for a text corpus's windows, to
//! [`Recipe::train_on_windows`]); nothing else differs between objectives.
//!
//! ```no_run
//! use microlm::objectives::CausalLm;
//! use microlm::recipe::Recipe;
//! # fn main() -> Result<(), String> {
//! let mut flags = microlm::cli::Flags::from_env()?;
//! let recipe = Recipe::read(&mut flags, Recipe::default())?;
//! flags.finish()?;
//! let data = recipe.load_data()?;
//! let mut params = microlm::Params::new();
//! let model = CausalLm::new(&mut params, &recipe.model_config(&data)?, &mut recipe.init_rng())?;
//! recipe.train_on_windows(&data, &mut params, &model.metadata(),
//!     |tape, params, batch, rng| model.loss(tape, params, batch, rng),
//!     |params, val| model.evaluate(params, val))?;
//! # Ok(()) }
//! ```

pub mod baselines;
mod batch_log;
mod check;
pub mod comparison;
mod denoise;
pub mod denoise_scoring;
mod electra;
pub mod finetune;
pub mod finetune_flags;
mod flags;
pub mod linear_probe;
mod lines;
mod masked_lm;
mod memory;
mod pairs;
pub mod relatedness;
pub mod shapes;
mod windows;
pub use batch_log::BatchLog;
pub use denoise::{
    denoiser_parameters, length_grouped_documents, read_decodings, read_noise, refuse_unused_denoise_flags,
    DenoiseDocuments, BART_FLAGS, NO_REPEAT_NGRAM, T5_FLAGS,
};
pub use flags::{SHAPES_UNUSED, SHAPE_FLAGS, TRAINING_FLAGS};
pub use lines::{LinePairs, HELD_OUT_LINES};
pub use memory::{memory_total, Footprint, ACTIVATION_FLOATS, ATTENTION_FLOATS, LOGIT_FLOATS};
pub use pairs::{print_pair_results, read_pair_task, SentencePairs, PAIR_PASSES};
pub use shapes::{ShapesWorld, HELD_OUT_PAIRS};

use crate::data::{Batch, Corpus};
use crate::nn::{Activation, TransformerConfig};
use crate::optim::{AdamW, Decay, LrSchedule, Optimizer};
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::trainer::{train, Bound, Evaluation, TrainConfig, TrainReport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The validation set's seed: independent of `--seed`, so every run is scored on the same batches.
pub const VALIDATION_SEED: u64 = 1234;

/// The settings every training example shares. [`Recipe::default`] is the masked-LM example's;
/// other examples change what they need with struct update syntax.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// Updates.
    pub steps: usize,
    /// The text file to train on.
    pub corpus: PathBuf,
    /// "char" or "bpe".
    pub tokenizer: String,
    /// BPE vocabulary size (bytes, merges and the 5 specials).
    pub bpe_vocab: usize,
    /// Width.
    pub d_model: usize,
    /// Layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Tokens per sequence (also the positional table's length).
    pub seq_len: usize,
    /// Sequences per update.
    pub batch: usize,
    /// Dropout.
    pub dropout: f32,
    /// Tie the output projection to the token embedding.
    pub tie: bool,
    /// Multiply token embeddings by sqrt(d_model) (`--scale-embeddings`).
    pub scale_embeddings: bool,
    /// Initial standard deviation of the token embeddings (`--embedding-std`, a number or
    /// `auto`); `None` for the automatic choice of [`TransformerConfig::token_init_std`]. The
    /// default is BERT's 0.02: with the tied head it trains the masked LM far better than the
    /// automatic 1/sqrt(d_model) (NOTES.md §11.3).
    pub embedding_std: Option<f32>,
    /// A LayerNorm on the embedding sum (`--embedding-norm`).
    pub embedding_norm: bool,
    /// A factor on the sinusoidal positions (`--position-scale`).
    pub position_scale: f32,
    /// The feed-forward's activation: "gelu", "gelu_tanh" or "relu".
    pub activation: String,
    /// Peak learning rate.
    pub lr: f32,
    /// The cosine schedule's floor.
    pub min_lr: f32,
    /// Warmup updates.
    pub warmup: usize,
    /// AdamW's weight decay.
    pub weight_decay: f32,
    /// AdamW's beta2.
    pub beta2: f32,
    /// Decay the embedding matrices too (nanoGPT: every matrix), or exempt them (BERT-style).
    pub decay_embeddings: bool,
    /// Global gradient-norm clip.
    pub grad_clip: f32,
    /// Validate every this many updates.
    pub eval_every: usize,
    /// Validation batches.
    pub eval_batches: usize,
    /// Seeds the initialisation and every update's draws.
    pub seed: u64,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Tokens one update reads, for the tokens/s figures: `None` means batch x seq_len; an
    /// objective whose sequences vary in length (the denoisers') sets its measured mean.
    pub tokens_per_step: Option<usize>,
}

impl Default for Recipe {
    /// The masked-LM example's: a 4-layer, 128-wide encoder with an untied output projection
    /// and token vectors starting at std 0.02, 32 sequences of 128 characters, 1,300 AdamW
    /// updates at 1e-3 with 100 warmup steps and cosine decay to 1e-4 (NOTES.md §11.3 measures
    /// each choice).
    fn default() -> Recipe {
        Recipe {
            steps: 1300,
            corpus: PathBuf::from("data/tinyshakespeare.txt"),
            tokenizer: "char".into(),
            bpe_vocab: 512,
            d_model: 128,
            layers: 4,
            heads: 4,
            seq_len: 128,
            batch: 32,
            dropout: 0.0,
            tie: false,
            scale_embeddings: true,
            embedding_std: Some(0.02),
            embedding_norm: false,
            position_scale: 1.0,
            activation: "gelu".into(),
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            weight_decay: 0.01,
            beta2: 0.999,
            decay_embeddings: false,
            grad_clip: 1.0,
            eval_every: 100,
            eval_batches: 50,
            seed: 0,
            resume: None,
            out: PathBuf::from("runs/mlm"),
            tokens_per_step: None,
        }
    }
}

impl Recipe {
    /// nanoGPT's CPU recipe for Tiny Shakespeare characters (its README's "I only have a
    /// macbook" settings): context 64, batch 12, 2,000 updates, an untied output (nanoGPT ties;
    /// here untied is better by 0.05, NOTES.md §11.3), token vectors at std 0.02, AdamW with
    /// beta2 0.99 and weight decay 0.1 on every matrix, validation every 250 updates on 20
    /// batches, seed 1337.
    pub fn nanogpt_cpu() -> Recipe {
        Recipe {
            steps: 2000,
            seq_len: 64,
            batch: 12,
            tie: false,
            beta2: 0.99,
            weight_decay: 0.1,
            decay_embeddings: true,
            eval_every: 250,
            eval_batches: 20,
            seed: 1337,
            out: PathBuf::from("runs/clm"),
            ..Recipe::default()
        }
    }

    /// Read the corpus, build the tokenizer (BPE is trained on the training 90% only), split
    /// the ids 90/10, and say what was read.
    pub fn load_data(&self) -> Result<Corpus, String> {
        Corpus::load(&self.corpus, &self.tokenizer, self.bpe_vocab, self.seq_len)
    }

    /// The model's shape: the toy config at this width, depth and sequence length. Refused,
    /// before anything is built, if training it would not fit in this machine's memory
    /// ([`Recipe::check_memory`]).
    pub fn model_config(&self, data: &Corpus) -> Result<TransformerConfig, String> {
        self.check_memory(data.tokenizer.vocab_size(), memory_total())?;
        self.config_of(data.tokenizer.vocab_size(), self.seq_len, 0)
    }

    /// The toy config for `vocab` ids, `max_len` positions and `types` type ids, shaped by this
    /// recipe's flags (width, depth, heads, dropout, tying, the embedding's settings and the
    /// activation), checked; the error names the flags to look at.
    fn config_of(&self, vocab: usize, max_len: usize, types: usize) -> Result<TransformerConfig, String> {
        let config = TransformerConfig {
            layers: self.layers,
            heads: self.heads,
            max_len,
            dropout: self.dropout,
            tie_embeddings: self.tie,
            scale_embeddings: self.scale_embeddings,
            token_init_std: self.embedding_std,
            embedding_norm: self.embedding_norm,
            position_scale: self.position_scale,
            activation: Activation::parse(&self.activation).expect("checked by Recipe::check"),
            type_vocab_size: types,
            ..TransformerConfig::toy(vocab).with_d_model(self.d_model)
        };
        config.validate().map_err(|e| {
            format!("{e} (check --d-model, --heads, --layers, --dropout, --embedding-std, --position-scale)")
        })?;
        Ok(config)
    }

    /// The generator that initialises the model's parameters.
    pub fn init_rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.seed)
    }

    /// `eval_batches` validation batches drawn with [`VALIDATION_SEED`]: the same every run and
    /// at every evaluation. Refused before anything is drawn if the set's token ids alone (8
    /// bytes each, one window of `seq_len + 1` per sequence) would not fit in the memory.
    pub fn validation_set(&self, data: &Corpus) -> Result<Vec<Batch>, String> {
        let bytes = 8.0 * self.eval_batches as f64 * self.batch as f64 * (self.seq_len as f64 + 1.0);
        if let Some(total) = memory::memory_total().filter(|&total| bytes > total) {
            return Err(format!(
                "--eval-batches {} x --batch {} x --seq-len {} validation token ids need about \
                 {:.1} GB, more than this machine's {:.1} GB of memory: lower --eval-batches",
                self.eval_batches,
                self.batch,
                self.seq_len,
                bytes / 1e9,
                total / 1e9
            ));
        }
        let windows = data.val_windows()?;
        let mut rng = StdRng::seed_from_u64(VALIDATION_SEED);
        Ok((0..self.eval_batches)
            .map(|_| windows.batch(self.batch, &mut rng))
            .collect())
    }

    /// AdamW with this recipe's hyperparameters. Biases and LayerNorm parameters never decay;
    /// embedding matrices decay only with `decay_embeddings`.
    pub fn optimizer(&self, params: &Params) -> Optimizer {
        let mut adamw = AdamW::new(params, self.lr);
        adamw.beta2 = self.beta2;
        adamw.weight_decay = self.weight_decay;
        if self.decay_embeddings {
            let ids: Vec<_> = params.ids().collect();
            for id in ids {
                adamw.set_decay(id, params.value(id).ndim() >= 2); // every matrix
            }
        }
        Optimizer::AdamW(adamw)
    }

    /// The trainer's settings: the schedule (warmup, then cosine to `min_lr` at the last step),
    /// clipping, and where to write.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            steps: self.steps,
            schedule: LrSchedule {
                peak: self.lr,
                warmup: self.warmup,
                total: self.steps,
                floor: self.min_lr,
                decay: Decay::Cosine,
            },
            grad_clip: Some(self.grad_clip),
            log_every: 50,
            eval_every: self.eval_every,
            checkpoint_every: 500,
            seed: self.seed,
            out_dir: self.out.clone(),
            resume: self.resume.clone(),
            tokens_per_step: self.tokens_per_step.unwrap_or(self.batch * self.seq_len),
            verbose: true,
            bounds: Vec::new(),
        }
    }

    /// The data settings a resumed run must share (`data.*`): the corpus, the sequence length
    /// and the batch size. The tokenizer and the model are stored by their own metadata.
    pub fn data_settings(&self, data: &Corpus) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("data.corpus".to_string(), data.fingerprint.clone());
        m.insert("data.seq_len".to_string(), self.seq_len.to_string());
        m.insert("data.batch".to_string(), self.batch.to_string());
        m.extend(data.tokenizer.to_metadata());
        m
    }

    /// Train `params` with the objective's `loss` (one update's batch is drawn from the rng it
    /// is given) and `evaluate`, under this recipe's optimizer and schedule. `model_metadata` is
    /// the model's own (its config and objective settings); with it, the data settings and
    /// the trainer's, every checkpoint can be refused by a resume that changes any of them.
    pub fn train<L: Into<Var>>(
        &self,
        data: &Corpus,
        params: &mut Params,
        model_metadata: &BTreeMap<String, String>,
        loss: impl FnMut(&mut Tape, &Params, &mut StdRng) -> L,
        evaluate: impl FnMut(&Params) -> Evaluation,
    ) -> Result<TrainReport, String> {
        let mut metadata = model_metadata.clone();
        metadata.extend(self.data_settings(data));
        self.train_with(params, &metadata, Vec::new(), loss, evaluate)
    }

    /// [`Recipe::train`] for data that is not a text corpus: `metadata` already holds the
    /// model's and the data's settings, and `bounds` lists the parameters to clamp after each
    /// update (CLIP's temperature).
    pub fn train_with<L: Into<Var>>(
        &self,
        params: &mut Params,
        metadata: &BTreeMap<String, String>,
        bounds: Vec<Bound>,
        loss: impl FnMut(&mut Tape, &Params, &mut StdRng) -> L,
        evaluate: impl FnMut(&Params) -> Evaluation,
    ) -> Result<TrainReport, String> {
        let config = TrainConfig {
            bounds,
            ..self.train_config()
        };
        self.run(params, |params, optimizer| {
            train(&config, params, optimizer, metadata, loss, evaluate)
        })
    }

    /// The optimizer, a line on the model, `train` (the trainer's loop), and the summary.
    fn run(
        &self,
        params: &mut Params,
        train: impl FnOnce(&mut Params, &mut Optimizer) -> Result<TrainReport, String>,
    ) -> Result<TrainReport, String> {
        let mut optimizer = self.optimizer(params);
        println!(
            "model: d_model {}, {} heads, {} layers, {} parameters; batch {} ({} tokens), {} steps, {} threads",
            self.d_model,
            self.heads,
            self.layers,
            params.num_elements(),
            self.batch,
            self.train_config().tokens_per_step,
            self.steps,
            crate::threads::num_threads()
        );
        // The profile's ceiling: this machine's FMA peak, timed now (before training) and cached.
        let peak = crate::profile::enabled().then(crate::kernels::fma_peak::measured);
        let report = train(params, &mut optimizer)?;
        if let Some(peak) = peak {
            println!(
                "\nmeasured FMA peak: {:.1} GFLOP/s on one thread, {:.1} on {} at once",
                peak.one_thread, peak.all_threads, peak.threads
            );
            println!("{}", crate::profile::take().table(peak.all_threads));
        }
        if !report.interrupted {
            let e = report
                .last_eval
                .as_ref()
                .expect("the trainer validates after the last step");
            let acc = e.accuracy.map_or(String::new(), |a| format!(", accuracy {a:.4}"));
            let extra: String = e.extra.iter().map(|(name, v)| format!(", {name} {v:.4}")).collect();
            println!(
                "\nvalidation after {} steps: loss {:.4} nats{acc} ({} scored tokens){extra}",
                report.step, e.loss, e.count
            );
            println!(
                "training: {:.0} tokens/s, {:.0} s in all; metrics in {}/metrics.csv and {}/loss.svg",
                report.tokens_per_s,
                report.elapsed_s,
                self.out.display(),
                self.out.display()
            );
        }
        Ok(report)
    }
}
