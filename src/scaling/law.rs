//! The laws themselves, apart from any run: a power law and its least-squares fit, the
//! compute frontier it is fitted on, and Kaplan et al.'s counts, N (non-embedding parameters)
//! and C = 6 N D.

use crate::params::Params;

/// y = a x^(-alpha), with the fit's coefficient of determination r2 (in log space).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerLaw {
    /// The value at x = 1.
    pub a: f64,
    /// The exponent: y falls by a factor 2^alpha each time x doubles.
    pub alpha: f64,
    /// 1 - (residual sum of squares) / (total sum of squares) of log y: 1 for a perfect fit.
    pub r2: f64,
}

impl PowerLaw {
    /// a x^(-alpha).
    pub fn predict(&self, x: f64) -> f64 {
        self.a * x.powf(-self.alpha)
    }
}

impl std::fmt::Display for PowerLaw {
    /// `3.104 x^-0.0812 (r2 0.981)`; a negative alpha shows as `x^0.0105`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = if (0.01..1e4).contains(&self.a) {
            format!("{:.3}", self.a)
        } else {
            format!("{:.2e}", self.a)
        };
        write!(f, "{a} x^{:.4} (r2 {:.3})", -self.alpha, self.r2)
    }
}

/// Fit y = a x^(-alpha) by ordinary least squares on the logarithms, where the law is linear:
///
/// ```text
/// log y = log a - alpha log x,   u = log x, v = log y
/// alpha = -sum (u - mean u)(v - mean v) / sum (u - mean u)^2
/// log a = mean v + alpha mean u
/// r2    = 1 - sum (v - fitted v)^2 / sum (v - mean v)^2     (1 when every v is equal)
/// ```
///
/// Errors: lengths that differ, fewer than 2 points, a value that is not positive and finite,
/// or every x equal (no slope to fit).
///
/// ```
/// let xs = [1.0, 10.0, 100.0];
/// let ys: Vec<f64> = xs.iter().map(|x: &f64| 2.0 * x.powf(-0.5)).collect();
/// let law = microlm::scaling::fit_power_law(&xs, &ys).unwrap();
/// assert!((law.alpha - 0.5).abs() < 1e-12 && (law.a - 2.0).abs() < 1e-12);
/// ```
pub fn fit_power_law(xs: &[f64], ys: &[f64]) -> Result<PowerLaw, String> {
    let (nx, ny) = (xs.len(), ys.len());
    if nx != ny || nx < 2 {
        return Err(format!("fit_power_law: got {nx} x and {ny} y, not 2 or more pairs"));
    }
    if let Some(v) = xs.iter().chain(ys).find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(format!("fit_power_law: {v} is not positive and finite"));
    }
    let u: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let v: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let (mu, mv) = (u.iter().sum::<f64>() / nx as f64, v.iter().sum::<f64>() / nx as f64);
    let suu: f64 = u.iter().map(|ui| (ui - mu).powi(2)).sum();
    let suv: f64 = u.iter().zip(&v).map(|(ui, vi)| (ui - mu) * (vi - mv)).sum();
    if suu == 0.0 {
        return Err("fit_power_law: every x is the same, so there is no slope to fit".into());
    }
    let alpha = -suv / suu;
    let log_a = mv + alpha * mu;
    let residual = |(ui, vi): (&f64, &f64)| (vi - (log_a - alpha * ui)).powi(2);
    let ss_res: f64 = u.iter().zip(&v).map(residual).sum();
    let ss_tot: f64 = v.iter().map(|vi| (vi - mv).powi(2)).sum();
    let r2 = if ss_tot == 0.0 { 1.0 } else { 1.0 - ss_res / ss_tot };
    Ok(PowerLaw {
        a: log_a.exp(),
        alpha,
        r2,
    })
}

/// Training FLOPs, C = 6 N D (Kaplan et al. 2020, section 2.1), for `non_embedding` parameters
/// N trained on `tokens` tokens D. Each parameter costs a multiply and an add per token going
/// forward (2 N D) and twice that going backward (gradients for the activations and for the
/// weights, 4 N D). It leaves out the embeddings, the output layer, and attention's scores and
/// weighted sums: 4 T d more per token and layer forward in a bidirectional encoder (T the
/// context), against the 24 d^2 of the layer's weights, so T / (6 d) more: at our context of
/// 128 that is 67% for d_model 32 but 8% for d_model 256.
///
/// ```
/// assert_eq!(microlm::scaling::training_flops(1_000, 2_000), 12.0e6);
/// ```
pub fn training_flops(non_embedding: usize, tokens: usize) -> f64 {
    6.0 * non_embedding as f64 * tokens as f64
}

/// True for a parameter that maps between ids and vectors rather than computing: the token,
/// segment and position embeddings (names containing `token_embedding`, `segment_embedding`
/// or `position_embedding`) and the output projection to the vocabulary (`*.lm_head.*`,
/// `*.output.*`). Kaplan et al. count neither in N.
pub fn is_embedding(name: &str) -> bool {
    let table = ["token_embedding", "segment_embedding", "position_embedding"];
    table.iter().any(|t| name.contains(t)) || name.contains(".lm_head.") || name.contains(".output.")
}

/// N: how many parameter values `params` holds outside [`is_embedding`] tables.
pub fn non_embedding_parameters(params: &Params) -> usize {
    let counted = params.ids().filter(|&id| !is_embedding(params.name(id)));
    counted.map(|id| params.value(id).len()).sum()
}

/// The lower envelope of (compute, loss) points: sorted by compute, each point whose loss is
/// below that of every point with less compute. Kaplan et al. fit L(C) to this frontier.
pub fn compute_frontier(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if frontier.last().is_none_or(|last| p.1 < last.1) {
            frontier.push(p);
        }
    }
    frontier
}
