//! The tape: a define-by-run record of one forward pass, and `backward`, a reverse loop over it.
//!
//! A [`Tape`] is an arena. Every op appends one [`Node`] holding its output value, the handles
//! of its inputs, and a closure that maps the gradient of its output to the gradients of its
//! inputs. A [`Var`] is just the index of a node, so it is `Copy` and cheap to pass around.
//!
//! Because nodes are appended in execution order, every node's inputs sit at smaller indices.
//! Backward therefore needs no topological sort: it walks the arena from the loss down to index
//! 0, and by the time it reaches a node, every consumer of that node (all at larger indices) has
//! already added its share into the node's gradient. A value used twice gets two contributions,
//! summed.
//!
//! Parameters live in [`Params`], outside the tape. `tape.param(&params, id)`
//! puts a leaf on the tape that shares the parameter's storage (no copy); backward hands back a
//! [`Gradients`](crate::gradients::Gradients) holding one gradient per parameter used. A tape is thrown away after `backward`,
//! which takes it by value: a second `backward` on the same record cannot compile, so gradients
//! cannot be doubled by accident.
//!
//! The file holds the arena and how ops record onto it; `backward.rs` holds the reverse loop,
//! and `profiling.rs` the hooks that time each op when [`profile`] is on.
//!
//! ```compile_fail
//! use microlm::{Tape, Tensor};
//! let mut tape = Tape::new();
//! let x = tape.input(Tensor::from_elem(vec![1], 2.0));
//! let y = tape.mul(x, x);
//! let g1 = tape.backward(y);
//! let g2 = tape.backward(y); // error: `tape` was moved by the first backward
//! ```

mod backward;
mod checkpoint;
mod profiling;

use crate::params::{ParamId, Params};
use crate::profile;
use crate::tensor::{Grad, Tensor};
pub use checkpoint::{checkpoint_blocks_enabled, set_checkpoint_blocks, Block};
use std::time::Instant;

/// A handle to a value recorded on a [`Tape`]: the index of its node. Only meaningful for the
/// tape that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub(crate) usize);

impl Var {
    /// The node's position on its tape.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The backward of one op: given dL/d(output), return dL/d(input) for each input, in order.
type BackwardFn = Box<dyn FnOnce(Grad) -> Vec<Grad>>;

/// What kind of node this is, which decides what backward does with its gradient.
enum Kind {
    /// Data that wants no gradient.
    Constant,
    /// A leaf whose gradient `backward` returns ([`Tape::input`]).
    Input,
    /// A leaf that is a parameter; its gradient goes to `Gradients::param`.
    Param(ParamId),
    /// The output of an op that knows its backward.
    Op(BackwardFn),
    /// The output of an op that has no backward. Reaching it with a gradient is an error.
    NoBackward,
}

/// One recorded op (or leaf).
pub struct Node {
    op: &'static str,
    value: Tensor,
    inputs: Vec<Var>,
    kind: Kind,
    requires_grad: bool,
}

/// A record of one forward pass. See the [module docs](self).
///
/// ```
/// use microlm::{Tape, Tensor};
/// let mut tape = Tape::new();
/// let x = tape.input(Tensor::from_elem(vec![1], 3.0));
/// let y = tape.mul(x, x); // y = x^2
/// let grads = tape.backward(y);
/// assert_eq!(grads.wrt(x).unwrap()[[0]], 6.0); // dy/dx = 2x
/// ```
pub struct Tape {
    nodes: Vec<Node>,
    recording: bool,
    training: bool,
    /// With [`profile`](crate::profile) on: when the last node was recorded.
    clock: Option<Instant>,
    /// Whether layers run their blocks through [`Tape::checkpoint`].
    checkpoint_blocks: bool,
    /// While a checkpointed block runs its forward: the parameters it reads.
    param_log: Option<Vec<ParamId>>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// A tape in training mode: it records backward closures, and dropout is active.
    pub fn new() -> Tape {
        Tape {
            nodes: Vec::new(),
            recording: true,
            training: true,
            clock: profile::enabled().then(Instant::now),
            checkpoint_blocks: checkpoint::checkpoint_blocks_enabled(),
            param_log: None,
        }
    }

    /// A tape in evaluation mode: ops compute their values but record no backward and keep no
    /// caches for one, no gradient memory is ever allocated, and dropout is the identity.
    pub fn no_grad() -> Tape {
        Tape {
            nodes: Vec::new(),
            recording: false,
            training: false,
            clock: None, // evaluation is not part of a training step
            checkpoint_blocks: false,
            param_log: None,
        }
    }

    /// Whether ops record their backward.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Whether dropout is active (true on [`Tape::new`], false on [`Tape::no_grad`]).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Turn dropout on or off without changing whether gradients are recorded (for example, to
    /// gradcheck a model deterministically).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The value of a recorded node.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.node(v).value
    }

