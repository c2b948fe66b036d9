//! The contrastive recipe's data and its relatedness task: what the positives are (dropout views
//! of a line, two spans of one speech, or a line and its misspelt copy), and how well an
//! embedding finds the second half of a held-out speech from its first half, beside bags of
//! words and of characters.

use super::{LinePairs, Recipe, VALIDATION_SEED};
use crate::data::documents::split_speeches;
use crate::data::speeches::{body_lines, span_pair, speech_halves, speeches_of_two_lines_or_more, SpeechHalves};
use crate::data::{Batch, Corpus};
use crate::nn::Encoder;
use crate::objectives::sentence_embeddings::{
    alignment_uniformity, choice_accuracy, corrupt_lightly, cosines, embed, line_batch, retrieval, Pooling, Retrieval,
};
use crate::objectives::tfidf::{characters, sparse_cosines, words, TfIdf};
use crate::objectives::SimCse;
use crate::params::Params;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use crate::trainer::{train_by_gradients, TrainReport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Held-out speeches scored at most.
pub const HELD_OUT_SPEECHES: usize = 1000;

/// The longest part (anchor, positive, or half of a held-out speech), in characters.
pub const PART_CHARS: usize = 100;

/// What makes a pair positive (`--positives`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positives {
    /// SimCSE: the same line twice, the views differing by dropout.
    Dropout,
    /// DeCLUTR: two spans of one speech that share no line.
    Span,
    /// A line and a copy with `--edit-rate` of its characters dropped or swapped.
    Edit,
}

impl Positives {
    /// The flag's words: "dropout", "span", "edit".
    pub const NAMES: [&'static str; 3] = ["dropout", "span", "edit"];

    /// Parse one of [`Positives::NAMES`].
    pub fn parse(name: &str) -> Result<Positives, String> {
        match name {
            "dropout" => Ok(Positives::Dropout),
            "span" => Ok(Positives::Span),
            "edit" => Ok(Positives::Edit),
            _ => Err(format!("--positives {name:?}: expected dropout, span or edit")),
        }
    }

    /// The default `--dropout`: SimCSE's 0.1 for dropout views (the only difference between
    /// them), none for spans and edits, whose pairs differ already (NOTES.md §11.6 measures it).
    pub fn default_dropout(self) -> f32 {
        if self == Positives::Dropout {
            0.1
        } else {
            0.0
        }
    }

    /// Error: dropout views without dropout, two identical passes with nothing to learn.
    pub fn check_dropout(self, dropout: f32) -> Result<(), String> {
        if self == Positives::Dropout && dropout <= 0.0 {
            return Err(format!(
                "--dropout {dropout} with --positives dropout: the two views would be identical; \
                 give a dropout above 0 (SimCSE's is 0.1)"
            ));
        }
        Ok(())
    }
}

/// The training side of a contrastive run: what each update draws its pairs from.
pub enum PairSource {
    /// Distinct lines (dropout views, or edited copies at this rate).
    Lines(Vec<String>, Option<f64>),
    /// Speeches of 2 or more lines, as their body lines.
    Speeches(Vec<Vec<String>>),
}

impl Recipe {
    /// The halves of the first [`HELD_OUT_SPEECHES`] held-out speeches of 2 or more lines.
    /// Error: fewer than 2 such speeches in the validation split.
    pub fn speech_halves(&self, data: &Corpus) -> Result<SpeechHalves, String> {
        let halves = speech_halves(&data.tokenizer.decode(&data.val), PART_CHARS, HELD_OUT_SPEECHES);
        if halves.first.len() < 2 {
            return Err(format!(
                "--corpus {}: its validation part holds {} speech(es) of 2 or more lines (after a \
                 `NAME:` line, between blank lines); the relatedness task needs at least 2",
                self.corpus.display(),
                halves.first.len()
            ));
        }
        println!(
            "{} held-out speeches, each cut into a first and a second half",
            halves.first.len()
        );
        Ok(halves)
    }

