//! The data and settings of a recipe for the denoising objectives: short documents from each
//! split, the noise read from flags, the fixed validation examples, and the reconstruction
//! scores printed at the end.

use super::flags::{SHAPE_FLAGS, TRAINING_FLAGS};
use super::{memory_total, Footprint, Recipe, VALIDATION_SEED};
use crate::beam_search::Beam;
use crate::checkpoint::{check_compatible, Feeds};
use crate::cli::{check, Domain, Flags};
use crate::data::bart_noise::{BartNoise, Masking};
use crate::data::documents::line_documents;
use crate::data::span_corruption::SpanCorruption;
use crate::data::{Corpus, Document};
use crate::nn::TransformerConfig;
use crate::objectives::denoise::{teacher_forcing, Denoiser, Example, Seq2SeqBatch};
use crate::objectives::noise::NOISE_NAMES;
use crate::objectives::Noise;
use crate::params::Params;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The documents of each split.
pub struct DenoiseDocuments {
    /// The training split's documents, shortest first (for [`length_grouped_documents`]).
    pub train: Vec<Document>,
    /// The validation split's documents.
    pub val: Vec<Document>,
}

/// The settings of BART's noise, read by [`read_noise`] (refused under `--noise t5`).
pub const BART_FLAGS: &[&str] = &[
    "masking",
    "mask-ratio",
    "span-lambda",
    "permute",
    "rotate",
    "insert",
    "mask-random",
];

/// The settings of T5's span corruption, read by [`read_noise`] (refused under BART's noises).
pub const T5_FLAGS: &[&str] = &["noise-density", "mean-span"];

/// The noise from `--noise` (a name of [`NOISE_NAMES`], `bart` by default) and its settings'
/// flags, whose defaults are that noise's; a value out of range is refused naming its flag.
pub fn read_noise(flags: &mut Flags) -> Result<Noise, String> {
    let kind: String = flags.arg("noise", "bart".to_string(), &NOISE_NAMES.join(", "))?;
    let chosen = Noise::named(&kind)?;
    let (bart, t5) = match &chosen {
        Noise::Bart(n) => (n.clone(), SpanCorruption::default()),
        Noise::T5(n) => (BartNoise::default(), *n),
    };
    let (masking, lambda) = match bart.masking {
        Masking::Off => ("off", 3.0),
        Masking::Tokens => ("tokens", 3.0),
        Masking::Delete => ("delete", 3.0),
        Masking::Spans { lambda, .. } => ("spans", lambda),
        Masking::Words { lambda, .. } => ("words", lambda),
    };
    let masking: String = flags.arg(
        "masking",
        masking.to_string(),
        "BART: spans, words (whole-word spans), tokens, delete or off",
    )?;
    let (share, positive) = (Domain::between(0.0, 1.0), Domain::above(0.0));
    let p = flags.arg_in(
        "mask-ratio",
        bart.p,
        share,
        "BART: share of the body masked, deleted or infilled",
    )?;
    let lambda: f64 = flags.arg_in(
        "span-lambda",
        lambda,
        positive,
        "BART: Poisson mean of infilled span lengths (tokens; words with --masking words)",
    )?;
    let permute = flags.arg_in("permute", bart.permute, share, "BART: share of sentences shuffled")?;
    let rotate = flags.arg_in(
        "rotate",
        bart.rotate,
        share,
        "BART: probability of rotating the document",
    )?;
    let insert = flags.arg_in("insert", bart.insert, share, "BART: inserted masks per body token")?;
    let mask_random = flags.arg_in(
        "mask-random",
        bart.mask_random,
        share,
        "BART: share of masks that are random tokens",
    )?;
    let noise_density = flags.arg_in("noise-density", t5.noise_density, share, "T5: share of tokens dropped")?;
    let mean_span = flags.arg_in("mean-span", t5.mean_span, positive, "T5: mean length of a dropped span")?;
    // Each noise's flags are refused under the other (they would be ignored).
    match kind.as_str() {
        "t5" => flags.refuse_given(BART_FLAGS, "a BART setting; this run's --noise is t5")?,
        _ => flags.refuse_given(T5_FLAGS, &format!("a T5 setting; this run's --noise is {kind}"))?,
    }
    let masking = match masking.as_str() {
        "spans" => Masking::Spans {
            lambda,
            keep_length: false,
        },
        "words" => Masking::Words {
            lambda,
            keep_length: false,
        },
        "tokens" => Masking::Tokens,
        "delete" => Masking::Delete,
        "off" => Masking::Off,
        other => {
            return Err(format!(
                "--masking {other:?}: expected spans, words, tokens, delete or off"
            ))
        }
    };
    let noise = match chosen {
        Noise::Bart(_) => Noise::Bart(BartNoise {
            p,
            masking,
            mask_random,
            permute,
            insert,
            rotate,
        }),
        Noise::T5(_) => Noise::T5(SpanCorruption {
            noise_density,
            mean_span,
        }),
    };
    noise.validate().map_err(|e| format!("{e} (check the noise flags)"))?;
    Ok(noise)
}