    /// The shape of a recorded node's value.
    pub fn shape(&self, v: Var) -> &[usize] {
        self.node(v).value.shape()
    }

    /// The value of a one-element node as a plain number (a loss, say).
    pub fn scalar(&self, v: Var) -> f32 {
        let t = self.value(v);
        assert!(
            t.len() == 1,
            "scalar: expected a one-element tensor, got shape {:?}",
            t.shape()
        );
        t.iter().next().copied().unwrap()
    }

    /// Whether gradients flow into this node.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.node(v).requires_grad
    }

    fn node(&self, v: Var) -> &Node {
        self.nodes
            .get(v.0)
            .unwrap_or_else(|| panic!("Var({}) does not belong to this tape ({} nodes)", v.0, self.nodes.len()))
    }

    fn push(&mut self, node: Node) -> Var {
        if self.clock.is_some() {
            self.profile_forward(&node);
        }
        self.nodes.push(node);
        Var(self.nodes.len() - 1)
    }

    /// Put data on the tape that needs no gradient (inputs, masks, targets).
    pub fn constant(&mut self, value: impl Into<Tensor>) -> Var {
        let value = value.into();
        self.push(Node {
            op: "constant",
            value,
            inputs: Vec::new(),
            kind: Kind::Constant,
            requires_grad: false,
        })
    }

    /// Put a leaf on the tape whose gradient `backward` returns (read it with
    /// [`Gradients::wrt`](crate::gradients::Gradients::wrt)). On a no-grad tape this is the same as [`Tape::constant`].
    pub fn input(&mut self, value: impl Into<Tensor>) -> Var {
        let value = value.into();
        let (kind, requires_grad) = if self.recording {
            (Kind::Input, true)
        } else {
            (Kind::Constant, false)
        };
        self.push(Node {
            op: "input",
            value,
            inputs: Vec::new(),
            kind,
            requires_grad,
        })
    }

    /// Put a parameter on the tape. The node shares the parameter's storage; nothing is copied.
    pub fn param(&mut self, params: &Params, id: ParamId) -> Var {
        if let Some(log) = &mut self.param_log {
            log.push(id);
        }
        let value = params.value(id).clone();
        let (kind, requires_grad) = if self.recording {
            (Kind::Param(id), true)
        } else {
            (Kind::Constant, false)
        };
        self.push(Node {
            op: "param",
            value,
            inputs: Vec::new(),
            kind,
            requires_grad,
        })
    }

    /// True when an op over these inputs must record its backward: the tape is recording and at
    /// least one input wants a gradient. Ops may use it to skip work done only for backward.
    pub fn needs_grad(&self, inputs: &[Var]) -> bool {
        self.recording && inputs.iter().any(|&v| self.node(v).requires_grad)
    }

    /// Record an op's output together with its backward. The closure receives dL/d(output) and
    /// returns dL/d(input) for every input, in the order of `inputs`. It is boxed and kept only
    /// when [`Tape::needs_grad`] says so; otherwise it is dropped at once.
    pub fn record(
        &mut self,
        op: &'static str,
        value: impl Into<Tensor>,
        inputs: &[Var],
        backward: impl FnOnce(Grad) -> Vec<Grad> + 'static,
    ) -> Var {
        let value = value.into();
        if self.needs_grad(inputs) {
            let kind = Kind::Op(Box::new(backward));
            self.push(Node {
                op,
                value,
                inputs: inputs.to_vec(),
                kind,
                requires_grad: true,
            })
        } else {
            self.push(Node {
                op,
                value,
                inputs: inputs.to_vec(),
                kind: Kind::Constant,
                requires_grad: false,
            })
        }
    }

    /// Record an op that has no backward (argmax, comparisons, ...). Its output still "requires
    /// grad" when an input does, so that a gradient arriving at it during backward is reported
    /// as an error instead of being silently dropped.
    pub fn record_without_backward(&mut self, op: &'static str, value: impl Into<Tensor>, inputs: &[Var]) -> Var {
        let value = value.into();
        let requires_grad = self.needs_grad(inputs);
        let kind = if requires_grad {
            Kind::NoBackward
        } else {
            Kind::Constant
        };
        self.push(Node {
            op,
            value,
            inputs: inputs.to_vec(),
            kind,
            requires_grad,
        })
    }

    /// A listing of the recorded ops, one line each: index, op, shape, inputs.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let inputs: Vec<String> = n.inputs.iter().map(|v| format!("%{}", v.0)).collect();
            let grad = if n.requires_grad { "" } else { "  (no grad)" };
            s.push_str(&format!(
                "%{i:<3} = {:<16} {:?} <- [{}]{grad}\n",
                n.op,
                n.value.shape(),
                inputs.join(", ")
            ));
        }
        s
    }
}
