//! Unary elementwise ops: y_i = f(x_i), so dL/dx_i = dL/dy_i * f'(x_i).
//!
//! Each op below states f and f'. Where f' is cheapest written with the output y (exp, sqrt,
//! tanh, sigmoid), backward keeps y instead of x.

use crate::kernels::elementwise::{map, zip_map};
use crate::kernels::vector::exp as fast_exp;
use crate::tape::{Tape, Var};

impl Tape {
    /// y = -x. dL/dx = -dL/dy.
    pub fn neg(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), |v| -v);
        self.record("neg", y, &[x], |g| {
            vec![-g] // dy/dx = -1: from y = -x
        })
    }

    /// y = x + c for a constant c. dL/dx = dL/dy.
    pub fn add_scalar(&mut self, x: Var, c: f32) -> Var {
        let y = map(self.value(x).view(), |v| v + c);
        self.record("add_scalar", y, &[x], |g| {
            vec![g] // dy/dx = 1: from y = x + c
        })
    }

    /// y = c * x for a constant c. dL/dx = c * dL/dy.
    pub fn mul_scalar(&mut self, x: Var, c: f32) -> Var {
        let y = map(self.value(x).view(), |v| c * v);
        self.record("mul_scalar", y, &[x], move |g| {
            vec![map(g.view(), |g| c * g)] // dy/dx = c: from y = c x
        })
    }

    /// y = x^p for a constant p. dL/dx = dL/dy * p * x^(p-1).
    pub fn powf(&mut self, x: Var, p: f32) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), |v| v.powf(p));
        self.record("powf", y, &[x], move |g| {
            vec![zip_map("powf backward", g.view(), xv.view(), |g, x| {
                g * p * x.powf(p - 1.0) // dy/dx = p x^(p-1): from y = x^p
            })]
        })
    }

    /// y = e^x. dL/dx = dL/dy * y.
    pub fn exp(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::exp).into_shared();
        let y_saved = y.clone();
        self.record("exp", y, &[x], move |g| {
            // dy/dx = e^x = y: from y = e^x
            vec![zip_map("exp backward", g.view(), y_saved.view(), |g, y| g * y)]
        })
    }

    /// y = ln x. dL/dx = dL/dy / x.
    pub fn log(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), f32::ln);
        self.record("log", y, &[x], move |g| {
            vec![zip_map("log backward", g.view(), xv.view(), |g, x| g / x)] // dy/dx = 1/x: from y = ln x
        })
    }

    /// y = sqrt(x). dL/dx = dL/dy / (2 y).
    pub fn sqrt(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::sqrt).into_shared();
        let y_saved = y.clone();
        self.record("sqrt", y, &[x], move |g| {
            // dy/dx = 1 / (2 sqrt x) = 1 / (2 y): from y = sqrt(x)
            vec![zip_map("sqrt backward", g.view(), y_saved.view(), |g, y| g / (2.0 * y))]
        })
    }

    /// y = tanh x. dL/dx = dL/dy * (1 - y^2).
    pub fn tanh(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::tanh).into_shared();
        let y_saved = y.clone();
        self.record("tanh", y, &[x], move |g| {
            vec![zip_map("tanh backward", g.view(), y_saved.view(), |g, y| {
                g * (1.0 - y * y) // dy/dx = 1 - tanh^2 x = 1 - y^2: from y = tanh x
            })]
        })
    }

    /// y = sigmoid(x) = 1 / (1 + e^-x). dL/dx = dL/dy * y * (1 - y).
    pub fn sigmoid(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), sigmoid).into_shared();
        let y_saved = y.clone();
        self.record("sigmoid", y, &[x], move |g| {
            vec![zip_map("sigmoid backward", g.view(), y_saved.view(), |g, y| {
                g * y * (1.0 - y) // dy/dx = e^-x / (1 + e^-x)^2 = y (1 - y): from y = 1 / (1 + e^-x)
            })]
        })
    }

    /// y = max(x, 0). dL/dx = dL/dy where x > 0, else 0 (we take 0 at x = 0).
    pub fn relu(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), |v| v.max(0.0));
        self.record("relu", y, &[x], move |g| {
            vec![zip_map("relu backward", g.view(), xv.view(), |g, x| {
                // dy/dx = 1 where x > 0, 0 elsewhere: from y = max(x, 0)
                if x > 0.0 {
                    g
                } else {
                    0.0
                }
            })]
        })
    }

    /// GELU, the exact form (as PyTorch's default `approximate="none"`):
    /// y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF.
    ///
    /// dL/dx = dL/dy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the normal PDF.
    ///
    /// In a transformer's feed-forward, [`Tape::feed_forward`] carries this formula fused
    /// into its first product (the same functions, the same bits).
    pub fn gelu(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), gelu);
        self.record("gelu", y, &[x], move |g| {
            vec![zip_map("gelu backward", g.view(), xv.view(), |g, x| g * gelu_slope(x))]
        })
    }

    /// GELU by the tanh approximation (Hendrycks & Gimpel, 2016; GPT-2; PyTorch's
    /// `approximate="tanh"`):
    /// y = x/2 (1 + tanh u),  u = k (x + a x^3),  k = sqrt(2/pi),  a = 0.044715.
    ///
    /// With t = tanh u, the product rule and tanh' = 1 - t^2 give
    /// dy/dx = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 a x^2).
    /// It differs from the exact [`Tape::gelu`] by at most 4.8e-4 (near x = -2.7). Fused into
    /// [`Tape::feed_forward`] there, as GELU is.
    pub fn gelu_tanh(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), gelu_tanh);
        self.record("gelu_tanh", y, &[x], move |g| {
            vec![zip_map("gelu_tanh backward", g.view(), xv.view(), |g, x| {
                g * gelu_tanh_slope(x)
            })]
        })
    }
}

