//! The tape's hooks for [`profile`](crate::profile): with profiling on, each node's forward is
//! timed as the time since the node before it, and each backward closure (with the adding of
//! its gradients) on its own. Everything here runs only when [`Tape::new`] found profiling on;
//! off, the tape pays one untaken branch per node.

use super::{Node, Tape};
use crate::profile;
use crate::tensor::Grad;
use std::time::{Duration, Instant};

/// The timing of one backward closure, begun before it runs.
pub(super) struct BackwardTimer {
    start: Instant,
    /// The gradient handed to the closure: a returned gradient that is this one, reshaped, is
    /// not new memory.
    seed: *const f32,
    /// The f32s of the new gradients the closure returned.
    new_floats: usize,
}

impl BackwardTimer {
    /// Count the new gradients the closure returned.
    pub(super) fn closure_returned(mut self, input_grads: &[Grad]) -> BackwardTimer {
        let seed = self.seed;
        self.new_floats = input_grads.iter().filter(|g| g.as_ptr() != seed).map(|g| g.len()).sum();
        self
    }
}

impl Tape {
    /// Profiling: the time since the last node is this node's forward. Kept out of `push`, so
    /// that `push` stays small when off.
    #[cold]
    #[inline(never)]
    pub(super) fn profile_forward(&mut self, node: &Node) {
        let now = Instant::now();
        let view = node
            .inputs
            .iter()
            .any(|&v| self.value(v).as_ptr() == node.value.as_ptr());
        let bytes = if view {
            0
        } else {
            node.value.len() * std::mem::size_of::<f32>()
        };
        let last = self.clock.replace(now).expect("called only when profiling");
        profile::add_forward(node.op, now - last, self.flops(node), bytes);
    }

    /// A timer for the backward closure about to run on `grad`, when profiling.
    pub(super) fn start_backward_timer(&self, grad: &Grad) -> Option<BackwardTimer> {
        self.clock.map(|_| BackwardTimer {
            start: Instant::now(),
            seed: grad.as_ptr(),
            new_floats: 0,
        })
    }

    /// Profiling: `node`'s backward took from the timer's start until now.
    #[cold]
    #[inline(never)]
    pub(super) fn profile_backward(&self, node: &Node, timer: BackwardTimer) {
        let elapsed: Duration = timer.start.elapsed();
        let bytes = timer.new_floats * std::mem::size_of::<f32>();
        profile::add_backward(node.op, elapsed, self.flops(node), bytes);
    }

    /// The FLOPs [`profile::flops`] counts for `node`'s forward.
    fn flops(&self, node: &Node) -> f64 {
        let inputs: Vec<&[usize]> = node.inputs.iter().map(|&v| self.shape(v)).collect();
        profile::flops(node.op, node.value.shape(), &inputs)
    }
}
