//! The sentence-pair data of a recipe, for the objectives that read `[CLS] A [SEP] B [SEP]`:
//! plays, documents and sentences from each split, pairs built from them for NSP or SOP, and
//! the fixed validation batches.

use super::{Recipe, VALIDATION_SEED};
use crate::checkpoint::{check_compatible, Feeds};
use crate::cli::Flags;
use crate::data::pairs::{make_pairs, pair_batch, NspLabel, Pair, PairBatch, PairTask};
use crate::data::plays::play_documents;
use crate::data::Corpus;
use crate::nn::TransformerConfig;
use crate::objectives::pair_baselines::{boundary_baseline, majority_baseline, overlap_baseline};
use crate::objectives::{Bert, Evaluation};
use crate::params::Params;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;

/// Passes over the training documents, each with its own draws (BERT's `dupe_factor`, 10 there).
pub const PAIR_PASSES: usize = 5;

/// The training pairs to draw batches from, and the held-out pairs.
pub struct SentencePairs {
    /// [`PAIR_PASSES`] passes over the training split's documents.
    pub train: Vec<Pair>,
    /// One pass over the validation split's documents, drawn with [`VALIDATION_SEED`].
    pub val: Vec<Pair>,
}

impl Recipe {
    /// Cut each split's text into plays, documents and whole sentences (`data/plays.rs`) and
    /// build `task`'s pairs of at most `seq_len` tokens; says what it built. Errors: a split
    /// with a single play (NSP), or a `--seq-len` too short for `[CLS] A [SEP] B [SEP]`.
    pub fn sentence_pairs(&self, data: &Corpus, task: PairTask) -> Result<SentencePairs, String> {
        if self.seq_len < 5 {
            return Err(format!(
                "--seq-len {} cannot hold [CLS] A [SEP] B [SEP] with |A|, |B| >= 1 (needs at least 5)",
                self.seq_len
            ));
        }
        let mut splits = Vec::new();
        for (name, ids) in [("training", &data.train), ("validation", &data.val)] {
            let text = data.tokenizer.decode(ids);
            let (docs, plays) = play_documents(&text, (self.seq_len - 3) / 2, &data.tokenizer);
            let sentences: usize = docs.iter().map(|d| d.sentences.len()).sum();
            let n_plays = plays.last().map_or(0, |p| p + 1);
            println!(
                "{name} split: {n_plays} plays, {} documents, {sentences} sentences",
                docs.len()
            );
            splits.push((docs, plays));
        }
        let describe = |e: String| format!("{e} (check --seq-len and --corpus)");
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut train = Vec::new();
        let (docs, plays) = &splits[0];
        for _ in 0..PAIR_PASSES {
            train.extend(make_pairs(docs, plays, self.seq_len, task, &mut rng).map_err(describe)?);
        }
        let (docs, plays) = &splits[1];
        let mut val_rng = StdRng::seed_from_u64(VALIDATION_SEED);
        let val = make_pairs(docs, plays, self.seq_len, task, &mut val_rng).map_err(describe)?;
        println!(
            "{} {} pairs: {} for training ({PAIR_PASSES} passes), {} held out",
            train.len() + val.len(),
            task.name().to_uppercase(),
            train.len(),
            val.len()
        );
        Ok(SentencePairs { train, val })
    }

