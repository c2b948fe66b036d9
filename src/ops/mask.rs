//! Masking and dropout.

use crate::tape::{Tape, Var};
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
    /// one seed gives one mask whatever the thread count. Backward keeps m as bits, one per
    /// element (a 32nd of an f32 mask), and multiplies by the same 0 or 1/(1-p) forward did.
    pub fn dropout(&mut self, x: Var, p: f32, rng: &mut impl Rng) -> Var {
        assert!((0.0..1.0).contains(&p), "dropout: p must be in [0, 1), got {p}");
        if !self.is_training() || p == 0.0 {
            return x;
        }
        let xv = self.value(x).clone();
        let shape = xv.shape().to_vec();
        let seed = rng.next_u64();
        let scale = 1.0 / (1.0 - p);
        let x_std = xv.as_standard_layout(); // row-major: the mask's order
        let xs = x_std.as_slice().expect("standard layout");
        let mut y = vec![0.0f32; xs.len()];
        // keep[i / 64] bit i % 64 is m_i; a chunk of DROPOUT_CHUNK elements is 64 whole words.
        let mut keep = vec![0u64; xs.len().div_ceil(64)];
        y.par_chunks_mut(DROPOUT_CHUNK)
            .zip(keep.par_chunks_mut(DROPOUT_CHUNK / 64))
            .zip(xs.par_chunks(DROPOUT_CHUNK))
            .enumerate()
            .for_each(|(c, ((y, words), xs))| {
                let mut chunk_rng =
                    rand::rngs::StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for (i, (y, &x)) in y.iter_mut().zip(xs).enumerate() {
                    let kept = chunk_rng.random::<f32>() >= p; // dropped with probability p
                    words[i / 64] |= (kept as u64) << (i % 64);
                    *y = x * if kept { scale } else { 0.0 };
                }
            });
        let y = ArrayD::from_shape_vec(IxDyn(&shape), y).expect("one per element");
        self.record("dropout", y, &[x], move |g| {
            // dy/dx = m / (1 - p): 1/(1-p) where kept, 0 where dropped, from y = x m / (1 - p)
            let mut dx = match g.is_standard_layout() {
                true => g, // dL/dx overwrites dL/dy in place
                false => g.as_standard_layout().into_owned(),
            };
            let ds = dx.as_slice_mut().expect("standard layout");
            ds.par_chunks_mut(DROPOUT_CHUNK)
                .zip(keep.par_chunks(DROPOUT_CHUNK / 64))
                .for_each(|(ds, words)| {
                    for (i, d) in ds.iter_mut().enumerate() {
                        let kept = words[i / 64] >> (i % 64) & 1 == 1;
                        *d *= if kept { scale } else { 0.0 };
                    }
                });
            vec![dx]
        })
    }
}