/// GELU's value, y = x Phi(x) ([`Tape::gelu`]; also the fused feed-forward's).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    x * normal_cdf_pdf(x).0
}

/// GELU's slope, dy/dx = Phi(x) + x phi(x): from y = x Phi(x), Phi' = phi.
#[inline(always)]
pub(crate) fn gelu_slope(x: f32) -> f32 {
    let (cdf, pdf) = normal_cdf_pdf(x);
    cdf + x * pdf
}

/// The tanh approximation's value, y = x/2 (1 + tanh u) ([`Tape::gelu_tanh`]).
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + gelu_tanh_inner(x).tanh())
}

/// The tanh approximation's slope, dy/dx = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 a x^2).
#[inline(always)]
pub(crate) fn gelu_tanh_slope(x: f32) -> f32 {
    let t = gelu_tanh_inner(x).tanh(); // t = tanh u
    let du_dx = GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_A * x * x); // u = k (x + a x^3)
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx // y = x/2 (1 + t)
}

/// k = sqrt(2 / pi), the scale inside the tanh of [`Tape::gelu_tanh`].
const GELU_TANH_K: f32 = 0.797_884_6;
/// a = 0.044715, the cubic coefficient of [`Tape::gelu_tanh`].
const GELU_TANH_A: f32 = 0.044_715;

/// u = k (x + a x^3), the argument of the tanh in [`Tape::gelu_tanh`].
#[inline(always)]
fn gelu_tanh_inner(x: f32) -> f32 {
    GELU_TANH_K * (x + GELU_TANH_A * x * x * x)
}

/// 1 / (1 + e^-x), written so that neither branch overflows.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The standard normal CDF and PDF at x: Phi(x) = (1 + erf(x / sqrt 2)) / 2 and
/// phi(x) = e^(-x^2/2) / sqrt(2 pi). They share one exponential: erf(u) = 1 - p(t) e^(-u^2) by
/// Abramowitz & Stegun 7.1.26, and with u = x / sqrt 2, e^(-u^2) = e^(-x^2/2).
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    let u = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let e = fast_exp(-0.5 * x * x); // e^(-u^2) = e^(-x^2/2)
    let t = 1.0 / (1.0 + 0.327_591_1 * u);
    let p = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf_u = 1.0 - p * e; // erf(|x| / sqrt 2)
    let cdf = if x >= 0.0 {
        0.5 * (1.0 + erf_u)
    } else {
        0.5 * (1.0 - erf_u)
    };
    let pdf = e * 0.398_942_3; // 1 / sqrt(2 pi)
    (cdf, pdf)
}

/// The error function by Abramowitz & Stegun formula 7.1.26: |error| < 1.5e-7 in exact
/// arithmetic, plus f32 rounding (a few 1e-8).
///
/// ```
/// assert!((microlm::ops::erf(0.5) - 0.520_499_9).abs() < 3e-7);
/// assert!((microlm::ops::erf(-2.0) + 0.995_322_3).abs() < 3e-7);
/// ```
pub fn erf(x: f32) -> f32 {
    let (cdf, _) = normal_cdf_pdf(x * std::f32::consts::SQRT_2);
    2.0 * cdf - 1.0
}
