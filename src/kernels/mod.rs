//! Kernels: the loops that do the arithmetic, free of any autograd bookkeeping.
//!
//! The ops in [`crate::ops`] call these for their forward and backward. Each kernel runs in
//! parallel with rayon once the work is large enough to pay for it ([`PAR_MIN_ELEMENTS`]).
//!
//! Row-wise kernels (softmax, layer norm, cross-entropy, bias sums) split their rows into
//! blocks of [`rows_per_task`] rows, a number that depends on the row length only, never on the
//! thread count. A tensor of one block runs on the calling thread (rayon does not split a
//! one-item job), a bigger one on rayon's threads. Any sum across rows is taken per block, and
//! the per-block partials are added in block order, so results are bit-identical from run to
//! run and for any number of threads.

pub mod broadcast;
pub mod elementwise;
pub mod fma_peak;
pub mod gemm_then;
pub mod matmul;
pub mod matmul_naive;
pub mod thin_gemm;
pub mod vector;

/// Below this many elements a kernel runs on the calling thread: splitting a few thousand
/// additions over threads costs more than it saves.
pub const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// About this many elements per task for the row-wise kernels.
pub const TASK_ELEMENTS: usize = 1 << 14;

/// Rows per parallel task for rows of length `d`: about [`TASK_ELEMENTS`] elements, at least 1.
pub fn rows_per_task(d: usize) -> usize {
    (TASK_ELEMENTS / d.max(1)).max(1)
}
