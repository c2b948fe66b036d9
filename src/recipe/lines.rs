//! The line data of a recipe for sentence-embedding objectives (SimCSE): distinct training
//! lines drawn into batches, and held-out lines paired with lightly corrupted copies.

use super::{memory_total, Footprint, Recipe, LOGIT_FLOATS, VALIDATION_SEED};
use crate::checkpoint::{check_compatible, Feeds};
use crate::cli::check;
use crate::data::documents::distinct_lines;
use crate::data::{Batch, Corpus};
use crate::nn::TransformerConfig;
use crate::objectives::sentence_embeddings::{corrupt_lightly, line_batch};
use crate::objectives::SimCse;
use crate::params::Params;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Held-out lines scored at most.
pub const HELD_OUT_LINES: usize = 1000;

/// Held-out lines and their lightly corrupted copies ([`corrupt_lightly`]).
pub struct LinePairs {
    /// The lines.
    pub lines: Vec<String>,
    /// Line i's copy.
    pub copies: Vec<String>,
}

impl LinePairs {
    /// The lines as `&str`.
    pub fn lines(&self) -> Vec<&str> {
        self.lines.iter().map(String::as_str).collect()
    }

    /// The copies as `&str`.
    pub fn copies(&self) -> Vec<&str> {
        self.copies.iter().map(String::as_str).collect()
    }
}

impl Recipe {
    /// The first [`HELD_OUT_LINES`] distinct validation lines of 20 characters or more, and
    /// their copies, `edit_rate` of their characters edited with [`VALIDATION_SEED`]. Errors:
    /// `--batch` below 2 (SimCSE's negatives are the batch's other lines), an `--edit-rate`
    /// outside [0, 1], or fewer than 2 held-out lines.
    pub fn line_pairs(&self, data: &Corpus, edit_rate: f64) -> Result<LinePairs, String> {
        check(
            self.batch >= 2,
            "batch",
            self.batch,
            "must be at least 2: the other lines are the negatives",
        )?;
        check(
            (0.0..=1.0).contains(&edit_rate),
            "edit-rate",
            edit_rate,
            "must be in [0, 1]",
        )?;
        let mut lines = distinct_lines(&data.tokenizer.decode(&data.val), 20);
        lines.truncate(HELD_OUT_LINES);
        if lines.len() < 2 {
            return Err("the validation split holds fewer than 2 lines of 20 characters (check --corpus)".into());
        }
        let mut rng = StdRng::seed_from_u64(VALIDATION_SEED);
        let copies = lines.iter().map(|l| corrupt_lightly(l, edit_rate, &mut rng)).collect();
        println!("{} held-out lines, each with a lightly corrupted copy", lines.len());
        Ok(LinePairs { lines, copies })
    }

    /// The distinct lines of 20 characters or more of the training split, SimCSE's training
    /// data. Error, before any training: fewer than 2 of them (each line's negatives are the
    /// batch's other lines), naming the corpus and what it lacks.
    pub fn training_lines(&self, data: &Corpus) -> Result<Vec<String>, String> {
        let lines = distinct_lines(&data.tokenizer.decode(&data.train), 20);
        if lines.len() < 2 {
            return Err(format!(
                "--corpus {}: its training part (the first 90%) holds {} distinct line(s) of 20 or \
                 more characters; SimCSE needs at least 2 (a line's negatives are the other lines \
                 of its batch)",
                self.corpus.display(),
                lines.len()
            ));
        }
        Ok(lines)
    }

    /// The pairs in batches of `batch` (a last batch of one line joins the one before).
    pub fn line_pair_batches(&self, pairs: &LinePairs, tokenizer: &Tokenizer) -> Vec<(Batch, Batch)> {
        let (lines, copies) = (pairs.lines(), pairs.copies());
        let mut starts: Vec<usize> = (0..lines.len()).step_by(self.batch).collect();
        if lines.len() - starts[starts.len() - 1] < 2 && starts.len() > 1 {
            starts.pop();
        }
        starts
            .iter()
            .enumerate()
            .map(|(k, &s)| {
                let e = starts.get(k + 1).copied().unwrap_or(lines.len());
                let x = line_batch(&lines[s..e], tokenizer, self.seq_len);
                (x, line_batch(&copies[s..e], tokenizer, self.seq_len))
            })
            .collect()
    }

    /// `batch` distinct lines of `lines`, drawn uniformly, as one padded batch.
    pub fn line_batch(&self, lines: &[String], tokenizer: &Tokenizer, rng: &mut impl Rng) -> Batch {
        let n = self.batch.min(lines.len());
        let picked: Vec<&str> = rand::seq::index::sample(rng, lines.len(), n)
            .into_iter()
            .map(|i| lines[i].as_str())
            .collect();
        line_batch(&picked, tokenizer, self.seq_len)
    }