impl Recipe {
    /// Cut each split into short documents (`data/documents.rs`, [`line_documents`]) that fit
    /// `--seq-len` once framed and corrupted by `noise`; says what it built. Error: a split
    /// with no document, or a `--seq-len` too short to hold one token of body.
    pub fn line_documents(&self, data: &Corpus, noise: &Noise) -> Result<DenoiseDocuments, String> {
        let insert = match noise {
            Noise::Bart(n) => n.insert,
            Noise::T5(_) => 0.0,
        };
        // The longest body n with BOS + n + ceil(insert n) inserted + EOS <= seq_len.
        let fits = |n: usize| n + (insert * n as f64).ceil() as usize + 2 <= self.seq_len;
        let max_tokens = (0..self.seq_len).rev().find(|&n| fits(n)).unwrap_or(0);
        if max_tokens == 0 {
            return Err(format!(
                "--seq-len {} is too short for BOS, one token and EOS under this noise",
                self.seq_len
            ));
        }
        let mut splits = Vec::new();
        for (name, ids) in [("training", &data.train), ("validation", &data.val)] {
            let docs = line_documents(&data.tokenizer.decode(ids), max_tokens, &data.tokenizer);
            if docs.is_empty() {
                return Err(format!("the {name} split holds no document (check --corpus)"));
            }
            let tokens: usize = docs
                .iter()
                .map(|d| d.sentences.iter().map(Vec::len).sum::<usize>())
                .sum();
            println!(
                "{name} split: {} documents of at most {max_tokens} tokens, {:.1} on average",
                docs.len(),
                tokens as f64 / docs.len() as f64
            );
            splits.push(docs);
        }
        let val = splits.pop().expect("two splits");
        let mut train = splits.pop().expect("two splits");
        train.sort_by_key(|d| d.sentences.iter().map(Vec::len).sum::<usize>()); // stable
        Ok(DenoiseDocuments { train, val })
    }

    /// The fixed validation examples: the first `eval_batches * batch` validation documents
    /// corrupted once with [`VALIDATION_SEED`], in document order, and their batches (formed
    /// after sorting them by length, so that little of each batch is padding).
    pub fn denoise_validation(&self, model: &Denoiser, val: &[Document]) -> (Vec<Example>, Vec<Seq2SeqBatch>) {
        let mut rng = StdRng::seed_from_u64(VALIDATION_SEED);
        let n = val.len().min(self.eval_batches * self.batch);
        let examples: Vec<Example> = val[..n].iter().map(|d| model.corrupt(d, &mut rng)).collect();
        let (start, pad) = (model.ids.noise.eos, model.ids.pad);
        let mut by_length: Vec<Example> = examples.clone(); // batched by length: less padding
        by_length.sort_by_key(|e| (e.source.len(), e.target.len()));
        let batches = by_length
            .chunks(self.batch)
            .map(|chunk| teacher_forcing(chunk, start, pad))
            .collect();
        (examples, batches)
    }
}

