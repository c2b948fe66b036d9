//! gradcheck: compare the gradients backward computes with central finite differences.
//!
//! For a scalar function f of tensors and every element x_i of every input,
//!   numeric_i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),
//! whose error is O(eps^2) from truncation plus about u S / eps from f32 rounding (u = 6e-8, S
//! the size of the values summed inside f: |f|, or more when f cancels large terms). Element i
//! passes when
//!
//!   |analytic_i - numeric_i| <= atol + gtol * g_max + rtol * max(|analytic_i|, |numeric_i|),
//!
//! g_max the largest |analytic| or |numeric| over every element of the check. So the test is
//! relative, rtol, wherever the gradient is not negligible, and "negligible" is measured
//! against the gradient's own scale, gtol * g_max: scaling f by any c scales those two terms
//! with it, so down to the small absolute floor atol (which only has to cover f32's resolution
//! of f) a loss whose gradients are all about 1e-4 is checked as strictly as one of size 1.
//!
//! The defaults (eps 1e-2, atol 5e-5, gtol 3e-4, rtol 1e-2) come from measurement: over 5000
//! random cases of every property in `tests/gradcheck_ops.rs` (`PROPTEST_CASES=5000
//! MICROLM_LOG_RATIOS=1`), the worst element used 0.52 of its tolerance. eps 1e-2 balances
//! truncation against rounding (5e-3 and 2e-2 both did worse, 2e-2 failing on gelu_tanh).
//! atol 5e-5 is about four steps of f's f32 quantum ulp(f) / (2 eps) for f of size 2 (one step
//! is 1.2e-5): the proptests' hardest cases are losses like mean + c * sum with c near
//! -1 / count, whose O(1) terms cancel so that every true gradient is a few 1e-4 while the
//! rounding stays that of the O(1) terms. gtol covers the rest of the rounding, which grows
//! with the size of f (|f| up to 40 in the matmul tests). With the earlier absolute floor of
//! 1e-3 alone, a backward returning zeros passed wherever every true gradient was below 1e-3;
//! `tests/gradcheck_ops.rs` shows that it is now caught.

use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};
use ndarray::{ArrayD, Dimension};

/// Step and tolerances of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckConfig {
    /// Finite-difference step.
    pub eps: f32,
    /// Absolute tolerance: the floor below which no difference counts.
    pub atol: f32,
    /// Tolerance as a fraction of the gradient's scale g_max (its largest element in the
    /// check).
    pub gtol: f32,
    /// Relative tolerance, per element.
    pub rtol: f32,
}

impl Default for GradcheckConfig {
    /// eps = 1e-2, atol = 5e-5, gtol = 3e-4, rtol = 1e-2 (the module documentation says why).
    fn default() -> Self {
        GradcheckConfig {
            eps: 1e-2,
            atol: 5e-5,
            gtol: 3e-4,
            rtol: 1e-2,
        }
    }
}

/// One element's comparison.
#[derive(Clone, Debug)]
pub struct ElementCheck {
    /// Which input (position in the `inputs` slice), or which parameter (its index) for
    /// [`gradcheck_params`].
    pub input: usize,
    /// The element's index in that input.
    pub index: Vec<usize>,
    /// The gradient from backward.
    pub analytic: f32,
    /// The central finite difference.
    pub numeric: f32,
}

/// The outcome of [`gradcheck`]: the worst element, measured against its tolerance.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// The element with the largest |analytic - numeric| / tolerance, if any.
    pub worst: Option<ElementCheck>,
    /// That ratio: the check passed if it is at most 1.
    pub worst_ratio: f32,
    /// Number of elements checked.
    pub checked: usize,
    /// The gradient's scale: the largest |analytic| or |numeric| over every element.
    pub g_max: f32,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.worst {
            None => write!(f, "gradcheck: no elements"),
            Some(w) => write!(
                f,
                "gradcheck over {} elements: worst is input {} at {:?}: analytic {:.6e}, numeric {:.6e} ({:.2} of tolerance; largest gradient {:.3e})",
                self.checked, w.input, w.index, w.analytic, w.numeric, self.worst_ratio, self.g_max
            ),
        }
    }
}

