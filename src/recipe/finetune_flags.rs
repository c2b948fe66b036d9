//! The `finetune` example's flags ([`FinetuneFlags`]): the encoders, the tasks, the label
//! counts and seeds, each start's fine-tuning settings, and the checks made before any run
//! (every encoder of (d) reads what `--init` reads, and fits in memory).

use super::finetune::{parse_counts, FinetuneConfig};
use super::{memory_total, Footprint};
use crate::checkpoint::{check_compatible, load_encoder, Feeds};
use crate::cli::Domain;
use crate::data::acceptability::{acceptability_task, Corruption};
use crate::data::labelled::TextTask;
use crate::data::speakers::speaker_task;
use crate::nn::{Encoder, TransformerConfig};
use crate::params::Params;
use crate::tokenizer::Tokenizer;

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
    /// (b)'s own settings, chosen on validation: `config` with `--random-lr`,
    /// `--random-warmup`, `--random-updates` and `--random-patience`.
    pub random: FinetuneConfig,
    /// (b)'s layers and d_model (`--random-layers`, `--random-d-model`), if not the
    /// pretrained encoder's: a smaller (b) is an extra row, not the headline's.
    pub random_shape: (Option<usize>, Option<usize>),
    /// The settings to run (`--arms`), by letter: "abcd" for all.
    pub arms: String,
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

    /// (b)'s architecture: `pretrained`'s (the checkpoint's), with `--random-layers` and
    /// `--random-d-model` (and d_ff = 4 d_model) where given. Errors name the flag.
    pub fn random_config(&self, pretrained: &TransformerConfig) -> Result<TransformerConfig, String> {
        let mut c = pretrained.clone();
        if let Some(layers) = self.random_shape.0 {
            c.layers = layers;
        }
        if let Some(d) = self.random_shape.1 {
            c = c.with_d_model(d);
            if !d.is_multiple_of(c.heads) {
                return Err(format!(
                    "--random-d-model {d}: not divisible by the checkpoint's {} heads",
                    c.heads
                ));
            }
        }
        c.validate()
            .map_err(|e| format!("--random-layers/--random-d-model: {e}"))?;
        Ok(c)
    }

    /// The task called `name` in `--tasks`, made from the corpus `text`, with its label counts
    /// and the file name of its learning curve.
    pub fn task(&self, name: &str, text: &str) -> Result<(TextTask, &[usize], &'static str), String> {
        Ok(match name {
            "acceptability" => (
                acceptability_task(text, &self.corruptions, self.shuffled_words, 0)?,
                &self.counts,
                "acceptability.svg",
            ),
            _ => (speaker_task(text, 10)?, &self.speaker_counts, "speakers.svg"),
        })
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
        let seeds: u64 = flags.arg_in(
            "seeds",
            3,
            Domain::at_least(1),
            "seeds per setting (mean and sd are reported)",
        )?;
        let arms: String = flags.arg("arms", "abcd".into(), "settings to run: a, b, c and/or d")?;
        if let Some(c) = arms.chars().find(|c| !"abcd".contains(*c)) {
            return Err(format!("--arms: '{c}' is not a setting (a, b, c, d)"));
        }
        let config = FinetuneConfig::read(flags, 128)?;
        let random = FinetuneConfig {
            lr: flags.arg_in("random-lr", 1e-4, Domain::above(0.0), "(b)'s learning rate")?,
            warmup: flags.arg_in(
                "random-warmup",
                config.warmup,
                Domain::at_least(0),
                "(b)'s warmup updates",
            )?,
            updates: flags.arg_in("random-updates", 120, one, "(b)'s updates at most")?,
            patience: flags.arg_in("random-patience", 3, one, "(b)'s evaluations without progress")?,
            ..config.clone()
        };
        let random_shape = (
            flags.arg_opt_in("random-layers", one, "(b)'s layers (default: the checkpoint's)")?,
            flags.arg_opt_in("random-d-model", one, "(b)'s d_model (default: the checkpoint's)")?,
        );
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
            config,
            random,
            random_shape,
            arms,
        })
    }
}
