//! gradcheck: compare the gradients backward computes with central finite differences.
//!
//! For a scalar function f of tensors and every element x_i of every input,
//!   numeric_i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),
//! whose error is O(eps^2) from truncation plus about u |f| / eps from f32 rounding
//! (u = 6e-8). The element passes when |analytic - numeric| <= atol + rtol * max(|analytic|,
//! |numeric|). NOTES.md explains the defaults.

use crate::tape::{Tape, Var};
use crate::{ParamId, Params};
use ndarray::{ArrayD, Dimension};

/// Step and tolerances of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckConfig {
    /// Finite-difference step.
    pub eps: f32,
    /// Absolute tolerance.
    pub atol: f32,
    /// Relative tolerance.
    pub rtol: f32,
}

impl Default for GradcheckConfig {
    /// eps = 1e-2, atol = 1e-3, rtol = 1e-2 (see NOTES.md, "Choosing gradcheck's tolerances").
    fn default() -> Self {
        GradcheckConfig {
            eps: 1e-2,
            atol: 1e-3,
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
    /// The element with the largest |analytic - numeric| / (atol + rtol * scale), if any.
    pub worst: Option<ElementCheck>,
    /// That ratio: the check passed if it is at most 1.
    pub worst_ratio: f32,
    /// Number of elements checked.
    pub checked: usize,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.worst {
            None => write!(f, "gradcheck: no elements"),
            Some(w) => write!(
                f,
                "gradcheck over {} elements: worst is input {} at {:?}: analytic {:.6e}, numeric {:.6e} ({:.2} of tolerance)",
                self.checked, w.input, w.index, w.analytic, w.numeric, self.worst_ratio
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
/// `eval` against `analytic`, keeping the worst element relative to its tolerance.
fn compare_with_finite_differences(
    mut xs: Vec<ArrayD<f32>>,
    analytic: &[ArrayD<f32>],
    eval: impl Fn(&[ArrayD<f32>]) -> f64,
    config: GradcheckConfig,
) -> GradcheckReport {
    let mut report = GradcheckReport {
        worst: None,
        worst_ratio: 0.0,
        checked: 0,
    };
    for i in 0..xs.len() {
        for idx in ndarray::indices(xs[i].raw_dim()) {
            let x0 = xs[i][&idx];
            xs[i][&idx] = x0 + config.eps;
            let plus = eval(&xs);
            xs[i][&idx] = x0 - config.eps;
            let minus = eval(&xs);
            xs[i][&idx] = x0;
            let numeric = ((plus - minus) / (2.0 * config.eps as f64)) as f32;
            let a = analytic[i][&idx];
            let tol = config.atol + config.rtol * a.abs().max(numeric.abs());
            let ratio = (a - numeric).abs() / tol;
            let ratio = if ratio.is_nan() { f32::INFINITY } else { ratio };
            report.checked += 1;
            if report.worst.is_none() || ratio > report.worst_ratio {
                report.worst_ratio = ratio;
                report.worst = Some(ElementCheck {
                    input: i,
                    index: idx.slice().to_vec(),
                    analytic: a,
                    numeric,
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