/// Check the gradient of `f` at `inputs`. `f` builds a one-element result from the inputs on the
/// tape it is given; it must be deterministic (seed any randomness inside it).
///
/// Returns the report, or an error message naming the worst element when it fails.
///
/// ```
/// use microlm::gradcheck::{gradcheck, GradcheckConfig};
/// use microlm::Tensor;
/// // f(x) = sum(tanh(x) * x)
/// let x = Tensor::from_shape_vec(vec![3], vec![0.5, -1.0, 2.0]).unwrap().into_owned();
/// let report = gradcheck(|t, v| { let y = t.tanh(v[0]); let z = t.mul(y, v[0]); t.sum_all(z) },
///                        &[x], GradcheckConfig::default()).unwrap();
/// assert!(report.worst_ratio <= 1.0);
/// ```
pub fn gradcheck(
    f: impl Fn(&mut Tape, &[Var]) -> Var,
    inputs: &[ArrayD<f32>],
    config: GradcheckConfig,
) -> Result<GradcheckReport, String> {
    // Analytic gradients: one forward and backward.
    let mut tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.input(x.clone())).collect();
    let out = f(&mut tape, &vars);
    let grads = tape.backward(out);
    let analytic: Vec<ArrayD<f32>> = vars
        .iter()
        .zip(inputs)
        .map(|(&v, x)| grads.wrt(v).cloned().unwrap_or_else(|| ArrayD::zeros(x.raw_dim())))
        .collect();

    // Numeric gradients: two evaluations per element, on tapes that record nothing (but keep
    // dropout's training flag equal to the analytic pass).
    let eval = |xs: &[ArrayD<f32>]| -> f64 {
        let mut tape = Tape::no_grad();
        tape.set_training(true);
        let vars: Vec<Var> = xs.iter().map(|x| tape.constant(x.clone())).collect();
        let out = f(&mut tape, &vars);
        tape.scalar(out) as f64
    };
    let report = compare_with_finite_differences(inputs.to_vec(), &analytic, eval, config);
    if report.worst_ratio <= 1.0 {
        Ok(report)
    } else {
        Err(report.to_string())
    }
}

/// The shared loop: for every element of every tensor in `xs`, the central difference of
/// `eval`; then each against `analytic`, keeping the worst element relative to its tolerance.
fn compare_with_finite_differences(
    mut xs: Vec<ArrayD<f32>>,
    analytic: &[ArrayD<f32>],
    eval: impl Fn(&[ArrayD<f32>]) -> f64,
    config: GradcheckConfig,
) -> GradcheckReport {
    // Pass 1: every numeric gradient.
    let mut numeric: Vec<ArrayD<f32>> = analytic.iter().map(|a| ArrayD::zeros(a.raw_dim())).collect();
    for i in 0..xs.len() {
        for idx in ndarray::indices(xs[i].raw_dim()) {
            let x0 = xs[i][&idx];
            xs[i][&idx] = x0 + config.eps;
            let plus = eval(&xs);
            xs[i][&idx] = x0 - config.eps;
            let minus = eval(&xs);
            xs[i][&idx] = x0;
            numeric[i][&idx] = ((plus - minus) / (2.0 * config.eps as f64)) as f32;
        }
    }
    // The gradient's scale: its largest element, analytic or numeric, over every input.
    let g_max = analytic
        .iter()
        .chain(&numeric)
        .flat_map(|g| g.iter())
        .fold(0.0f32, |m, &g| m.max(g.abs()));
    // Pass 2: each element against its tolerance.
    let mut report = GradcheckReport {
        worst: None,
        worst_ratio: 0.0,
        checked: 0,
        g_max,
    };
    for (i, (a_i, n_i)) in analytic.iter().zip(&numeric).enumerate() {
        for ((idx, &a), &n) in a_i.indexed_iter().zip(n_i.iter()) {
            let tol = config.atol + config.gtol * g_max + config.rtol * a.abs().max(n.abs());
            let ratio = (a - n).abs() / tol;
            let ratio = if ratio.is_nan() { f32::INFINITY } else { ratio };
            report.checked += 1;
            if report.worst.is_none() || ratio > report.worst_ratio {
                report.worst_ratio = ratio;
                report.worst = Some(ElementCheck {
                    input: i,
                    index: idx.slice().to_vec(),
                    analytic: a,
                    numeric: n,
                });
            }
        }
    }
    report
}

/// Check the gradient of `f` with respect to every element of every parameter in `params` (a
/// layer's weights, say). `f` builds a one-element result on the tape it is given, reading the
/// parameters it needs from the store; it must be deterministic.
pub fn gradcheck_params(
    f: impl Fn(&mut Tape, &Params) -> Var,
    params: &Params,
    config: GradcheckConfig,
) -> Result<GradcheckReport, String> {
    let mut tape = Tape::new();
    let out = f(&mut tape, params);
    let grads = tape.backward(out);
    let ids: Vec<ParamId> = params.ids().collect();
    let values: Vec<ArrayD<f32>> = ids.iter().map(|&id| params.value(id).to_owned()).collect();
    let analytic: Vec<ArrayD<f32>> = ids
        .iter()
        .zip(&values)
        .map(|(&id, v)| grads.param(id).cloned().unwrap_or_else(|| ArrayD::zeros(v.raw_dim())))
        .collect();
    // Each evaluation runs f on a copy of the store holding the perturbed values.
    let eval = |xs: &[ArrayD<f32>]| -> f64 {
        let mut p = params.clone();
        for (&id, x) in ids.iter().zip(xs) {
            *p.value_mut(id) = x.clone().into_shared();
        }
        let mut tape = Tape::no_grad();
        tape.set_training(true);
        let out = f(&mut tape, &p);
        tape.scalar(out) as f64
    };
    let report = compare_with_finite_differences(values, &analytic, eval, config);
    if report.worst_ratio <= 1.0 {
        Ok(report)
    } else {
        let name = report.worst.as_ref().map(|w| params.name(ids[w.input]).to_string());
        Err(format!("{report} [parameter {}]", name.unwrap_or_default()))
    }
}
