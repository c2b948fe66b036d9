//! Backward: a reverse loop over the tape (the [module docs](super) say why no sort is needed).

use super::{Kind, Tape, Var};
use crate::gradients::Gradients;
use crate::tensor::{Grad, Tensor};
use ndarray::IxDyn;

impl Tape {
    /// Backpropagate from a one-element `loss`, seeding dL/dL = 1. Consumes the tape.
    pub fn backward(self, loss: Var) -> Gradients {
        let shape = self.shape(loss).to_vec();
        assert!(
            shape.iter().product::<usize>() == 1,
            "backward: the loss must hold exactly one element, got shape {shape:?} (reduce it with sum or mean first)"
        );
        self.backward_from(loss, Grad::ones(shape))
    }

    /// Backpropagate from any node with a chosen seed gradient dL/d(output) of the node's shape.
    /// Useful to ask "how does this one output depend on the inputs?".
    pub fn backward_from(mut self, output: Var, seed: Grad) -> Gradients {
        assert!(
            self.recording,
            "backward: this tape was made with Tape::no_grad and recorded no backward"
        );
        assert!(
            seed.shape() == self.shape(output),
            "backward: seed gradient has shape {:?} but the output has shape {:?}",
            seed.shape(),
            self.shape(output)
        );
        let mut grads = Gradients::with_leaves(self.nodes.len());
        // Nodes after `output` play no part: free them now.
        self.nodes.truncate(output.0 + 1);
        // pending[i] is the gradient accumulated so far for node i; backward only ever looks at
        // nodes up to `output`, all of which come earlier on the tape.
        let mut pending: Vec<Option<Grad>> = vec![None; output.0 + 1];
        if self.nodes[output.0].requires_grad {
            pending[output.0] = Some(seed);
        }
        for i in (0..=output.0).rev() {
            // Every consumer of node i sits after it and is done: once node i's own backward
            // has run (or has nothing to do), no one needs its value or its closure's saved
            // tensors again, so both are freed here rather than when the tape is dropped. The
            // peak memory of backward is then what forward kept, not that plus every gradient.
            let kind = std::mem::replace(&mut self.nodes[i].kind, Kind::Constant);
            if let Some(grad) = pending[i].take() {
                self.backward_node(i, kind, grad, &mut pending, &mut grads);
            } // else no gradient reached node i, and `kind` (its closure) is dropped here
            self.nodes[i].value = Tensor::zeros(IxDyn(&[0]));
        }
        grads
    }

    /// Node i's share of backward: hand its gradient to the leaf it is, or run its closure and
    /// add what it returns into its inputs' pending gradients.
    fn backward_node(&self, i: usize, kind: Kind, grad: Grad, pending: &mut [Option<Grad>], grads: &mut Gradients) {
        let node = &self.nodes[i];
        match kind {
            Kind::Constant => {}
            Kind::Input => grads.set_leaf(i, grad),
            Kind::Param(id) => grads.add_param(id, grad),
            Kind::NoBackward => panic!(
                "backward: op '{}' (node %{i}) has no backward, but a gradient flows through it; \
                 compute it from constants or on a no_grad tape",
                node.op
            ),
            Kind::Op(backward) => {
                let timer = self.start_backward_timer(&grad); // None unless profiling
                let input_grads = backward(grad); // dL/d(input) for each input
                let timer = timer.map(|t| t.closure_returned(&input_grads));
                let node = &self.nodes[i];
                assert_eq!(
                    input_grads.len(),
                    node.inputs.len(),
                    "backward of '{}' returned the wrong number of gradients",
                    node.op
                );
                for (&input, g) in node.inputs.iter().zip(input_grads) {
                    let input_node = &self.nodes[input.0];
                    if !input_node.requires_grad {
                        continue;
                    }
                    assert_eq!(
                        g.shape(),
                        input_node.value.shape(),
                        "backward of '{}' produced a gradient of the wrong shape for its input %{}",
                        node.op,
                        input.0
                    );
                    match &mut pending[input.0] {
                        Some(acc) => *acc += &g, // a value used twice: the gradients add
                        slot => *slot = Some(g),
                    }
                }
                if let Some(timer) = timer {
                    self.profile_backward(node, timer);
                }
            }
        }
    }
}

/// [`Gradients::wrt`] lives here, beside [`Var`], so that `gradients.rs` needs nothing from the
/// tape: the tape builds a [`Gradients`], never the other way round.
impl Gradients {
    /// dL/d(leaf) for a leaf made with [`Tape::input`]; `None` if no gradient reached it.
    pub fn wrt(&self, v: Var) -> Option<&Grad> {
        self.leaf(v.0)
    }
}
