//! Cross-entropy over logits with ignored positions, fused with its log-softmax.
//!
//! For one position with logits z (length V) and target y:
//!   CE(z, y) = -log softmax(z)_y = -z_y + logsumexp(z),
//! with logsumexp computed after subtracting the maximum. A position whose target is `None`
//! (the `-100` label of PyTorch and transformers) is ignored. The loss is one mean over all
//! counted positions of the batch (see `docs/objectives.md` §0):
//!   sum = sum over counted (b, i) of CE,   count = |M|,   mean = sum / count,
//! and an empty M gives mean 0 with zero gradient (PyTorch would give NaN).

use crate::kernels::rows_per_task;
use crate::kernels::vector::exp;
use crate::tape::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// The result of [`Tape::cross_entropy`].
#[derive(Clone, Copy, Debug)]
pub struct CrossEntropy {
    /// The mean over counted positions, sum / count (0 if count is 0). Call backward on this.
    pub mean: Var,
    /// The sum over counted positions, for gradient accumulation over micro-batches, where
    /// one divides by the count of the whole batch instead.
    pub sum: Var,
    /// How many positions were counted, |M|.
    pub count: usize,
}

/// A cross-entropy stands for its mean where a loss is expected (the trainer takes any loss
/// that converts to the scalar `Var` to differentiate).
impl From<CrossEntropy> for Var {
    fn from(ce: CrossEntropy) -> Var {
        ce.mean
    }
}

impl Tape {
    /// Cross-entropy of `logits` [..., V] against one target per position (`targets.len()` =
    /// number of positions = elements / V). See the module docs.
    ///
    /// dL_sum/dz = softmax(z) - onehot(y) at a counted position, exactly 0 at an ignored one;
    /// dL_mean/dz is that divided by count.
    ///
    /// ```
    /// use microlm::{Tape, Tensor};
    /// let mut tape = Tape::new();
    /// let z = tape.input(Tensor::from_shape_vec(vec![2, 2], vec![0., 0., 5., -5.]).unwrap());
    /// let ce = tape.cross_entropy(z, &[Some(1), None]);
    /// assert_eq!(ce.count, 1);
    /// assert!((tape.scalar(ce.mean) - 2f32.ln()).abs() < 1e-6); // -log(1/2)
    /// ```
    pub fn cross_entropy(&mut self, logits: Var, targets: &[Option<usize>]) -> CrossEntropy {
        let zv = self.value(logits).clone();
        let shape = zv.shape().to_vec();
        let v = *shape
            .last()
            .unwrap_or_else(|| panic!("cross_entropy: logits must have at least one axis"));
        let positions = zv.len().checked_div(v).unwrap_or(0);
        assert!(
            targets.len() == positions,
            "cross_entropy: logits {shape:?} hold {positions} positions but {} targets were given",
            targets.len()
        );
        if let Some((pos, bad)) = targets
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.filter(|&y| y >= v).map(|y| (i, y)))
        {
            panic!("cross_entropy: target {bad} at position {pos} is out of range for {v} classes");
        }
        let z = zv.as_standard_layout().into_owned().into_shared(); // row p is z[p*V..(p+1)*V]
        let zs = z.as_slice().expect("row-major");
        // Rows run on rayon's threads, at least n rows per task (a small batch: on this thread).
        // Each row's result is computed by one call, so it does not depend on the split.
        let n = rows_per_task(v);
        // logsumexp of every row (kept for backward) and each row's CE (0 if ignored).
        let (lse, ce): (Vec<f32>, Vec<f32>) = zs
            .par_chunks(v.max(1))
            .zip(targets.par_iter())
            .with_min_len(n)
            .map(|(z, &t)| row_lse_ce(z, t))
            .unzip();
        let count = targets.iter().filter(|t| t.is_some()).count();
        // The sum over positions, in position order in f64: the same whatever the threads.
        let sum: f32 = ce.iter().map(|&c| c as f64).sum::<f64>() as f32;
        let targets = targets.to_vec();
        let sum_var = self.record(
            "cross_entropy",
            ArrayD::from_elem(IxDyn(&[]), sum),
            &[logits],
            move |g| {
                let g = g.iter().next().copied().unwrap_or(0.0); // dL/dsum, a scalar
                let zs = z.as_slice().expect("row-major");
                let mut dz = vec![0.0f32; zs.len()];
                dz.par_chunks_mut(v.max(1))
                    .zip(zs.par_chunks(v.max(1)))
                    .zip(lse.par_iter().zip(targets.par_iter()))
                    .with_min_len(n)
                    .for_each(|((dz, z), (&lse, &t))| row_grad(dz, z, lse, t, g));
                vec![ArrayD::from_shape_vec(IxDyn(&shape), dz).expect("same shape as logits")]
            },
        );
        let mean = self.mul_scalar(sum_var, if count == 0 { 0.0 } else { 1.0 / count as f32 });
        CrossEntropy {
            mean,
            sum: sum_var,
            count,
        }
    }

    /// The same loss composed of primitive ops: -sum(log_softmax(z) * onehot(y)) / count. The
    /// slow reference the fused [`Tape::cross_entropy`] is tested against. Returns the mean.
    pub fn cross_entropy_reference(&mut self, logits: Var, targets: &[Option<usize>]) -> Var {
        let shape = self.shape(logits).to_vec();
        let v = *shape.last().expect("at least one axis");
        let mut onehot = ArrayD::<f32>::zeros(IxDyn(&[targets.len(), v]));
        for (p, t) in targets.iter().enumerate() {
            if let Some(y) = *t {
                onehot[[p, y]] = 1.0;
            }
        }
        let onehot = self.constant(onehot.into_shape_with_order(IxDyn(&shape)).expect("one row per target"));
        let count = targets.iter().filter(|t| t.is_some()).count();
        let log_p = self.log_softmax(logits, shape.len() - 1);
        let picked = self.mul(log_p, onehot);
        let total = self.sum_all(picked);
        self.mul_scalar(total, if count == 0 { 0.0 } else { -1.0 / count as f32 })
    }
}

/// One position's logsumexp(z) and its CE = logsumexp(z) - z_y (0 if ignored).
fn row_lse_ce(z: &[f32], target: Option<usize>) -> (f32, f32) {
    let m = z.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let lse = m + z.iter().map(|&x| exp(x - m)).sum::<f32>().ln(); // lse = m + ln sum e^(z - m)
    (lse, target.map_or(0.0, |y| lse - z[y]))
}

/// One position's dL_sum/dz: g * (softmax(z) - onehot(y)) if counted, left at 0 if ignored.
/// `lse` is logsumexp(z) from forward, so softmax(z)_j = e^(z_j - lse).
fn row_grad(dz: &mut [f32], z: &[f32], lse: f32, target: Option<usize>, g: f32) {
    if let Some(y) = target {
        for (d, &x) in dz.iter_mut().zip(z) {
            *d = g * exp(x - lse); // d(logsumexp(z))/dz_j = softmax(z)_j: from CE = -z_y + logsumexp(z)
        }
        dz[y] -= g; // d(-z_y)/dz_j = -onehot(y)_j: from CE = -z_y + logsumexp(z)
    }
}
