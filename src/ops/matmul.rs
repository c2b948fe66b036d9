//! Matrix multiplication on the tape: C = A·B for A [..., M, K] and B [..., K, N], with the
//! leading (batch) axes broadcast. The arithmetic is in [`kernels::matmul`](crate::kernels::matmul).

use crate::kernels::broadcast::sum_to_shape;
use crate::kernels::matmul::{matmul as gemm, t};
use crate::tape::{Tape, Var};

impl Tape {
    /// C = A·B.
    ///
    /// dL/dA = dL/dC · B^T and dL/dB = A^T · dL/dC, each summed over the batch axes its operand
    /// was broadcast along. The transposes are strided views; nothing is copied.
    ///
    /// ```
    /// use microlm::{Tape, Tensor};
    /// let mut tape = Tape::new();
    /// let a = tape.input(Tensor::from_shape_vec(vec![1, 2], vec![1.0, 2.0]).unwrap());
    /// let b = tape.constant(Tensor::from_shape_vec(vec![2, 1], vec![3.0, 4.0]).unwrap());
    /// let c = tape.matmul(a, b); // [[1*3 + 2*4]]
    /// assert_eq!(tape.scalar(c), 11.0);
    /// ```
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (self.value(a).clone(), self.value(b).clone());
        let c = gemm(av.view(), bv.view());
        self.record("matmul", c, &[a, b], move |g| {
            let (ra, rb) = (av.ndim(), bv.ndim());
            let da = gemm(g.view(), t(bv.view())); // dL/dA = dC · B^T: from C_ij = sum_p A_ip B_pj, [..., M, K]
            let db = if rb == 2 && ra > 2 {
                // B was shared by every matrix of the stack: fold the stack into rows,
                // dB = A2^T · dC2 with A2 = [(...)*M, K], dC2 = [(...)*M, N]. One product
                // instead of a product per batch element followed by a sum.
                let k = av.shape()[ra - 1];
                let n = g.shape()[g.ndim() - 1];
                let a2 = av.to_shape((av.len() / k.max(1), k)).expect("same element count");
                let g2 = g.to_shape((g.len() / n.max(1), n)).expect("same element count");
                gemm(t(a2.view().into_dyn()), g2.view().into_dyn())
            } else {
                gemm(t(av.view()), g.view()) // dL/dB = A^T · dC: from C_ij = sum_p A_ip B_pj, [..., K, N]
            };
            // Each summed over the batch axes its operand was broadcast along.
            vec![sum_to_shape(da, av.shape()), sum_to_shape(db, bv.shape())]
        })
    }
}