impl Recipe {
    /// The denoiser: a new one for `noise` (its weights drawn with `--seed`), or with `load` a
    /// trained checkpoint, which keeps its own noise. Before it is built or loaded: a `load`ed
    /// checkpoint must be a denoiser that reads this corpus's tokenizer and `--seq-len`
    /// positions ([`check_compatible`], the error naming `--load`, the file and both sides);
    /// and an update of the model must fit in memory ([`Recipe::check_denoiser_memory`]).
    pub fn denoiser(&self, data: &Corpus, noise: Noise, load: Option<&str>) -> Result<(Denoiser, Params), String> {
        let Some(path) = load else {
            let config = TransformerConfig {
                vocab_size: Denoiser::vocab_size(&data.tokenizer, &noise),
                ..self.model_config(data)?
            };
            self.check_denoiser_memory(&config, denoiser_parameters(&config))?;
            let mut params = Params::new();
            let model = Denoiser::new(&mut params, &config, noise, &data.tokenizer, &mut self.init_rng())?;
            return Ok((model, params));
        };
        let source = format!("--corpus {}, --tokenizer {}", self.corpus.display(), self.tokenizer);
        let feeds = Feeds {
            flag: "load",
            tokenizer: Some((&data.tokenizer, source)),
            positions: Some((self.seq_len, format!("--seq-len {}", self.seq_len))),
            objectives: &["denoise"],
        };
        check_compatible(Path::new(path), &feeds)
            .map_err(|e| format!("{e} (make it with: cargo run --release --example denoise)"))?;
        let (model, params, _) = Denoiser::load(Path::new(path))?;
        self.check_denoiser_memory(&model.model.config, params.num_elements() as f64)?;
        Ok((model, params))
    }

    /// Refuse a denoiser of `config` with `parameters` weights whose update (`--batch`
    /// documents of `--seq-len` positions through the encoder and the decoder) would not fit
    /// in this machine's memory: [`Footprint`] with twice `config.layers`, one stack each.
    pub fn check_denoiser_memory(&self, config: &TransformerConfig, parameters: f64) -> Result<(), String> {
        let footprint = Footprint {
            layers: 2.0 * config.layers as f64,
            ..Footprint::of_config(config, parameters, self.batch, self.seq_len, config.vocab_size)
        };
        let drivers = format!(
            "--batch {} x --seq-len {} x d_model {} x {} + {} layers, --heads {}",
            self.batch, self.seq_len, config.d_model, config.layers, config.layers, config.heads
        );
        footprint.check(memory_total(), &drivers)
    }

    /// This recipe with `tokens_per_step` set to `batch` times the mean source-plus-target
    /// length of `examples`, so that tokens/s counts what an update really reads.
    pub fn with_tokens_per_step(self, examples: &[Example]) -> Recipe {
        let total: usize = examples.iter().map(|e| e.source.len() + e.target.len()).sum();
        let mean = total as f64 / examples.len().max(1) as f64;
        println!("an update reads {mean:.1} tokens per document on average (source and target)");
        Recipe {
            tokens_per_step: Some((mean * self.batch as f64).round() as usize),
            ..self
        }
    }
}

/// A window of this many batches' worth of documents is what [`length_grouped_documents`]
/// draws one batch from.
pub const LENGTH_WINDOW_BATCHES: usize = 8;

/// `n` documents for one update, of similar lengths so that the padded batch wastes little:
/// from `sorted` (documents in order of length), a window of `n * LENGTH_WINDOW_BATCHES`
/// consecutive ones starting at a uniformly drawn place (wrapping around at the end), then `n`
/// drawn uniformly from the window, with replacement. Every document lies in equally many
/// windows, so each is drawn equally often on average; only the batch's mix of lengths changes.
/// (The same idea as "group by length" samplers; here each draw is independent of the others,
/// so a resumed run draws what an uninterrupted one would.)
pub fn length_grouped_documents<'a>(sorted: &'a [Document], n: usize, rng: &mut impl Rng) -> Vec<&'a Document> {
    let window = (n * LENGTH_WINDOW_BATCHES).clamp(1, sorted.len());
    let start = rng.random_range(0..sorted.len());
    (0..n)
        .map(|_| &sorted[(start + rng.random_range(0..window)) % sorted.len()])
        .collect()
}

