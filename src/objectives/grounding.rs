//! Does the multimodal masked LM read the image? In the shapes world a caption's colour and
//! shape words are independent of its other words, so text alone predicts them only at their
//! priors (1/7 and 1/4), and the image determines them exactly. Mask one such word of a
//! held-out caption at a time and predict it with
//!
//! - (a) the true image: the model should be right;
//! - (b) a blank image (every pixel 0): the model can do no better than the prior;
//! - (c) another example's image: the same scene with the masked word's object given another
//!   colour (or shape), drawn uniformly among the other six (three), and rendered afresh. The
//!   swapped image differs from the caption in that word alone, so the rest of the caption
//!   still describes it truly; a model that reads the image names the *swapped* image's word,
//!   and almost never the caption's own. (An unrelated example's image would contradict the
//!   caption's other words too, and those pull the prediction towards the wrong object.)

use super::image_text::ImageTextBatch;
use super::mmlm::Mmlm;
use crate::data::shapes::{Colour, Example, Image, Role, Shape};
use crate::params::Params;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeds the swapped examples of condition (c): the same for every model and run.
pub const SWAP_SEED: u64 = 4321;

/// Which image the caption is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageCondition {
    /// Its own image.
    True,
    /// All pixels 0.
    Blank,
    /// Another example's image: the same scene but for the masked word's attribute.
    Swapped,
}

/// Hits out of trials for masked colour words and shape words.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WordScores {
    /// Colour words predicted right (against the image's word).
    pub colour_hits: usize,
    /// Colour words scored.
    pub colour_total: usize,
    /// Shape words predicted right.
    pub shape_hits: usize,
    /// Shape words scored.
    pub shape_total: usize,
    /// Predictions equal to the caption's own word (the same as the hits unless swapped).
    pub own_word: usize,
}

impl WordScores {
    /// Colour accuracy (0 when nothing was scored).
    pub fn colour(&self) -> f64 {
        self.colour_hits as f64 / self.colour_total.max(1) as f64
    }

    /// Shape accuracy.
    pub fn shape(&self) -> f64 {
        self.shape_hits as f64 / self.shape_total.max(1) as f64
    }

    /// Share of all predictions equal to the caption's own word.
    pub fn own_word_rate(&self) -> f64 {
        self.own_word as f64 / (self.colour_total + self.shape_total).max(1) as f64
    }
}

/// One masked word: its example, its word index and role, and the image it is read with.
struct Query<'a> {
    example: &'a Example,
    word: usize,
    role: Role,
    image: Image,
    /// The word the image shows at that place.
    target: String,
}

/// `e` with the object that word `word` describes given another colour (`Role::Colour`) or
/// shape (`Role::Shape`), drawn from `rng`, and rendered afresh: condition (c)'s example.
pub fn swapped_example(e: &Example, word: usize, role: Role, rng: &mut impl Rng) -> Example {
    let mut scene = e.scene;
    let object = match (&mut scene.second, word) {
        (Some((_, second)), w) if w >= 4 => second, // words 0-3 describe the first object
        _ => &mut scene.first,
    };
    match role {
        Role::Colour => object.colour = other(&Colour::ALL, object.colour, rng),
        Role::Shape => object.shape = other(&Shape::ALL, object.shape, rng),
        _ => panic!("swapped_example: word {word} is a {role:?} word, not a colour or a shape"),
    }
    let image = scene.render(rng);
    Example {
        caption: scene.caption(),
        scene,
        image,
    }
}

/// A uniform draw from `all` without `not`.
fn other<T: Copy + PartialEq>(all: &[T], not: T, rng: &mut impl Rng) -> T {
    let rest: Vec<T> = all.iter().copied().filter(|&x| x != not).collect();
    rest[rng.random_range(0..rest.len())]
}

/// Word `w` of a caption.
fn word(caption: &str, w: usize) -> String {
    caption.split(' ').nth(w).expect("a word of the caption").to_string()
}

