//! One setting for every thread in the crate.
//!
//! One pool does all our parallel work: rayon's global pool (rows of elementwise, softmax,
//! layer norm and cross-entropy kernels; a batch of small matmuls; the parts of one large
//! matmul, each a single-threaded sgemm). matrixmultiply's own threads are not used: two pools
//! on two cores handed work back and forth, a context switch each time, and a seventh of the
//! `clm` example's CPU time was the kernel's (NOTES.md §8.1). [`set_num_threads`] sizes the
//! pool, and [`on_pool`] runs a whole program on one of its workers.
//!
//! ```
//! // Call it first thing in `main`, before any op runs.
//! let n = microlm::init_threads_from_env(); // MICROLM_THREADS=1 cargo run ... for one thread
//! assert!(n >= 1);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// Use `n` threads for everything: builds rayon's global pool with `n` threads. Must run before
/// the first op; afterwards (or if called twice) it returns an error saying so and changes
/// nothing.
pub fn set_num_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("set_num_threads: n must be at least 1".into());
    }
    if CONFIGURED.swap(true, Ordering::SeqCst) {
        return Err("set_num_threads: threads were already configured in this process".into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(8 << 20) // a main thread's, as `on_pool` runs whole programs here
        .build_global()
        .map_err(|e| format!("set_num_threads: rayon's pool was already started ({e}); call this before any op"))
}

/// Read `MICROLM_THREADS` (default: the number of CPUs), apply it with [`set_num_threads`],
/// and return the thread count in use. An unparsable value is reported on stderr and ignored.
/// Also calls [`reuse_freed_memory`](crate::memory::reuse_freed_memory).
pub fn init_threads_from_env() -> usize {
    crate::memory::reuse_freed_memory();
    let n = match std::env::var("MICROLM_THREADS") {
        Ok(s) => s.trim().parse::<usize>().ok().filter(|&n| n > 0).unwrap_or_else(|| {
            eprintln!("MICROLM_THREADS={s:?} is not a positive integer; using all CPUs");
            default_threads()
        }),
        Err(_) => default_threads(),
    };
    if let Err(e) = set_num_threads(n) {
        eprintln!("{e}");
    }
    num_threads()
}

/// The number of threads rayon's pool uses.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Run `f` on one of rayon's worker threads and wait for it. Called from outside the pool, every
/// parallel loop hands its work to the pool and puts the calling thread to sleep until the pool
/// is done: two context switches per op, a few thousand per training step. Called from a
/// worker, a parallel loop runs its first part on the calling thread and the other workers
/// steal the rest. The examples run their whole `main` this way (`cli::main`).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}
