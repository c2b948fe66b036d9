//! Layer normalisation over the last axis (Ba, Kiros & Hinton, 2016), fused: one pass computes
//! the statistics and the output, one pass computes all three gradients.
//!
//! For each row x of length D:
//!   mean = (1/D) sum_j x_j,  var = (1/D) sum_j (x_j - mean)^2  (biased, as PyTorch),
//!   rstd = 1 / sqrt(var + eps),  xhat_j = (x_j - mean) * rstd,
//!   y_j = xhat_j * gamma_j + beta_j.
//! Forward caches `mean` and `rstd` per row for the backward pass.
//!
//! [`Tape::layer_norm_reference`] builds the same function from primitive ops; tests check the
//! fused version against it, values and gradients.

use crate::kernels::{self, PAR_MIN_ELEMENTS};
use crate::tape::{Tape, Var};
use ndarray::{Array1, ArrayD};
use rayon::prelude::*;

/// Rows per parallel task: large enough that the per-task partial sums of dgamma and dbeta
/// (D floats each) are cheap next to the work.
const ROWS_PER_TASK: usize = 64;

/// One row: y_j = (x_j - mean) * rstd * gamma_j + beta_j. Returns (mean, rstd) for backward.
fn forward_row(x: &[f32], y: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len() as f32;
    let mean = kernels::vector::sum(x) / d;
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = x - mean); // x - mean, kept in y for now
    let var = kernels::vector::dot(y, y) / d;
    let rstd = 1.0 / (var + eps).sqrt();
    for j in 0..x.len() {
        y[j] = y[j] * rstd * gamma[j] + beta[j];
    }
    (mean, rstd)
}

