//! Gradient caching: the contrastive loss of a big batch, differentiated one chunk of texts at a
//! time, so that memory holds one chunk's tape instead of the whole batch's.
//!
//! InfoNCE (`simcse.rs`) reads the parameters θ only through the embeddings h_1..h_N and
//! h+_1..h+_N, and each embedding only through its own text. By the chain rule,
//!
//!   dL/dθ = sum_i (dL/dh_i) · (dh_i/dθ) + sum_i (dL/dh+_i) · (dh+_i/dθ),
//!
//! and the two factors can be computed apart:
//! 1. **Embed** every chunk of C texts of x and of x+ on a tape that records no backward (only
//!    the values, freed chunk by chunk): h [N, D] and h+ [N, D].
//! 2. **Cache** u_i = dL/dh_i and u+_i = dL/dh+_i: L on a small tape whose leaves are h and h+
//!    (nothing of the encoder is on it), and its backward.
//! 3. **Backpropagate** chunk by chunk: embed the chunk again, this time recording the tape, and
//!    run its backward seeded with the chunk's rows of u (or u+); the parameter gradients of the
//!    chunks add up to dL/dθ.
//!
//! The gradient equals the one-pass one (up to float rounding) as long as each chunk's second
//! forward computes what its first did: dropout draws its masks from a generator seeded per
//! chunk, and both passes use the same seed. The price is one more forward pass per text
//! (about a third more compute); the gain is a peak memory set by C, not by N, so the batch,
//! and with it the number of negatives, can grow.
//!
//! Source: Gao, Zhang, Han and Callan, 2021, "Scaling Deep Contrastive Learning Batch Size under
//! Memory Limited Setup" (RepL4NLP), §3 (the gradient cache), and their `GradCache` library's
//! random-state context for dropout (luyug/GradCache, `RandContext`).

use crate::data::Batch;
use crate::gradients::Gradients;
use crate::objectives::simcse::{info_nce, SimCse};
use crate::params::Params;
use crate::tape::Tape;
use crate::tensor::{Grad, Tensor};
use ndarray::{s, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One chunk of a view: its rows `start..end` and the seed of its dropout masks.
struct Chunk {
    start: usize,
    end: usize,
    seed: u64,
}

/// Rows 0..n in chunks of at most `c`, each with a seed drawn from `rng`.
fn chunks(n: usize, c: usize, rng: &mut impl Rng) -> Vec<Chunk> {
    (0..n)
        .step_by(c)
        .map(|start| Chunk {
            start,
            end: (start + c).min(n),
            seed: rng.random(),
        })
        .collect()
}

impl SimCse {
    /// The view h of `x`'s rows of one chunk, as a value: recorded without backward, dropout
    /// as in training, its masks drawn from the chunk's seed.
    fn chunk_view(&self, params: &Params, x: &Batch, k: &Chunk) -> Tensor {
        let mut tape = Tape::no_grad();
        tape.set_training(true); // dropout on, as in the pass that will be differentiated
        let h = self.view(
            &mut tape,
            params,
            &x.rows(k.start, k.end),
            &mut StdRng::seed_from_u64(k.seed),
        );
        tape.value(h).clone()
    }

    /// L and dL/dθ for the pairs (x, x+) with gradient caching in chunks of `chunk` texts (see
    /// the [module docs](self)); the result equals `backward` of [`SimCse::loss`] on the whole
    /// batch when dropout is off. Errors: `chunk` is 0; fewer than 2 pairs.
    pub fn loss_and_gradients_in_chunks(
        &self,
        params: &Params,
        x: &Batch,
        x_plus: &Batch,
        chunk: usize,
        rng: &mut impl Rng,
    ) -> Result<(f32, Gradients), String> {
        if chunk == 0 {
            return Err("--chunk 0: a chunk must hold at least 1 text".into());
        }
        let views = [
            (x, chunks(x.batch, chunk, rng)),
            (x_plus, chunks(x_plus.batch, chunk, rng)),
        ];
        // 1. Embed: h and h+, chunk by chunk, values only.
        let embeddings: Vec<Tensor> = views
            .iter()
            .map(|(x, ks)| {
                let parts: Vec<Tensor> = ks.iter().map(|k| self.chunk_view(params, x, k)).collect();
                let parts: Vec<_> = parts.iter().map(|p| p.view()).collect();
                ndarray::concatenate(Axis(0), &parts)
                    .expect("chunks share D")
                    .into_shared()
            })
            .collect();
        // 2. Cache u = dL/dh and u+ = dL/dh+ from a tape holding only L.
        let mut tape = Tape::new();
        let h = tape.input(embeddings[0].clone());
        let h_plus = tape.input(embeddings[1].clone());
        let l = info_nce(&mut tape, h, h_plus, self.tau)?.mean;
        let loss = tape.scalar(l);
        let cache = tape.backward(l);
        let u: [&Grad; 2] = [h, h_plus].map(|v| cache.wrt(v).expect("L depends on both views"));
        // 3. Backpropagate each chunk's rows of u through the chunk's recorded forward.
        let mut grads = Gradients::default();
        for ((x, ks), u) in views.iter().zip(u) {
            for k in ks {
                let mut tape = Tape::new();
                let rows = x.rows(k.start, k.end);
                let h = self.view(&mut tape, params, &rows, &mut StdRng::seed_from_u64(k.seed));
                let seed = u.slice(s![k.start..k.end, ..]).to_owned().into_dyn();
                grads.accumulate(tape.backward_from(h, seed));
            }
        }
        Ok((loss, grads))
    }
}
