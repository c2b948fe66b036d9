//! The sentence-pair data of a recipe, for the objectives that read `[CLS] A [SEP] B [SEP]`:
//! documents and sentences from each split, pairs built from them, and the fixed validation
//! batches.

use super::{Recipe, VALIDATION_SEED};
use crate::data::documents::{tokenize_documents, SPEECHES_PER_DOCUMENT};
use crate::data::pairs::{make_pairs, pair_batch, Pair, PairBatch};
use crate::data::Corpus;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Passes over the training documents, each with its own draws (BERT's `dupe_factor`, 10 there):
/// 5 passes give about 45,000 pairs on Tiny Shakespeare, more than the 41,600 a default run reads.
pub const PAIR_PASSES: usize = 5;

/// The training pairs to draw batches from, and the held-out pairs.
pub struct SentencePairs {
    /// [`PAIR_PASSES`] passes over the training split's documents.
    pub train: Vec<Pair>,
    /// One pass over the validation split's documents, drawn with [`VALIDATION_SEED`].
    pub val: Vec<Pair>,
}

impl Recipe {
    /// Cut each split's text into documents and sentences (`data/documents.rs`) and build pairs
    /// of at most `seq_len` tokens; says what it built. Errors: a split with fewer than two
    /// documents, or a `--seq-len` too short for `[CLS] A [SEP] B [SEP]`.
    pub fn sentence_pairs(&self, data: &Corpus) -> Result<SentencePairs, String> {
        let mut splits = Vec::new();
        for (name, ids) in [("training", &data.train), ("validation", &data.val)] {
            let text = data.tokenizer.decode(ids);
            let docs = tokenize_documents(&text, SPEECHES_PER_DOCUMENT, &data.tokenizer);
            let sentences: usize = docs.iter().map(|d| d.sentences.len()).sum();
            println!("{name} split: {} documents, {sentences} sentences", docs.len());
            splits.push(docs);
        }
        let describe = |e: String| format!("{e} (check --seq-len and --corpus)");
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut train = Vec::new();
        for _ in 0..PAIR_PASSES {
            train.extend(make_pairs(&splits[0], self.seq_len, &mut rng).map_err(describe)?);
        }
        let val =
            make_pairs(&splits[1], self.seq_len, &mut StdRng::seed_from_u64(VALIDATION_SEED)).map_err(describe)?;
        println!(
            "{} training pairs ({PAIR_PASSES} passes), {} validation pairs",
            train.len(),
            val.len()
        );
        Ok(SentencePairs { train, val })
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
