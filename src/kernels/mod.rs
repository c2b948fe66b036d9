//! Kernels: the loops that do the arithmetic, free of any autograd bookkeeping.
//!
//! The ops in [`crate::ops`] call these for their forward and backward. Each kernel runs in
//! parallel with rayon once the work is large enough to pay for it ([`PAR_MIN_ELEMENTS`]).

pub mod broadcast;
pub mod elementwise;
pub mod matmul;
pub mod vector;

/// Below this many elements a kernel runs on the calling thread: splitting a few thousand
/// additions over threads costs more than it saves.
pub const PAR_MIN_ELEMENTS: usize = 1 << 15;