    /// This recipe with `tokens_per_step` set to what an update reads: two passes over `batch`
    /// lines of the mean length of `lines` (plus `[CLS]`).
    pub fn with_line_tokens(self, lines: &[String]) -> Recipe {
        let chars: usize = lines.iter().map(|l| l.chars().count() + 1).sum();
        let mean = chars as f64 / lines.len().max(1) as f64;
        Recipe {
            tokens_per_step: Some((2.0 * mean * self.batch as f64).round() as usize),
            ..self
        }
    }

    /// SimCSE from the masked-LM checkpoint `init` ([`Recipe::simcse_from`]) or, without one,
    /// fresh at this recipe's shape and seed; either way refused if an update in chunks of
    /// `chunk` texts would not fit in this machine's memory ([`Recipe::check_simcse_memory`]).
    pub fn simcse(&self, data: &Corpus, init: Option<&Path>, chunk: usize) -> Result<(SimCse, Params), String> {
        match init {
            Some(path) => self.simcse_from(path, &data.tokenizer, chunk),
            None => {
                let mut params = Params::new();
                let model = SimCse::new(&mut params, &self.model_config(data)?, &mut self.init_rng())?;
                let parameters = params.num_elements() as f64;
                self.check_simcse_memory(&model.encoder.config, parameters, chunk, memory_total())?;
                Ok((model, params))
            }
        }
    }

    /// The texts one SimCSE update holds on a tape at once: both views of `--batch` lines in
    /// one pass (`chunk` 0), or under gradient caching one chunk of at most `chunk` texts of
    /// one view (`objectives/grad_cache.rs`).
    pub fn simcse_texts_held(&self, chunk: usize) -> usize {
        if chunk == 0 {
            2 * self.batch
        } else {
            chunk.min(self.batch)
        }
    }

    /// Refuse a SimCSE update of a model of `config` with `parameters` parameters, in chunks of
    /// `chunk` texts, that would need more than `total_bytes` ([`memory_total`]). It holds the
    /// tape of [`Recipe::simcse_texts_held`] texts of `--seq-len` positions ([`Footprint`]),
    /// and beside it what spans the whole batch: the embeddings h, h+ and their gradients
    /// (4 x batch x d_model floats) and InfoNCE's batch x batch similarities, counted as
    /// logits are ([`LOGIT_FLOATS`] each).
    pub fn check_simcse_memory(
        &self,
        config: &TransformerConfig,
        parameters: f64,
        chunk: usize,
        total_bytes: Option<f64>,
    ) -> Result<(), String> {
        let texts = self.simcse_texts_held(chunk);
        let footprint = Footprint::of_config(config, parameters, texts, self.seq_len, 0);
        let (b, d) = (self.batch as f64, config.d_model as f64);
        let whole_batch = 4.0 * (4.0 * b * d + LOGIT_FLOATS * b * b);
        let held = match chunk {
            0 => format!("2 views x --batch {}", self.batch),
            c => format!("--chunk {c} texts of --batch {}", self.batch),
        };
        let drivers = format!("{held} x --seq-len {}, d_model {}", self.seq_len, config.d_model);
        footprint.check_plus(whole_batch, total_bytes, &drivers)
    }

    /// SimCSE started from the masked-LM checkpoint at `path`, with this recipe's dropout; its
    /// model shape comes from the checkpoint (the shape flags are not used). Checked before it
    /// is loaded ([`check_compatible`]): a masked LM, with this corpus's `tokenizer`, reading
    /// `--seq-len` positions; then the memory of an update in chunks of `chunk` texts
    /// ([`Recipe::check_simcse_memory`]).
    pub fn simcse_from(&self, path: &Path, tokenizer: &Tokenizer, chunk: usize) -> Result<(SimCse, Params), String> {
        let source = format!("--corpus {}, --tokenizer {}", self.corpus.display(), self.tokenizer);
        let feeds = Feeds {
            flag: "init",
            tokenizer: Some((tokenizer, source)),
            positions: Some((self.seq_len, format!("--seq-len {}", self.seq_len))),
            objectives: &["mlm"],
        };
        check_compatible(path, &feeds)?;
        let (model, params, _) = SimCse::from_masked_lm(path, self.dropout, &mut self.init_rng())?;
        let parameters = params.num_elements() as f64;
        self.check_simcse_memory(&model.encoder.config, parameters, chunk, memory_total())?;
        println!("starting from the masked LM in {}", path.display());
        Ok((model, params))
    }
}