    /// What updates draw from for `positives`, from the training split only. Errors: fewer
    /// than 2 lines or speeches to draw from.
    pub fn pair_source(&self, data: &Corpus, positives: Positives, edit_rate: f64) -> Result<PairSource, String> {
        Ok(match positives {
            Positives::Dropout => PairSource::Lines(self.training_lines(data)?, None),
            Positives::Edit => PairSource::Lines(self.training_lines(data)?, Some(edit_rate)),
            Positives::Span => {
                let speeches = speeches_of_two_lines_or_more(&data.tokenizer.decode(&data.train));
                if speeches.len() < 2 {
                    return Err(format!(
                        "--corpus {}: its training part holds {} speech(es) of 2 or more lines; \
                         span positives need at least 2",
                        self.corpus.display(),
                        speeches.len()
                    ));
                }
                PairSource::Speeches(speeches)
            }
        })
    }

    /// One update's batches (x, x+): `batch` distinct lines or speeches drawn uniformly, and
    /// their positives (x itself for dropout views).
    pub fn positive_pair(&self, source: &PairSource, tokenizer: &Tokenizer, rng: &mut impl Rng) -> (Batch, Batch) {
        let (x, x_plus): (Vec<String>, Vec<String>) = match source {
            PairSource::Lines(lines, edits) => {
                let picked = rand::seq::index::sample(rng, lines.len(), self.batch.min(lines.len()));
                let x: Vec<String> = picked.into_iter().map(|i| lines[i].clone()).collect();
                let x_plus = match edits {
                    Some(rate) => x.iter().map(|l| corrupt_lightly(l, *rate, rng)).collect(),
                    None => x.clone(),
                };
                (x, x_plus)
            }
            PairSource::Speeches(speeches) => {
                let picked = rand::seq::index::sample(rng, speeches.len(), self.batch.min(speeches.len()));
                picked
                    .into_iter()
                    .map(|i| span_pair(&speeches[i], PART_CHARS, rng))
                    .unzip()
            }
        };
        (
            line_batch(&as_str(&x), tokenizer, self.seq_len),
            line_batch(&as_str(&x_plus), tokenizer, self.seq_len),
        )
    }

    /// This recipe with `tokens_per_step` set to what an update reads, the mean of 20 draws.
    pub fn with_positive_tokens(self, source: &PairSource, tokenizer: &Tokenizer) -> Recipe {
        let rng = &mut StdRng::seed_from_u64(VALIDATION_SEED);
        let real = |b: &Batch| (0..b.batch).map(|i| b.length(i)).sum::<usize>();
        let total: usize = (0..20)
            .map(|_| {
                let (x, x_plus) = self.positive_pair(source, tokenizer, rng);
                real(&x) + real(&x_plus)
            })
            .sum();
        Recipe {
            tokens_per_step: Some(total / 20),
            ..self
        }
    }
}

impl Recipe {
    /// Train `model` contrastively, validating on batches of `halves` (first halves against
    /// second halves): each update draws `--batch` pairs from `source` and differentiates
    /// InfoNCE over them with gradient caching in chunks of `chunk` texts
    /// (`objectives/grad_cache.rs`), or in one pass over the whole batch when `chunk` is 0.
    pub fn train_contrastive(
        &self,
        data: &Corpus,
        params: &mut Params,
        model: &SimCse,
        source: &PairSource,
        halves: &SpeechHalves,
        chunk: usize,
    ) -> Result<TrainReport, String> {
        let batches = self.line_pair_batches(&halves_as_pairs(halves), &data.tokenizer);
        let recipe = self.clone().with_positive_tokens(source, &data.tokenizer);
        let mut metadata = model.metadata();
        metadata.extend(self.data_settings(data));
        let gradients = |params: &Params, rng: &mut StdRng| {
            let (x, x_plus) = recipe.positive_pair(source, &data.tokenizer, rng);
            if chunk > 0 {
                return model.loss_and_gradients_in_chunks(params, &x, &x_plus, chunk, rng);
            }
            let mut tape = Tape::new();
            let l = model.loss(&mut tape, params, &x, &x_plus, rng)?.mean;
            Ok((tape.scalar(l), tape.backward(l)))
        };
        let config = recipe.train_config();
        recipe.run(params, |params, optimizer| {
            train_by_gradients(&config, params, optimizer, &metadata, gradients, |params| {
                model.validation(params, &batches)
            })
        })
    }
}

/// One embedding to compare: its name, the encoder and parameters, and how it pools.
pub type EmbeddingRow<'a> = (String, &'a Encoder, &'a Params, Pooling);

/// The rows of the tables, two per (name, encoder, parameters): the name with `", mean-pooled"`
/// and mean pooling, then with `", [CLS]"` and `[CLS]` pooling.
pub fn pooled_rows<'a>(
    encoders: &[(&str, &'a Encoder, &'a Params)],
) -> Vec<(String, &'a Encoder, &'a Params, Pooling)> {
    encoders
        .iter()
        .flat_map(|&(e, encoder, params)| {
            [
                (format!("{e}, mean-pooled"), encoder, params, Pooling::Mean),
                (format!("{e}, [CLS]"), encoder, params, Pooling::Cls),
            ]
        })
        .collect()
}

