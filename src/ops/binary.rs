//! Binary elementwise ops with numpy-style broadcasting: add, sub, mul, div.
//!
//! In forward, the operands are broadcast to a common shape (see
//! [`broadcast`](crate::kernels::broadcast)). In backward, each operand's gradient is computed
//! at the output's shape and then summed back down to the operand's own shape.

use crate::kernels::broadcast::sum_to_shape;
use crate::kernels::elementwise::zip_map;
use crate::tape::{Tape, Var};

impl Tape {
    /// z = a + b.
    ///
    /// dL/da = dL/dz, dL/db = dL/dz (each summed over the axes it was broadcast along).
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a).clone(), self.value(b).clone());
        let z = zip_map("add", av.view(), bv.view(), |x, y| x + y);
        let (sa, sb) = (av.shape().to_vec(), bv.shape().to_vec());
        self.record("add", z, &[a, b], move |g| {
            // dz/da = 1 and dz/db = 1: from z = a + b; summed over the broadcast axes
            vec![sum_to_shape(g.clone(), &sa), sum_to_shape(g, &sb)]
        })
    }

    /// z = a - b.
    ///
    /// dL/da = dL/dz, dL/db = -dL/dz.
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a).clone(), self.value(b).clone());
        let z = zip_map("sub", av.view(), bv.view(), |x, y| x - y);
        let (sa, sb) = (av.shape().to_vec(), bv.shape().to_vec());
        self.record("sub", z, &[a, b], move |g| {
            let gb = sum_to_shape(-&g, &sb); // dz/db = -1: from z = a - b
            vec![sum_to_shape(g, &sa), gb] // dz/da = 1: from z = a - b
        })
    }

    /// z = a * b.
    ///
    /// dL/da = dL/dz * b, dL/db = dL/dz * a.
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a).clone(), self.value(b).clone());
        let z = zip_map("mul", av.view(), bv.view(), |x, y| x * y);
        self.record("mul", z, &[a, b], move |g| {
            let ga = zip_map("mul backward", g.view(), bv.view(), |g, b| g * b); // dz/da = b: from z = a b
            let gb = zip_map("mul backward", g.view(), av.view(), |g, a| g * a); // dz/db = a: from z = a b
            vec![sum_to_shape(ga, av.shape()), sum_to_shape(gb, bv.shape())]
        })
    }

    /// z = a / b.
    ///
    /// dL/da = dL/dz / b, dL/db = -dL/dz * a / b^2 = -dL/dz * z / b.
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a).clone(), self.value(b).clone());
        let z = zip_map("div", av.view(), bv.view(), |x, y| x / y);
        self.record("div", z, &[a, b], move |g| {
            // dz/da = 1/b: from z = a / b
            let ga = zip_map("div backward", g.view(), bv.view(), |g, b| g / b);
            // dz/db = -a / b^2: from z = a / b (as -g a / b^2, with a and b broadcast to g's shape)
            let g_a = zip_map("div backward", g.view(), av.view(), |g, a| g * a);
            let gb = zip_map("div backward", g_a.view(), bv.view(), |ga, b| -ga / (b * b));
            vec![sum_to_shape(ga, av.shape()), sum_to_shape(gb, bv.shape())]
        })
    }
}