    /// The BERT model for `task` and its parameters: with `init`, the encoder and masked-LM head
    /// of that masked-LM checkpoint ([`Bert::from_masked_lm`]; its shape, not the shape flags'),
    /// checked first ([`check_compatible`]: a masked LM, with this corpus's tokenizer, reading
    /// `--seq-len` positions; the error names `--init`); without, fresh at this recipe's shape
    /// and seed. The pooler, the classifier and the segment embeddings are fresh either way.
    pub fn bert(
        &self,
        data: &Corpus,
        (task, use_pair_loss): (PairTask, bool),
        head_transform: bool,
        init: Option<&Path>,
    ) -> Result<(Bert, Params), String> {
        let Some(path) = init else {
            let config = TransformerConfig {
                type_vocab_size: 2,
                ..self.model_config(data)?
            };
            let mut params = Params::new();
            let (tokenizer, rng) = (&data.tokenizer, &mut self.init_rng());
            let model = Bert::new(
                &mut params,
                &config,
                tokenizer,
                head_transform,
                task,
                use_pair_loss,
                rng,
            )?;
            return Ok((model, params));
        };
        let source = format!("--corpus {}, --tokenizer {}", self.corpus.display(), self.tokenizer);
        let feeds = Feeds {
            flag: "init",
            tokenizer: Some((&data.tokenizer, source)),
            positions: Some((self.seq_len, format!("--seq-len {}", self.seq_len))),
            objectives: &["mlm"],
        };
        check_compatible(path, &feeds)?;
        let (model, params) = Bert::from_masked_lm(path, self.dropout, task, use_pair_loss, &mut self.init_rng())?;
        println!("starting from the masked LM in {}", path.display());
        Ok((model, params))
    }

    /// The validation pairs in batches of `batch`, the last one shorter.
    pub fn pair_batches(&self, pairs: &[Pair], data: &Corpus) -> Vec<PairBatch> {
        let specials = data.tokenizer.specials();
        let refs: Vec<&Pair> = pairs.iter().collect();
        refs.chunks(self.batch)
            .map(|chunk| pair_batch(chunk, self.seq_len, &specials))
            .collect()
    }
}

/// `--pair-task`: `nsp` or `sop` (its pairs, its loss beside the masked LM's), or `none` (the
/// masked LM alone on NSP's pairs: RoBERTa's comparison). Returns the pairs' task and whether
/// its loss is trained; the error names the flag.
pub fn read_pair_task(flags: &mut Flags) -> Result<(PairTask, bool), String> {
    let value = flags.arg_choice(
        "pair-task",
        "nsp",
        &["nsp", "sop", "none"],
        "the pair task (none: the masked LM alone, on NSP's pairs)",
    )?;
    Ok(match value.as_str() {
        "sop" => (PairTask::Sop, true),
        "none" => (PairTask::Nsp, false),
        _ => (PairTask::Nsp, true),
    })
}

/// What the pair head learned, beside what it has to beat, on the held-out pairs: its accuracy
/// (`None` when the pair loss was not trained), the boundary n-gram and word-overlap baselines
/// (fitted on the first of the [`PAIR_PASSES`] training passes) and the majority label; then
/// the masked-token loss and accuracy. Returns the best baseline.
pub fn print_pair_results(
    task: PairTask,
    pairs: &SentencePairs,
    accuracy: Option<f64>,
    mlm: &Evaluation,
    tokenizer: &Tokenizer,
) -> f64 {
    let one_pass = &pairs.train[..pairs.train.len() / PAIR_PASSES];
    let text = |ids: &[usize]| tokenizer.decode(ids);
    let boundary = boundary_baseline(one_pass, &pairs.val, text);
    let overlap = overlap_baseline(one_pass, &pairs.val, text);
    let majority = majority_baseline(one_pass, &pairs.val);
    let not_next = pairs.val.iter().filter(|p| p.label == NspLabel::NotNext).count();
    let name = task.name().to_uppercase();
    println!(
        "\nheld-out {name} pairs: {} ({:.0}% NotNext)",
        pairs.val.len(),
        100.0 * not_next as f64 / pairs.val.len().max(1) as f64
    );
    match accuracy {
        Some(a) => println!("  {:<28} accuracy {a:.4}", format!("{name} head (trained)")),
        None => println!("  {:<28} not trained (--pair-task none)", format!("{name} head")),
    }
    println!("  {:<28} accuracy {boundary:.4}", "boundary n-gram baseline");
    println!("  {:<28} accuracy {overlap:.4}", "word-overlap baseline");
    println!("  {:<28} accuracy {majority:.4}", "majority label");
    println!(
        "masked-token loss {:.4}, accuracy {:.4} on {} held-out masked tokens",
        mlm.loss,
        mlm.accuracy.unwrap_or(0.0),
        mlm.count
    );
    boundary.max(overlap).max(majority)
}