impl Tape {
    /// y = (x - mean) * rstd * gamma + beta over the last axis; `gamma` and `beta` have shape
    /// `[D]`. See the module docs for the formulas.
    ///
    /// Backward, with dxhat_j = dL/dy_j * gamma_j:
    ///   dL/dx_j = rstd * (dxhat_j - mean_k(dxhat_k) - xhat_j * mean_k(dxhat_k * xhat_k)),
    ///   dL/dgamma_j = sum over rows of dL/dy_j * xhat_j,
    ///   dL/dbeta_j = sum over rows of dL/dy_j.
    pub fn layer_norm(&mut self, x: Var, gamma: Var, beta: Var, eps: f32) -> Var {
        let xv = self.value(x).clone();
        let (gv, bv) = (self.value(gamma).clone(), self.value(beta).clone());
        let d = *xv
            .shape()
            .last()
            .unwrap_or_else(|| panic!("layer_norm: input must have at least one axis"));
        assert!(
            gv.shape() == [d] && bv.shape() == [d],
            "layer_norm: gamma {:?} and beta {:?} must both be [{d}] for input {:?}",
            gv.shape(),
            bv.shape(),
            xv.shape()
        );
        let x_rows = xv.as_standard_layout().into_owned(); // row-major: row r is x[r*D..(r+1)*D]
        let x_rows = x_rows.into_shared();
        let xs = x_rows.as_slice().expect("row-major");
        let (gs, bs) = (gv.as_standard_layout(), bv.as_standard_layout());
        let (gs, bs) = (gs.as_slice().expect("1-D"), bs.as_slice().expect("1-D"));
        let rows = xs.len().checked_div(d).unwrap_or(0);

        let mut y = vec![0.0f32; xs.len()];
        let mut mean = vec![0.0f32; rows];
        let mut rstd = vec![0.0f32; rows];
        if d > 0 {
            if xs.len() >= PAR_MIN_ELEMENTS {
                xs.par_chunks(d)
                    .zip(y.par_chunks_mut(d))
                    .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
                    .for_each(|((x, y), (mean, rstd))| (*mean, *rstd) = forward_row(x, y, gs, bs, eps));
            } else {
                xs.chunks(d)
                    .zip(y.chunks_mut(d))
                    .zip(mean.iter_mut().zip(rstd.iter_mut()))
                    .for_each(|((x, y), (mean, rstd))| (*mean, *rstd) = forward_row(x, y, gs, bs, eps));
            }
        }
        let y = ArrayD::from_shape_vec(xv.raw_dim(), y).expect("same shape as x");
        let gamma_saved = gv.clone();
        self.record("layer_norm", y, &[x, gamma, beta], move |g| {
            let g = g.as_standard_layout().into_owned();
            let gs_out = g.as_slice().expect("row-major");
            let xs = x_rows.as_slice().expect("row-major");
            let gamma = gamma_saved.as_standard_layout();
            let gamma = gamma.as_slice().expect("1-D");
            let mut dx = vec![0.0f32; xs.len()];
            // Each task handles a block of rows and returns its partial (dgamma, dbeta).
            let block = |(r0, dx_block): (usize, &mut [f32])| -> (Array1<f32>, Array1<f32>) {
                let (mut dgamma, mut dbeta) = (Array1::<f32>::zeros(d), Array1::<f32>::zeros(d));
                for (i, dx) in dx_block.chunks_mut(d).enumerate() {
                    let r = r0 * ROWS_PER_TASK + i;
                    let (x, dy) = (&xs[r * d..(r + 1) * d], &gs_out[r * d..(r + 1) * d]);
                    let (m, rs) = (mean[r], rstd[r]);
                    // mean_k(dxhat_k) and mean_k(dxhat_k * xhat_k)
                    let (mut mean_dxhat, mut mean_dxhat_xhat) = (0.0f32, 0.0f32);
                    for j in 0..d {
                        let xhat = (x[j] - m) * rs;
                        let dxhat = dy[j] * gamma[j];
                        mean_dxhat += dxhat;
                        mean_dxhat_xhat += dxhat * xhat;
                        dgamma[j] += dy[j] * xhat;
                        dbeta[j] += dy[j];
                    }
                    mean_dxhat /= d as f32;
                    mean_dxhat_xhat /= d as f32;
                    for j in 0..d {
                        let xhat = (x[j] - m) * rs;
                        let dxhat = dy[j] * gamma[j];
                        dx[j] = rs * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
                    }
                }
                (dgamma, dbeta)
            };
            let zero = || (Array1::<f32>::zeros(d), Array1::<f32>::zeros(d));
            let add = |(g1, b1): (Array1<f32>, Array1<f32>), (g2, b2): (Array1<f32>, Array1<f32>)| (g1 + g2, b1 + b2);
            let (dgamma, dbeta) = if d == 0 {
                zero()
            } else if xs.len() >= PAR_MIN_ELEMENTS {
                dx.par_chunks_mut(ROWS_PER_TASK * d)
                    .enumerate()
                    .map(block)
                    .reduce(zero, add)
            } else {
                dx.chunks_mut(ROWS_PER_TASK * d)
                    .enumerate()
                    .map(block)
                    .fold(zero(), add)
            };
            let dx = ArrayD::from_shape_vec(g.raw_dim(), dx).expect("same shape as x");
            vec![dx, dgamma.into_dyn(), dbeta.into_dyn()]
        })
    }

    /// The same layer norm composed of primitive ops (mean, sub, mul, sqrt, div, add): the slow
    /// reference the fused [`Tape::layer_norm`] is tested against.
    pub fn layer_norm_reference(&mut self, x: Var, gamma: Var, beta: Var, eps: f32) -> Var {
        let last = self.shape(x).len() - 1;
        let mean = self.mean(x, &[last], true);
        let centered = self.sub(x, mean);
        let sq = self.mul(centered, centered);
        let var = self.mean(sq, &[last], true);
        let var_eps = self.add_scalar(var, eps);
        let std = self.sqrt(var_eps);
        let xhat = self.div(centered, std);
        let scaled = self.mul(xhat, gamma);
        self.add(scaled, beta)
    }
}
