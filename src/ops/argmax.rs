//! argmax: an op with no derivative. It exists to be useful (predictions, accuracy) and to show
//! the rule that an op without a backward is an error the moment a gradient must pass through
//! it, never a silently detached value.

use crate::tape::{Tape, Var};
use ndarray::{ArrayD, Axis};

impl Tape {
    /// The index of the largest value along `axis` (first on ties), as f32, with `axis` removed.
    ///
    /// Backward: none. A gradient reaching this node makes `backward` panic with its name.
    pub fn argmax(&mut self, x: Var, axis: usize) -> Var {
        let xv = self.value(x).clone();
        assert!(
            axis < xv.ndim(),
            "argmax: axis {axis} out of range for shape {:?}",
            xv.shape()
        );
        let y: ArrayD<f32> = xv.map_axis(Axis(axis), |lane| {
            let mut best = 0;
            for (j, &v) in lane.iter().enumerate() {
                if v > lane[best] {
                    best = j;
                }
            }
            best as f32
        });
        self.record_without_backward("argmax", y, &[x])
    }
}
