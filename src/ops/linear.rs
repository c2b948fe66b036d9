//! The fully connected layer as one op: y = x W^T + b, with W stored [out, in] (PyTorch's
//! layout). Fusing the bias into the product saves a full-size intermediate per layer (the
//! product before the bias) and a pass over memory; [`Tape::linear_reference`] builds the same
//! from `transpose`, `matmul` and `add`, and tests compare the two.

use crate::kernels::broadcast::sum_to_shape;
use crate::kernels::matmul::{matmul as gemm, t};
use crate::kernels::rows_per_task;
use crate::tape::{Tape, Var};
use rayon::prelude::*;

impl Tape {
    /// y = x W^T + b for x `[..., in]`, W `[out, in]`, b `[out]` (or no bias).
    ///
    /// With g = dL/dy, and x2, g2 the inputs and gradients with the leading axes folded into
    /// rows ([R, in], [R, out]):
    ///   dL/dx = g W,   dL/dW = g2^T x2,   dL/db = sum over rows of g.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        let (xv, wv) = (self.value(x).clone(), self.value(w).clone());
        let (xs, ws) = (xv.shape().to_vec(), wv.shape().to_vec());
        assert!(
            ws.len() == 2 && xs.last() == Some(&ws[1]),
            "linear: input {xs:?} does not fit weight {ws:?} (expected [..., in] and [out, in])"
        );
        let out = ws[0];
        let mut y = gemm(xv.view(), t(wv.view())); // x W^T, [..., out]
        let mut inputs = vec![x, w];
        if let Some(b) = b {
            let bv = self.value(b).clone();
            assert!(
                bv.shape() == [out],
                "linear: bias {:?} does not fit weight {ws:?}",
                bv.shape()
            );
            let bias = bv.as_slice().expect("a 1-D parameter is contiguous").to_vec();
            let ys = y.as_slice_mut().expect("a new array is contiguous");
            // Blocks of rows on rayon's threads (one block: on this thread).
            ys.par_chunks_mut(rows_per_task(out) * out.max(1)).for_each(|rows| {
                for row in rows.chunks_mut(out) {
                    row.iter_mut().zip(&bias).for_each(|(y, b)| *y += b);
                }
            });
            inputs.push(b);
        }
        let has_bias = b.is_some();
        self.record("linear", y, &inputs, move |g| {
            let d_in = ws[1];
            let dx = gemm(g.view(), wv.view()); // dL/dx = g W: from y = x W^T, [..., in]
            let rows = xv.len() / d_in.max(1);
            let x2 = xv.to_shape((rows, d_in)).expect("same element count"); // [R, in]
            let g2 = g.to_shape((rows, out)).expect("same element count"); // [R, out]

            // dL/dW = g2^T x2: from y = x W^T, every row of x meeting the same W, [out, in]
            let dw = gemm(t(g2.view().into_dyn()), x2.view().into_dyn());
            let mut grads = vec![dx, dw];
            if has_bias {
                // dL/db = sum over rows of g: from y = ... + b, b added to every row, [out]
                grads.push(sum_to_shape(g, &[out]));
            }
            grads
        })
    }

    /// The same layer composed of primitive ops: matmul(x, transpose(W)) + b. The slow
    /// reference [`Tape::linear`] is tested against.
    pub fn linear_reference(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        let w_t = self.transpose(w, 0, 1);
        let y = self.matmul(x, w_t);
        match b {
            Some(b) => self.add(y, b),
            None => y,
        }
    }
}
