//! Patch embeddings, the image side of a vision Transformer (ViT; ViLT for image and text):
//! cut the image into non-overlapping p x p patches, flatten each, and map it linearly to
//! d_model, then add a learned vector for the patch's place in the image:
//!
//! ```text
//! v_j = W vec(patch_j) + b + E_imgpos[j],      j = 0 .. (H/p)(W/p) - 1, row by row.
//! ```
//!
//! A 32 x 32 RGB image with p = 8 gives 16 patches of 8 * 8 * 3 = 192 numbers each. The
//! modality (type) vector E_type\[1\] is added by the model that mixes patches with text.
//!
//! Sources: Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words" (ViT), §3.1, eq. 1;
//! Kim et al., 2021, "ViLT", §3.1; `docs/objectives.md` §3.

use super::init::{normal, INIT_STD};
use super::linear::Linear;
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};
use rand::Rng;

/// W, b (`{name}.proj.*`, [D, p*p*C]) and E_imgpos (`{name}.position_embedding`, [P, D]; an
/// embedding table, so exempt from weight decay like the others).
#[derive(Clone, Debug)]
pub struct PatchEmbedding {
    /// W vec(patch) + b.
    pub proj: Linear,
    /// E_imgpos: one learned vector per patch position. Init: normal(0, 0.02).
    pub positions: ParamId,
    /// Side of a (square) image, in pixels.
    pub image_size: usize,
    /// Side of a patch, p.
    pub patch: usize,
    /// Colour channels, C.
    pub channels: usize,
}

impl PatchEmbedding {
    /// Patches of `patch` x `patch` over `image_size` x `image_size` images with `channels`
    /// channels, mapped to width `d`. Error: `patch` does not divide `image_size`.
    pub fn new(
        params: &mut Params,
        name: &str,
        image_size: usize,
        patch: usize,
        channels: usize,
        d: usize,
        rng: &mut impl Rng,
    ) -> Result<PatchEmbedding, String> {
        if patch == 0 || image_size == 0 || !image_size.is_multiple_of(patch) {
            return Err(format!(
                "patch embedding: a patch side of {patch} pixels does not divide the image side of {image_size} \
                 (choose --patch among the divisors of {image_size})"
            ));
        }
        let n = (image_size / patch).pow(2);
        Ok(PatchEmbedding {
            proj: Linear::new(params, &format!("{name}.proj"), patch * patch * channels, d, true, rng),
            positions: params.add(format!("{name}.position_embedding"), normal(&[n, d], INIT_STD, rng)),
            image_size,
            patch,
            channels,
        })
    }

    /// P = (H/p)^2, the number of patches per image.
    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch).pow(2)
    }

    /// images [B, H, W, C] -> v [B, P, D]. The images enter the tape as a constant: nothing
    /// upstream of the pixels is learned.
    pub fn forward(&self, tape: &mut Tape, params: &Params, images: &Tensor) -> Var {
        let patches = tape.constant(self.patchify(images)); // [B, P, p*p*C]
        let v = self.proj.forward(tape, params, patches); // W vec(patch_j) + b
        let e_pos = tape.param(params, self.positions); // [P, D]
        tape.add(v, e_pos) // + E_imgpos[j], broadcast over the batch
    }

    /// images [B, H, W, C] -> patches [B, P, p*p*C]: patch j = (row r, column c) of the grid,
    /// j = r (H/p) + c, flattened row by row, pixel by pixel, channel by channel. Panics
    /// (naming the shapes) on an image of another size: the model was built for one size.
    pub fn patchify(&self, images: &Tensor) -> Tensor {
        let (s, p, ch) = (self.image_size, self.patch, self.channels);
        let shape = images.shape();
        assert!(
            shape.len() == 4 && shape[1] == s && shape[2] == s && shape[3] == ch,
            "patch embedding: images are {shape:?}, expected [B, {s}, {s}, {ch}]"
        );
        let grid = s / p;
        ArrayD::from_shape_fn(IxDyn(&[shape[0], grid * grid, p * p * ch]), |ix| {
            let (b, j, k) = (ix[0], ix[1], ix[2]);
            let (row, col) = (j / grid, j % grid); // the patch
            let (y, x, c) = (k / (p * ch), (k / ch) % p, k % ch); // the pixel within it
            images[[b, row * p + y, col * p + x, c]]
        })
        .into_shared()
    }
}
