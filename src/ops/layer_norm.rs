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

use crate::kernels::{self, rows_per_task};
use crate::tape::{Tape, Var};
use ndarray::{Array1, ArrayD};
use rayon::prelude::*;

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

/// One row of backward, given dy = dL/dy: writes dL/dx into `dx` and adds the row's terms of
/// dL/dgamma and dL/dbeta into the running sums `dgamma` and `dbeta`.
fn backward_row(
    x: &[f32],
    dy: &[f32],
    (mean, rstd): (f32, f32),
    gamma: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let d = x.len() as f32;
    // mean_k(dxhat_k) and mean_k(dxhat_k * xhat_k), the two row sums dL/dx needs.
    let (mut mean_dxhat, mut mean_dxhat_xhat) = (0.0f32, 0.0f32);
    for j in 0..x.len() {
        let xhat = (x[j] - mean) * rstd; // recomputed: xhat = (x - mean) * rstd
        let dxhat = dy[j] * gamma[j]; // dL/dxhat: from y = xhat * gamma + beta
        mean_dxhat += dxhat;
        mean_dxhat_xhat += dxhat * xhat;
        dgamma[j] += dy[j] * xhat; // dL/dgamma: from y = xhat * gamma + ..., summed over rows
        dbeta[j] += dy[j]; // dL/dbeta: from y = ... + beta, summed over rows
    }
    mean_dxhat /= d;
    mean_dxhat_xhat /= d;
    for j in 0..x.len() {
        let xhat = (x[j] - mean) * rstd;
        let dxhat = dy[j] * gamma[j];
        // dL/dx: from xhat = (x - mean) * rstd, through x directly (dxhat), through mean
        // (- mean(dxhat)) and through rstd = 1/sqrt(var + eps) (- xhat mean(dxhat xhat)).
        dx[j] = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

impl Tape {
    /// y = (x - mean) * rstd * gamma + beta over the last axis; `gamma` and `beta` have shape
    /// `[D]`. See the module docs for the formulas.
    ///
    /// Backward, with dxhat_j = dL/dy_j * gamma_j:
    ///   dL/dx_j = rstd * (dxhat_j - mean_k(dxhat_k) - xhat_j * mean_k(dxhat_k * xhat_k)),
    ///   dL/dgamma_j = sum over rows of dL/dy_j * xhat_j,
    ///   dL/dbeta_j = sum over rows of dL/dy_j.
    ///
    /// Rows run in blocks of [`rows_per_task`] rows on rayon's threads; dgamma and dbeta are
    /// summed per block and the block sums added in order, so they do not depend on the threads.
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
        // Row-major, row r is x[r*D..(r+1)*D]: x itself when it is (shared, not copied).
        let x_rows = if xv.is_standard_layout() {
            xv.clone()
        } else {
            xv.as_standard_layout().into_owned().into_shared()
        };
        let xs = x_rows.as_slice().expect("row-major");
        let (gs, bs) = (gv.as_standard_layout(), bv.as_standard_layout());
        let (gs, bs) = (gs.as_slice().expect("1-D"), bs.as_slice().expect("1-D"));
        let rows = xs.len().checked_div(d).unwrap_or(0);
        let n = rows_per_task(d); // rows per task; a task's block is n * d elements
        let block = n * d.max(1);

        let mut y = vec![0.0f32; xs.len()];
        let mut stats = vec![(0.0f32, 0.0f32); rows]; // (mean, rstd) of each row, for backward
        y.par_chunks_mut(block)
            .zip(xs.par_chunks(block))
            .zip(stats.par_chunks_mut(n))
            .for_each(|((y, x), stats)| {
                for ((y, x), s) in y.chunks_mut(d).zip(x.chunks(d)).zip(stats) {
                    *s = forward_row(x, y, gs, bs, eps);
                }
            });
        let y = ArrayD::from_shape_vec(xv.raw_dim(), y).expect("same shape as x");
        let gamma_saved = gv.clone();
        self.record("layer_norm", y, &[x, gamma, beta], move |g| {
            let g = g.as_standard_layout().into_owned();
            let dys = g.as_slice().expect("row-major");
            let xs = x_rows.as_slice().expect("row-major");
            let gamma = gamma_saved.as_standard_layout();
            let gamma = gamma.as_slice().expect("1-D");
            let mut dx = vec![0.0f32; xs.len()];
            // Each task fills dx for its block of rows and returns the block's (dgamma, dbeta).
            let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
                .par_chunks_mut(block)
                .enumerate()
                .map(|(t, dx)| {
                    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
                    for (i, dx) in dx.chunks_mut(d).enumerate() {
                        let row = (t * n + i) * d..(t * n + i + 1) * d;
                        let (x, dy) = (&xs[row.clone()], &dys[row]);
                        backward_row(x, dy, stats[t * n + i], gamma, dx, &mut dgamma, &mut dbeta);
                    }
                    (dgamma, dbeta)
                })
                .collect();
            // dgamma, dbeta: the block sums added in block order, the same for any thread count.
            let (mut dgamma, mut dbeta) = (Array1::<f32>::zeros(d), Array1::<f32>::zeros(d));
            for (pg, pb) in &partials {
                dgamma.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
                dbeta.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
            }
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
