//! Image-text matching (ITM), the auxiliary task of multimodal pretraining: read a caption and
//! an image in one stream and say whether they belong together,
//!
//!   L_ITM = -(1/N) sum_b log softmax(W tanh(W_p h_CLS + b_p) + c)_{y_b},
//!
//! with y_b = 1 for Matched and 0 for Mismatched (the reverse of NSP's convention, hence the
//! enum). The head is BERT's pooler and two-way classifier, as NSP's (`nsp.rs`), named `itm`,
//! and the loss is NSP's two-way cross-entropy with these classes.
//!
//! **Pairs.** Each example keeps its own image with probability 0.5 (a Bernoulli draw per
//! example, UNITER's way); otherwise its image is another example's, drawn uniformly among the
//! examples of the batch whose caption differs from its own. Never the true image, and never an
//! image that its caption describes just as well: with a few dozen one-object captions, two
//! examples of a batch share a caption often enough to matter.
//!
//! Sources: Chen et al., 2020, "UNITER", §3.1 (ITM); Kim et al., 2021, "ViLT", §3.2;
//! `docs/objectives.md` §3.

use super::image_text::ImageTextBatch;
use super::nsp::two_way_loss;
use crate::data::shapes::Image;
use crate::ops::CrossEntropy;
use crate::tape::{Tape, Var};
use crate::tokenizer::Tokenizer;
use rand::Rng;

/// Whether an image belongs to its caption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItmLabel {
    /// Another example's image (class 0).
    Mismatched,
    /// The caption's own image (class 1).
    Matched,
}

impl ItmLabel {
    /// The class index: Mismatched 0, Matched 1.
    pub fn class(self) -> usize {
        match self {
            ItmLabel::Mismatched => 0,
            ItmLabel::Matched => 1,
        }
    }
}

/// A batch whose images are each the caption's own or another's, with the labels saying which.
#[derive(Clone, Debug)]
pub struct ItmBatch {
    /// Captions and the images they are paired with.
    pub pairs: ImageTextBatch,
    /// One label per row.
    pub labels: Vec<ItmLabel>,
}

/// For each example i, the index of the image it is paired with and the label (module docs).
/// An example whose caption every other example shares stays matched.
pub fn pair_images(captions: &[&str], rng: &mut impl Rng) -> Vec<(usize, ItmLabel)> {
    (0..captions.len())
        .map(|i| {
            let others: Vec<usize> = (0..captions.len()).filter(|&j| captions[j] != captions[i]).collect();
            if others.is_empty() || rng.random_bool(0.5) {
                (i, ItmLabel::Matched)
            } else {
                (others[rng.random_range(0..others.len())], ItmLabel::Mismatched)
            }
        })
        .collect()
}

/// Draw the pairing of `captions` and `images` (row i's image is `images[i]`) with
/// [`pair_images`] and build the batch. Error: a caption too long for `max_text` positions.
pub fn itm_batch(
    captions: &[&str],
    images: &[&Image],
    tokenizer: &Tokenizer,
    max_text: usize,
    rng: &mut impl Rng,
) -> Result<ItmBatch, String> {
    let pairing = pair_images(captions, rng);
    let paired: Vec<&Image> = pairing.iter().map(|&(j, _)| images[j]).collect();
    Ok(ItmBatch {
        pairs: ImageTextBatch::new(captions, &paired, tokenizer, max_text)?,
        labels: pairing.into_iter().map(|(_, y)| y).collect(),
    })
}

/// L_ITM = mean_b CE(s_b, y_b) over the two-way scores `s` [N, 2], with y_b = 1 for Matched
/// and 0 for Mismatched: NSP's [`two_way_loss`] of ITM's classes.
pub fn itm_loss(tape: &mut Tape, s: Var, labels: &[ItmLabel]) -> CrossEntropy {
    two_way_loss(tape, s, labels.iter().map(|y_b| y_b.class()))
}
