//! The shapes world as a recipe's data, for the multimodal examples (`mmlm`, `clip`): the word
//! tokenizer over the captions' grammar, held-out pairs drawn once from a fixed seed, fresh
//! training pairs drawn by every update, the model's shape, and the call to the trainer.

use super::{memory_total, Recipe, VALIDATION_SEED};
use crate::cli::{check, Domain, Flags};
use crate::data::shapes::{examples, vocabulary, Example, Image, IMAGE_SIZE};
use crate::nn::TransformerConfig;
use crate::objectives::image_text::ImageTextBatch;
use crate::objectives::itm::{itm_batch, ItmBatch};
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::tokenizer::{Tokenizer, WordTokenizer};
use crate::trainer::{Bound, Evaluation, TrainReport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Held-out image-caption pairs.
pub const HELD_OUT_PAIRS: usize = 1000;

/// The world's settings and its held-out pairs.
pub struct ShapesWorld {
    /// Specials, then the grammar's words.
    pub tokenizer: Tokenizer,
    /// [`HELD_OUT_PAIRS`] pairs drawn with [`VALIDATION_SEED`], the same in every run.
    pub held_out: Vec<Example>,
    /// Patch side in pixels (`--patch`).
    pub patch: usize,
    /// Text positions, `[CLS]` and `[SEP]` included (`--text-len`).
    pub text_len: usize,
}

impl ShapesWorld {
    /// Read `--patch` and `--text-len` and draw the held-out pairs. Errors name the flag.
    pub fn read(flags: &mut Flags) -> Result<ShapesWorld, String> {
        let patch: usize = flags.arg_in("patch", 8, Domain::at_least(1), "patch side in pixels (divides 32)")?;
        let text_len: usize = flags.arg_in(
            "text-len",
            16,
            Domain::at_least(12),
            "text positions, [CLS], the longest caption and [SEP]",
        )?;
        check(
            patch > 0 && IMAGE_SIZE.is_multiple_of(patch),
            "patch",
            patch,
            &format!("must divide the image side of {IMAGE_SIZE} pixels"),
        )?;
        let longest = 2 + 10; // [CLS], "a large red circle left of a small blue square", [SEP]
        check(
            text_len >= longest,
            "text-len",
            text_len,
            &format!("must hold the longest caption, {longest} positions with [CLS] and [SEP]"),
        )?;
        Ok(ShapesWorld {
            tokenizer: Tokenizer::Word(WordTokenizer::new(&vocabulary())),
            held_out: examples(HELD_OUT_PAIRS, VALIDATION_SEED),
            patch,
            text_len,
        })
    }

    /// `n` fresh training pairs, drawn from the update's `rng` (so a resumed run draws the same).
    pub fn draw(&self, n: usize, rng: &mut impl Rng) -> Vec<Example> {
        examples(n, rng.random())
    }

    /// The captions and images of `pairs` as one batch. Error: a caption longer than
    /// `--text-len`.
    pub fn batch(&self, pairs: &[Example]) -> Result<ImageTextBatch, String> {
        let (captions, images) = split(pairs);
        ImageTextBatch::new(&captions, &images, &self.tokenizer, self.text_len)
    }

    /// `n` fresh pairs from `rng` whose captions all differ (drawn until `n` distinct ones are
    /// found), for contrastive batches where a repeated caption would be a false negative.
    pub fn draw_distinct(&self, n: usize, rng: &mut impl Rng) -> Vec<Example> {
        distinct(n, std::iter::repeat_with(|| self.draw(1, rng).remove(0)))
    }

    /// The first `n` held-out pairs with distinct captions.
    pub fn held_out_distinct(&self, n: usize) -> Vec<Example> {
        distinct(n, self.held_out.iter().cloned())
    }

    /// `n` fresh pairs from `rng`, half their images swapped for image-text matching
    /// ([`itm_batch`]).
    pub fn itm_training_batch(&self, n: usize, rng: &mut impl Rng) -> ItmBatch {
        let pairs = self.draw(n, rng);
        let (captions, images) = split(&pairs);
        itm_batch(&captions, &images, &self.tokenizer, self.text_len, rng).expect("checked by read: the grammar fits")
    }

    /// The first `batches` batches of `batch` held-out pairs, their ITM pairing drawn with
    /// [`VALIDATION_SEED`]: the same at every validation and in every run.
    pub fn itm_validation(&self, batch: usize, batches: usize) -> Result<Vec<ItmBatch>, String> {
        let mut rng = StdRng::seed_from_u64(VALIDATION_SEED);
        self.held_out
            .chunks(batch)
            .take(batches)
            .map(|pairs| {
                let (captions, images) = split(pairs);
                itm_batch(&captions, &images, &self.tokenizer, self.text_len, &mut rng)
            })
            .collect()
    }

    /// The data settings a resumed run must share (`data.*`) and the tokenizer.
    pub fn settings(&self, recipe: &Recipe) -> BTreeMap<String, String> {
        let mut m = self.tokenizer.to_metadata();
        m.insert("data.world".into(), format!("shapes {IMAGE_SIZE}x{IMAGE_SIZE}"));
        m.insert("data.patch".into(), self.patch.to_string());
        m.insert("data.text_len".into(), self.text_len.to_string());
        m.insert("data.batch".into(), recipe.batch.to_string());
        m
    }
}

/// The first `n` examples of `from` whose captions differ from every earlier one's.
fn distinct(n: usize, from: impl Iterator<Item = Example>) -> Vec<Example> {
    let mut seen = std::collections::BTreeSet::new();
    from.filter(|e| seen.insert(e.caption.clone())).take(n).collect()
}

/// Captions and images of `pairs`, in order.
pub fn split(pairs: &[Example]) -> (Vec<&str>, Vec<&Image>) {
    pairs.iter().map(|e| (e.caption.as_str(), &e.image)).unzip()
}

impl Recipe {
    /// The model's shape for the shapes world: the recipe's width, depth, heads, activation
    /// and embedding settings, the word vocabulary, `world.text_len` text positions, and
    /// `types` type ids (2 for text and image in one stream, 0 for a text tower alone).
    /// Refused before anything is built if an update would not fit in this machine's memory
    /// ([`Recipe::check_memory_of`], for the text and the patches in one stream, plus
    /// `extra_parameters` such as CLIP's projections).
    pub fn shapes_config(
        &self,
        world: &ShapesWorld,
        types: usize,
        extra_parameters: f64,
    ) -> Result<TransformerConfig, String> {
        let patches = (IMAGE_SIZE / world.patch).pow(2);
        let vocab = world.tokenizer.vocab_size();
        let sizes = format!("(--text-len {} + {patches} patches)", world.text_len);
        self.check_memory_of(
            vocab,
            world.text_len + patches,
            &sizes,
            extra_parameters,
            memory_total(),
        )?;
        self.config_of(vocab, world.text_len, types)
    }

    /// [`Recipe::train_with`] on the shapes world: the checkpoint's metadata is the model's
    /// (`model_metadata`) and the world's settings ([`ShapesWorld::settings`]), and tokens/s
    /// counts the positions a pair fills ([`Recipe::with_pair_tokens`]). `loss` draws its own
    /// fresh pairs from the update's rng; `bounds` are clamped after every update.
    pub fn train_on_shapes<L: Into<Var>>(
        &self,
        world: &ShapesWorld,
        params: &mut Params,
        model_metadata: BTreeMap<String, String>,
        bounds: Vec<Bound>,
        loss: impl FnMut(&mut Tape, &Params, &mut StdRng) -> L,
        evaluate: impl FnMut(&Params) -> Evaluation,
    ) -> Result<TrainReport, String> {
        let mut metadata = model_metadata;
        metadata.extend(world.settings(self));
        let recipe = self.clone().with_pair_tokens(world);
        recipe.train_with(params, &metadata, bounds, loss, evaluate)
    }

    /// The recipe with tokens/s counting the positions one pair fills in the stream: about 9
    /// caption positions on average (6 or 12 with `[CLS]` and `[SEP]`) plus the patches.
    pub fn with_pair_tokens(self, world: &ShapesWorld) -> Recipe {
        let patches = (IMAGE_SIZE / world.patch).pow(2);
        Recipe {
            tokens_per_step: Some(self.batch * (9 + patches)),
            ..self
        }
    }
}
