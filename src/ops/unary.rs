//! Unary elementwise ops: y_i = f(x_i), so dL/dx_i = dL/dy_i * f'(x_i).
//!
//! Each op below states f and f'. Where f' is cheapest written with the output y (exp, sqrt,
//! tanh, sigmoid), backward keeps y instead of x.

use crate::kernels::elementwise::{map, zip_map};
use crate::tape::{Tape, Var};

impl Tape {
    /// y = -x. dL/dx = -dL/dy.
    pub fn neg(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), |v| -v);
        self.record("neg", y, &[x], |g| vec![-g])
    }

    /// y = x + c for a constant c. dL/dx = dL/dy.
    pub fn add_scalar(&mut self, x: Var, c: f32) -> Var {
        let y = map(self.value(x).view(), |v| v + c);
        self.record("add_scalar", y, &[x], |g| vec![g])
    }

    /// y = c * x for a constant c. dL/dx = c * dL/dy.
    pub fn mul_scalar(&mut self, x: Var, c: f32) -> Var {
        let y = map(self.value(x).view(), |v| c * v);
        self.record("mul_scalar", y, &[x], move |g| vec![map(g.view(), |g| c * g)])
    }

    /// y = x^p for a constant p. dL/dx = dL/dy * p * x^(p-1).
    pub fn powf(&mut self, x: Var, p: f32) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), |v| v.powf(p));
        self.record("powf", y, &[x], move |g| {
            vec![zip_map("powf backward", g.view(), xv.view(), |g, x| {
                g * p * x.powf(p - 1.0)
            })]
        })
    }

    /// y = e^x. dL/dx = dL/dy * y.
    pub fn exp(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::exp).into_shared();
        let y_saved = y.clone();
        self.record("exp", y, &[x], move |g| {
            vec![zip_map("exp backward", g.view(), y_saved.view(), |g, y| g * y)]
        })
    }

    /// y = ln x. dL/dx = dL/dy / x.
    pub fn log(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), f32::ln);
        self.record("log", y, &[x], move |g| {
            vec![zip_map("log backward", g.view(), xv.view(), |g, x| g / x)]
        })
    }

    /// y = sqrt(x). dL/dx = dL/dy / (2 y).
    pub fn sqrt(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::sqrt).into_shared();
        let y_saved = y.clone();
        self.record("sqrt", y, &[x], move |g| {
            vec![zip_map("sqrt backward", g.view(), y_saved.view(), |g, y| g / (2.0 * y))]
        })
    }

    /// y = tanh x. dL/dx = dL/dy * (1 - y^2).
    pub fn tanh(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), f32::tanh).into_shared();
        let y_saved = y.clone();
        self.record("tanh", y, &[x], move |g| {
            vec![zip_map("tanh backward", g.view(), y_saved.view(), |g, y| {
                g * (1.0 - y * y)
            })]
        })
    }

    /// y = sigmoid(x) = 1 / (1 + e^-x). dL/dx = dL/dy * y * (1 - y).
    pub fn sigmoid(&mut self, x: Var) -> Var {
        let y = map(self.value(x).view(), sigmoid).into_shared();
        let y_saved = y.clone();
        self.record("sigmoid", y, &[x], move |g| {
            vec![zip_map("sigmoid backward", g.view(), y_saved.view(), |g, y| {
                g * y * (1.0 - y)
            })]
        })
    }

    /// y = max(x, 0). dL/dx = dL/dy where x > 0, else 0 (we take 0 at x = 0).
    pub fn relu(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), |v| v.max(0.0));
        self.record("relu", y, &[x], move |g| {
            vec![zip_map("relu backward", g.view(), xv.view(), |g, x| {
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
    pub fn gelu(&mut self, x: Var) -> Var {
        let xv = self.value(x).clone();
        let y = map(xv.view(), |v| v * normal_cdf(v));
        self.record("gelu", y, &[x], move |g| {
            vec![zip_map("gelu backward", g.view(), xv.view(), |g, x| g * gelu_grad(x))]
        })
    }
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

/// Phi(x) = (1 + erf(x / sqrt 2)) / 2.
fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// d/dx [x Phi(x)] = Phi(x) + x phi(x).
fn gelu_grad(x: f32) -> f32 {
    let pdf = (-0.5 * x * x).exp() * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    normal_cdf(x) + x * pdf
}

/// The error function, computed in f64 with Abramowitz & Stegun formula 7.1.26
/// (|error| < 1.5e-7, below f32's resolution near 1), then rounded to f32.
pub fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if x >= 0.0 { y } else { -y }) as f32
}