/// Every colour and shape word of `pairs`, with its image under `condition`.
fn queries(pairs: &[Example], condition: ImageCondition) -> Vec<Query<'_>> {
    let mut rng = StdRng::seed_from_u64(SWAP_SEED);
    let mut out = Vec::new();
    for e in pairs {
        for (w, role) in e.scene.roles().into_iter().enumerate() {
            if !matches!(role, Role::Colour | Role::Shape) {
                continue;
            }
            let (image, target) = match condition {
                ImageCondition::True => (e.image.clone(), word(&e.caption, w)),
                ImageCondition::Blank => (Image::blank(e.image.size), word(&e.caption, w)),
                ImageCondition::Swapped => {
                    let s = swapped_example(e, w, role, &mut rng);
                    (s.image, word(&s.caption, w))
                }
            };
            out.push(Query {
                example: e,
                word: w,
                role,
                image,
                target,
            });
        }
    }
    out
}

/// Score every colour and shape word of `pairs` under `condition` (module docs), 64 masked
/// captions per forward pass. `text_len` is the model's number of text positions.
pub fn word_scores(
    model: &Mmlm,
    params: &Params,
    tokenizer: &Tokenizer,
    pairs: &[Example],
    condition: ImageCondition,
    text_len: usize,
) -> Result<WordScores, String> {
    let mask = tokenizer.specials().mask;
    let mut scores = WordScores::default();
    for chunk in queries(pairs, condition).chunks(64) {
        let captions: Vec<&str> = chunk.iter().map(|q| q.example.caption.as_str()).collect();
        let images: Vec<&Image> = chunk.iter().map(|q| &q.image).collect();
        let batch = ImageTextBatch::new(&captions, &images, tokenizer, text_len)?;
        let t = batch.text.seq_len;
        let positions: Vec<usize> = chunk.iter().enumerate().map(|(b, q)| b * t + 1 + q.word).collect(); // after [CLS]
        let mut text = batch.text.clone();
        for &f in &positions {
            text.ids[f] = mask;
        }
        let (predicted, _) = model.predict(params, &batch.with_text(text), &positions, &[]);
        for ((q, &f), &p) in chunk.iter().zip(&positions).zip(&predicted) {
            let hit = usize::from(p == tokenizer.encode(&q.target)[0]);
            match q.role {
                Role::Colour => (scores.colour_hits += hit, scores.colour_total += 1),
                _ => (scores.shape_hits += hit, scores.shape_total += 1),
            };
            scores.own_word += usize::from(p == batch.text.ids[f]);
        }
    }
    Ok(scores)
}

/// `e`'s caption with each colour and shape word masked in turn and filled in by the model
/// reading `image`: "a large \[red\] circle", with the prediction in brackets (and `!` after a
/// wrong one, judged against the caption).
pub fn fill_caption(
    model: &Mmlm,
    params: &Params,
    tokenizer: &Tokenizer,
    e: &Example,
    image: &Image,
    text_len: usize,
) -> Result<String, String> {
    let words: Vec<&str> = e.caption.split(' ').collect();
    let roles = e.scene.roles();
    let targets: Vec<usize> = (0..words.len())
        .filter(|&w| matches!(roles[w], Role::Colour | Role::Shape))
        .collect();
    let captions = vec![e.caption.as_str(); targets.len()];
    let batch = ImageTextBatch::new(&captions, &vec![image; targets.len()], tokenizer, text_len)?;
    let t = batch.text.seq_len;
    let positions: Vec<usize> = targets.iter().enumerate().map(|(b, w)| b * t + 1 + w).collect();
    let mut text = batch.text.clone();
    for &f in &positions {
        text.ids[f] = tokenizer.specials().mask;
    }
    // Shown as text: never a special token ([[MASK]], say).
    let banned = tokenizer.special_ids();
    let (predicted, _) = model.predict(params, &batch.with_text(text), &positions, &banned);
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    for (&w, &p) in targets.iter().zip(&predicted) {
        let guess = tokenizer.decode(&[p]);
        let mark = if guess == words[w] { "" } else { "!" };
        out[w] = format!("[{guess}]{mark}");
    }
    Ok(out.join(" "))
}
