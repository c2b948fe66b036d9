//! The fully connected layer as one op: y = x W^T + b, with W stored [out, in] (PyTorch's
//! layout). Fusing the bias into the product saves a full-size intermediate per layer (the
//! product before the bias) and a pass over memory; [`Tape::linear_reference`] builds the same
//! from `transpose`, `matmul` and `add`, and tests compare the two.

use crate::kernels::broadcast::sum_to_shape;
use crate::kernels::matmul::{matmul as gemm, matmul_then, t};
use crate::tape::{Tape, Var};
use ndarray::IxDyn;

impl Tape {
    /// y = x W^T + b for x `[..., in]`, W `[out, in]`, b `[out]` (or no bias).
    ///
    /// With g = dL/dy, and x2, g2 the inputs and gradients with the leading axes folded into
    /// rows ([R, in], [R, out]):
    ///   dL/dx = g W,   dL/dW = g2^T x2,   dL/db = sum over rows of g.
    ///
    /// The bias is added to each row of the product while it is in cache (the product's
    /// epilogue, [`matmul_then`]).
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        self.linear_then_add(x, w, b, None)
    }

    /// y = r + x W^T + b: a linear layer and the residual add after it, the add done in the
    /// product's epilogue, so the layer's own output is never a node (one [..., out] tensor
    /// less kept for backward, one pass over memory less). dL/dr = g; the rest as
    /// [`Tape::linear`]. The same bits as `add(r, linear(x, w, b))`.
    pub fn linear_residual(&mut self, x: Var, w: Var, b: Option<Var>, r: Var) -> Var {
        self.linear_then_add(x, w, b, Some(r))
    }

    fn linear_then_add(&mut self, x: Var, w: Var, b: Option<Var>, r: Option<Var>) -> Var {
        let (xv, wv) = (self.value(x).clone(), self.value(w).clone());
        let (xs, ws) = (xv.shape().to_vec(), wv.shape().to_vec());
        assert!(
            ws.len() == 2 && xs.last() == Some(&ws[1]),
            "linear: input {xs:?} does not fit weight {ws:?} (expected [..., in] and [out, in])"
        );
        let (out, d_in) = (ws[0], ws[1]);
        let bias = b.map(|b| {
            let bv = self.value(b).clone();
            assert!(
                bv.shape() == [out],
                "linear: bias {:?} does not fit weight {ws:?}",
                bv.shape()
            );
            bv
        });
        let residual = r.map(|r| self.value(r).as_standard_layout().into_owned());
        let mut ys = xs.clone();
        *ys.last_mut().expect("checked above") = out;
        if let Some(rv) = &residual {
            assert!(
                rv.shape() == ys,
                "linear: residual {:?} is not the output's shape {ys:?}",
                rv.shape()
            );
        }
        let rows = xv.len() / d_in.max(1);
        let x2 = xv.to_shape((rows, d_in)).expect("same element count"); // [R, in]
        let w_t = wv.view().into_dimensionality().expect("2-D").reversed_axes(); // W^T [in, out]
        let b_s = bias
            .as_ref()
            .map(|b| b.as_slice().expect("a 1-D parameter is contiguous"));
        let r_s = residual.as_ref().map(|r| r.as_slice().expect("standard layout"));
        // y = x W^T, then + b and + r on each row while it is in cache.
        let y = matmul_then(x2.view(), w_t, &|i, c0, row| {
            if let Some(b) = b_s {
                row.iter_mut().zip(&b[c0..]).for_each(|(y, b)| *y += b); // + b
            }
            if let Some(r) = r_s {
                row.iter_mut().zip(&r[i * out + c0..]).for_each(|(y, r)| *y += r);
                // r + ...
            }
        });
        let y = y.into_shape_with_order(IxDyn(&ys)).expect("same element count");
        let mut inputs = vec![x, w];
        inputs.extend(b);
        inputs.extend(r);
        let (has_bias, has_residual) = (b.is_some(), r.is_some());
        let op = if has_residual { "linear_residual" } else { "linear" };
        self.record(op, y, &inputs, move |g| {
            let dx = gemm(g.view(), wv.view()); // dL/dx = g W: from y = x W^T, [..., in]
            let x2 = xv.to_shape((rows, d_in)).expect("same element count"); // [R, in]
            let g2 = g.to_shape((rows, out)).expect("same element count"); // [R, out]

            // dL/dW = g2^T x2: from y = x W^T, every row of x meeting the same W, [out, in]
            let dw = gemm(t(g2.view().into_dyn()), x2.view().into_dyn());
            let mut grads = vec![dx, dw];
            match (has_bias, has_residual) {
                // dL/db = sum over rows of g: from y = ... + b, b added to every row, [out]
                (true, false) => grads.push(sum_to_shape(g, &[out])),
                (true, true) => {
                    grads.push(sum_to_shape(g.clone(), &[out]));
                    grads.push(g); // dL/dr = g: from y = r + ...
                }
                (false, true) => grads.push(g),
                (false, false) => {}
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