/// The halves as (query, candidate) pairs, for validation batches.
pub fn halves_as_pairs(halves: &SpeechHalves) -> LinePairs {
    LinePairs {
        lines: halves.first.clone(),
        copies: halves.second.clone(),
    }
}

/// Candidates of the multiple-choice column: the right second half and 3 others.
pub const CHOICES: usize = 4;

/// One row of the relatedness table.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatednessRow {
    /// The embedding's name.
    pub name: String,
    /// Of each first half with its own second half.
    pub alignment: f64,
    /// Of the first halves.
    pub uniformity: f64,
    /// Top-1, top-5 and mean rank among all second halves.
    pub retrieval: Retrieval,
    /// Expected accuracy of a [`CHOICES`]-way choice ([`choice_accuracy`]).
    pub choice: f64,
}

fn row(name: &str, pairs: &[Vec<f32>], queries: &[Vec<f32>]) -> RelatednessRow {
    let (alignment, uniformity) = alignment_uniformity(pairs, queries);
    RelatednessRow {
        name: name.to_string(),
        alignment,
        uniformity,
        retrieval: retrieval(pairs),
        choice: choice_accuracy(pairs, CHOICES),
    }
}

/// The bag-of-words and bag-of-characters rows: TF-IDF fitted on `reference` (the training
/// speeches), queries the first halves, candidates the second halves.
pub fn bag_rows(halves: &SpeechHalves, reference: &[&str]) -> Vec<RelatednessRow> {
    let texts: Vec<&str> = halves.first.iter().chain(&halves.second).map(String::as_str).collect();
    let n = halves.first.len();
    [
        ("bag of words, TF-IDF", words as fn(&str) -> Vec<String>),
        ("bag of characters, TF-IDF", characters),
    ]
    .into_iter()
    .map(|(name, bag)| {
        let f = TfIdf::fit(reference, bag).vectors(&texts); // one call: unseen terms agree
        let (first, second) = f.split_at(n);
        row(name, &sparse_cosines(first, second), &sparse_cosines(first, first))
    })
    .collect()
}

/// Score every encoder row (name, encoder, parameters, pooling) and the two bags (TF-IDF fitted
/// on the training split's speeches) on `halves`, print the table, and return it, bags first.
pub fn relatedness_table(rows: &[EmbeddingRow], halves: &SpeechHalves, data: &Corpus) -> Vec<RelatednessRow> {
    let train = data.tokenizer.decode(&data.train);
    let reference: Vec<String> = split_speeches(&train)
        .into_iter()
        .map(|s| body_lines(s).join("\n"))
        .collect();
    let mut table = bag_rows(halves, &reference.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, encoder, params, pooling) in rows {
        let f = embed(encoder, params, &data.tokenizer, &as_str(&halves.first), *pooling);
        let g = embed(encoder, params, &data.tokenizer, &as_str(&halves.second), *pooling);
        table.push(row(name, &cosines(&f, &g), &cosines(&f, &f)));
    }
    println!(
        "\nrelatedness: the second half of a held-out speech from its first half, among all {} \
         (top-k, mean rank) or among {CHOICES} (choice)\n{:<34} {:>9} {:>10} {:>6} {:>6} {:>9} {:>7}",
        halves.first.len(),
        "embedding",
        "alignment",
        "uniformity",
        "top-1",
        "top-5",
        "mean rank",
        "choice"
    );
    for r in &table {
        let RelatednessRow {
            name,
            alignment: a,
            uniformity: u,
            retrieval: t,
            choice,
        } = r;
        println!(
            "{name:<34} {a:>9.4} {u:>10.4} {:>6.3} {:>6.3} {:>9.1} {choice:>7.3}",
            t.top1, t.top5, t.mean_rank
        );
    }
    println!(
        "(alignment: lower is closer; uniformity: lower is more spread out; tied bag scores count at their \
         expected rank; choice: chance is {:.3})",
        1.0 / CHOICES as f64
    );
    table
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