/// The n of n-gram blocking for the example's character documents: the smallest n for which
/// fewer than 1% of the training documents (at `--seq-len` 64) hold some n characters twice
/// (0.88% at 10, 1.46% at 9; at `--seq-len` 128 it would be 13: NOTES.md §11.5), so the rule
/// forbids what a reference almost never does.
pub const NO_REPEAT_NGRAM: usize = 10;

/// The decodings the reconstructions are scored with: `--beam` widths, comma-separated (4 by
/// default; 1 is greedy), each with `--lenpen` α (1) and `--no-repeat-ngram` n
/// ([`NO_REPEAT_NGRAM`]; 0 turns blocking off). Named `beam k` or `greedy`.
pub fn read_decodings(flags: &mut Flags) -> Result<Vec<(String, Beam)>, String> {
    let widths: String = flags.arg(
        "beam",
        "4".to_string(),
        "beam widths, each at least 1, comma-separated; 1 is greedy",
    )?;
    let length_penalty: f64 = flags.arg_in(
        "lenpen",
        1.0,
        Domain::at_least(0.0),
        "beam: score = log P / length^lenpen",
    )?;
    let no_repeat_ngram: usize = flags.arg_in(
        "no-repeat-ngram",
        NO_REPEAT_NGRAM,
        Domain::at_least(0),
        "no n tokens written twice (0: off)",
    )?;
    let mut decodings = Vec::new();
    for w in widths.split(',') {
        let width: usize = w
            .trim()
            .parse()
            .map_err(|_| format!("--beam {widths:?}: {w:?} is not a whole number"))?;
        check(width >= 1, "beam", width, "widths must be at least 1")?;
        let beam = Beam {
            width,
            length_penalty,
            no_repeat_ngram,
        };
        let mut name = if width == 1 {
            "greedy".to_string()
        } else {
            format!("beam {width}")
        };
        if no_repeat_ngram > 0 {
            name += &format!(", no {no_repeat_ngram}-gram twice");
        }
        decodings.push((name, beam));
    }
    Ok(decodings)
}

/// About how many parameters a denoiser of `config` has, before it is built: per layer an
/// encoder layer (12 d^2 + 13 d, as [`Recipe::parameter_estimate`]) and a decoder layer (16 d^2 +
/// 19 d: self-attention, cross-attention, the feed-forward and three LayerNorms), the two final
/// LayerNorms (4 d), the output's bias (v), and the token tables: one v x d table tied
/// (`config.tie_embeddings`: the encoder's, read by both stacks and the output), three untied
/// (the encoder's, the decoder's and the output projection).
pub fn denoiser_parameters(config: &TransformerConfig) -> f64 {
    let (d, l, v) = (config.d_model as f64, config.layers as f64, config.vocab_size as f64);
    let tables = if config.tie_embeddings { 1.0 } else { 3.0 };
    l * (12.0 * d * d + 13.0 * d) + l * (16.0 * d * d + 19.0 * d) + 4.0 * d + tables * v * d + v
}

/// With `--load` (a trained denoiser, scored without training) the flags that would only shape
/// a training run are refused, naming the flag: the model's shape and initialisation
/// ([`SHAPE_FLAGS`]), the optimiser, schedule, seed and output ([`TRAINING_FLAGS`]), the noise
/// (the checkpoint keeps its own: `--noise`, [`BART_FLAGS`], [`T5_FLAGS`]) and `--twin`. Without `--load`, `--twin`
/// (every batch from update 1) refuses `--resume`, which starts later.
pub fn refuse_unused_denoise_flags(flags: &Flags, load: bool) -> Result<(), String> {
    if load {
        let unused = [SHAPE_FLAGS, TRAINING_FLAGS, &["noise"], BART_FLAGS, T5_FLAGS, &["twin"]].concat();
        let why = "unused with --load, which scores a trained checkpoint (its own shape and noise) without training";
        return flags.refuse_given(&unused, why);
    }
    if flags.is_given("twin") {
        flags.refuse_given(
            &["resume"],
            "--twin writes every batch from update 1; a resumed run starts later",
        )?;
    }
    Ok(())
}
