//! The shapes world: small generated pictures of one or two coloured shapes, each with a caption
//! that says exactly what is in it, for multimodal pretraining.
//!
//! A multimodal masked language model reads a caption with some words replaced by `[MASK]`,
//! and the image, and predicts the masked words. Every colour, shape, size and relation word
//! is drawn uniformly and independently of every other word, so the rest of the caption
//! predicts it only at its prior, while the image determines it exactly:
//!
//! | word     | choices                                   | prior |
//! |----------|-------------------------------------------|-------|
//! | colour   | red green blue yellow purple orange white | 1/7   |
//! | shape    | circle square triangle cross              | 1/4   |
//! | size     | small large                               | 1/2   |
//! | relation | "left of", "right of", above, below       | 1/4   |
//!
//! A model that beats the prior on a masked colour or shape word has looked at the picture.
//!
//! `grammar.rs` draws scenes and writes their captions; `render.rs` paints their pictures.

mod grammar;
mod render;

pub use grammar::{vocabulary, Colour, Object, Relation, Role, Scene, Shape, Size, CELL, IMAGE_SIZE};
pub use render::{Image, BACKGROUND, NOISE};

use rand::rngs::StdRng;
use rand::SeedableRng;

/// A scene with its picture and caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// What is in the picture.
    pub scene: Scene,
    /// The rendered picture.
    pub image: Image,
    /// The scene's caption.
    pub caption: String,
}

/// `n` examples drawn from `StdRng::seed_from_u64(seed)`: the same seed gives the same examples,
/// bit for bit.
pub fn examples(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let scene = Scene::random(&mut rng);
            let image = scene.render(&mut rng);
            let caption = scene.caption();
            Example { scene, image, caption }
        })
        .collect()
}
