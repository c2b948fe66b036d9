//! Masking and dropout.

use crate::kernels::elementwise::zip_map;
use crate::tape::{Tape, Var};
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn, Zip};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Elements per independently seeded chunk of a dropout mask. Fixed, so the mask depends on
/// the seed only, never on the number of threads.
const DROPOUT_CHUNK: usize = 4096;

impl Tape {
    /// y = `value` where `mask` is true, x elsewhere. `mask` broadcasts to x's shape (e.g. a
    /// [T, T] causal mask over [B, H, T, T] scores). Use `value = -inf` before a softmax.
    ///
    /// dL/dx = dL/dy where the mask is false, 0 where it is true.
    pub fn masked_fill(&mut self, x: Var, mask: &ArrayD<bool>, value: f32) -> Var {
        let xv = self.value(x).clone();
        let mask = mask
            .broadcast(xv.raw_dim())
            .unwrap_or_else(|| {
                panic!(
                    "masked_fill: mask {:?} does not broadcast to x {:?}",
                    mask.shape(),
                    xv.shape()
                )
            })
            .to_owned();
        let y = Zip::from(&xv)
            .and(&mask)
            .map_collect(|&x, &m| if m { value } else { x });
        self.record("masked_fill", y, &[x], move |g| {
            // dy/dx = 0 where masked (y = value, a constant), 1 elsewhere (y = x)
            let dx = Zip::from(&g).and(&mask).map_collect(|&g, &m| if m { 0.0 } else { g });
            vec![dx]
        })
    }

    /// Inverted dropout: y = x * m / (1 - p), with m_i = 0 with probability p and 1 otherwise,
    /// so E(y) = x and nothing needs rescaling at evaluation. Identity on a tape that is not
    /// training (see [`Tape::is_training`]) and when p = 0.
    ///
    /// dL/dx = dL/dy * m / (1 - p).
    ///
    /// The mask is drawn from a seed taken from `rng`, in fixed-size chunks seeded from it, so
    /// one seed gives one mask whatever the thread count.
    pub fn dropout(&mut self, x: Var, p: f32, rng: &mut impl Rng) -> Var {
        assert!((0.0..1.0).contains(&p), "dropout: p must be in [0, 1), got {p}");
        if !self.is_training() || p == 0.0 {
            return x;
        }
        let xv = self.value(x).clone();
        let seed = rng.next_u64();
        let scale = 1.0 / (1.0 - p);
        // Mask values are 0 or 1/(1-p), in row-major order over x's shape.
        let mut mask = vec![0.0f32; xv.len()];
        mask.par_chunks_mut(DROPOUT_CHUNK).enumerate().for_each(|(c, chunk)| {
            let mut chunk_rng =
                rand::rngs::StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for m in chunk.iter_mut() {
                *m = if chunk_rng.random::<f32>() < p { 0.0 } else { scale };
            }
        });
        let mask: Tensor = ArrayD::from_shape_vec(IxDyn(xv.shape()), mask)
            .expect("one per element")
            .into();
        let y = zip_map("dropout", xv.view(), mask.view(), |x, m| x * m);
        self.record("dropout", y, &[x], move |g| {
            // dy/dx = m / (1 - p), the stored mask value: from y = x m / (1 - p)
            vec![zip_map("dropout backward", g.view(), mask.view(), |g, m| g * m)]
        })
    }
}
