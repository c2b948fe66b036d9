//! Activation checkpointing: keep a block's inputs, not its inside, and run the block again
//! during backward (Chen et al., 2016, "Training Deep Nets with Sublinear Memory Cost").
//!
//! A Transformer block keeps about a dozen [B, T, D]-sized tensors for its backward. With
//! [`Tape::checkpoint`] the outer tape keeps one node for the whole block: its output, plus the
//! block's inputs and a way to run it again. Forward runs the block on an inner tape that records
//! no backward (so nothing is kept); backward runs it once more on a recording tape, from the
//! same inputs with the same parameters and the same random draws, backpropagates the gradient
//! that reached the block's output through it, and hands the gradients of the inputs and of the
//! parameters back to the outer tape. The cost is one more forward of the block per step (about a
//! third more compute); the saving is every tensor inside the block, held now only while that
//! one block's backward runs.
//!
//! The replayed forward is the same computation on the same values, so its outputs, and the
//! gradients, are the same bits as without checkpointing. Dropout inside the block draws its
//! seeds from the caller's generator: forward logs every draw, and the replay hands out the
//! logged ones, so the recomputed masks are the ones forward used.

use super::{Tape, Var};
use crate::params::Params;
use crate::tensor::{Grad, Tensor};
use rand::RngCore;
use std::sync::atomic::{AtomicBool, Ordering};

static CHECKPOINT_BLOCKS: AtomicBool = AtomicBool::new(false);

/// Turn per-block checkpointing on or off for tapes made from now on (`--checkpoint-blocks`).
/// Layers that support it ask their tape ([`Tape::checkpoints_blocks`]).
pub fn set_checkpoint_blocks(on: bool) {
    CHECKPOINT_BLOCKS.store(on, Ordering::Relaxed);
}

/// Whether tapes made now checkpoint their blocks.
pub fn checkpoint_blocks_enabled() -> bool {
    CHECKPOINT_BLOCKS.load(Ordering::Relaxed)
}

/// A block, run on some tape: (tape, parameters, the block's inputs, a generator) -> output.
pub type Block = dyn Fn(&mut Tape, &Params, &[Var], &mut dyn RngCore) -> Var;

/// A generator that passes draws through from `inner` and logs their bytes.
struct Logging<'a> {
    inner: &'a mut dyn RngCore,
    log: Vec<u8>,
}

impl RngCore for Logging<'_> {
    fn next_u32(&mut self) -> u32 {
        let x = self.inner.next_u32();
        self.log.extend_from_slice(&x.to_le_bytes());
        x
    }
    fn next_u64(&mut self) -> u64 {
        let x = self.inner.next_u64();
        self.log.extend_from_slice(&x.to_le_bytes());
        x
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.inner.fill_bytes(dst);
        self.log.extend_from_slice(dst);
    }
}

/// A generator that hands out a log's bytes again, in the order they were drawn.
struct Replay {
    log: Vec<u8>,
    at: usize,
}

impl Replay {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill_bytes(&mut out);
        out
    }
}

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        let end = self.at + dst.len();
        assert!(
            end <= self.log.len(),
            "checkpoint: the recomputed block drew more random numbers than its forward did"
        );
        dst.copy_from_slice(&self.log[self.at..end]);
        self.at = end;
    }
}

impl Tape {
    /// Whether layers should run their blocks through [`Tape::checkpoint`]: set from
    /// [`set_checkpoint_blocks`] when the tape is made, or with [`Tape::set_checkpoint_blocks`].
    pub fn checkpoints_blocks(&self) -> bool {
        self.checkpoint_blocks && self.recording
    }

    /// Turn per-block checkpointing on or off for this tape.
    pub fn set_checkpoint_blocks(&mut self, on: bool) {
        self.checkpoint_blocks = on;
    }

    /// Run `block` on `inputs` as one node that keeps only the inputs: forward on a tape that
    /// keeps nothing, backward by running the block again on a recording tape with the same
    /// random draws (activation checkpointing). `block` must be a pure function of its inputs, the parameters it reads
    /// and the numbers it draws from its generator; it is run twice, once here and once in
    /// backward. On a tape that records no backward, it simply runs the block.
    pub fn checkpoint(
        &mut self,
        op: &'static str,
        params: &Params,
        inputs: &[Var],
        rng: &mut dyn RngCore,
        block: Box<Block>,
    ) -> Var {
        if !self.recording {
            return block(self, params, inputs, rng);
        }
        // Forward on a tape that keeps nothing for backward, logging the parameters read and
        // the random numbers drawn.
        let mut inner = Tape::no_grad();
        inner.set_training(self.training);
        inner.param_log = Some(Vec::new());
        let xs: Vec<Var> = inputs.iter().map(|&v| inner.constant(self.value(v).clone())).collect();
        let mut logging = Logging {
            inner: rng,
            log: Vec::new(),
        };
        let y = block(&mut inner, params, &xs, &mut logging);
        let value = inner.value(y).clone();
        let mut ids = inner.param_log.take().unwrap_or_default();
        ids.sort();
        ids.dedup();
        drop(inner);

        let saved: Vec<Tensor> = inputs.iter().map(|&v| self.value(v).clone()).collect();
        let mut all_inputs = inputs.to_vec();
        all_inputs.extend(ids.iter().map(|&id| self.param(params, id)));
        let (params, training, log) = (params.clone(), self.training, logging.log);
        self.record(op, value, &all_inputs, move |g| {
            // The block again, recorded this time, from the same inputs and draws.
            let mut tape = Tape::new();
            tape.clock = None; // its ops are this node's backward, timed as one
            tape.checkpoint_blocks = false;
            tape.set_training(training);
            let xs: Vec<Var> = saved.into_iter().map(|x| tape.input(x)).collect();
            let mut replay = Replay { log, at: 0 };
            let y = block(&mut tape, &params, &xs, &mut replay);
            let shapes: Vec<Vec<usize>> = xs.iter().map(|&x| tape.shape(x).to_vec()).collect();
            let mut grads = tape.backward_from(y, g);
            // dL/d(input) and dL/d(parameter), zeros where none reached one
            let mut out: Vec<Grad> = (xs.iter().zip(shapes))
                .map(|(&x, shape)| grads.take_leaf(x.0).unwrap_or_else(|| Grad::zeros(shape)))
                .collect();
            out.extend(ids.iter().map(|&id| {
                grads
                    .take_param(id)
                    .unwrap_or_else(|| Grad::zeros(params.value(id).raw_dim()))
            }));
            out
        })
    }
}
