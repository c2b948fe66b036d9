//! The peak FP32 rate of the machine we are running on, measured: the ceiling the profile's
//! "of peak" column divides by ([`crate::profile`]), so that the column means the same thing on
//! any CPU instead of assuming one.
//!
//! A core's peak is its clock times the FLOPs one cycle can issue: on a Zen 4 core, two 256-bit
//! fused multiply-add pipes, 2 x 8 lanes x 2 FLOP = 32 FLOP a cycle (AVX-512 instructions are
//! split across the same two pipes, so they issue no more). We do not trust a table of CPUs; we
//! time a loop that does nothing but independent fused multiply-adds:
//!
//! ```text
//! acc_i = acc_i * a + b      for i = 0 .. ACCUMULATORS, repeated `iters` times
//! FLOP = iters x ACCUMULATORS x lanes x 2
//! ```
//!
//! Each accumulator waits for its own previous FMA (4 cycles of latency), so it takes at least
//! pipes x latency = 8 independent chains to keep both pipes busy; we run 12. The widest vectors
//! the CPU has are used (AVX-512, else AVX2 with FMA, else plain `f32::mul_add` in 8 lanes,
//! which the compiler vectorises where it can).
//!
//! [`measured`] runs the loop once per process (the first call; about a fifth of a second) and
//! caches it: on one thread alone, and on every thread of rayon's pool at once (each thread its
//! own loop), best of a few repetitions, since a peak is the fastest the machine can go and any
//! other work on it only slows the loop down. `cargo bench --bench peak_fma` is the longer,
//! more careful measurement (NOTES.md §8).

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

/// Independent accumulator chains in the loop (at least FMA pipes x FMA latency = 8).
const ACCUMULATORS: usize = 12;
/// Timed repetitions; the fastest is kept.
const REPEATS: usize = 5;
/// Loop iterations per repetition: 2^20 x 12 FMAs of 16 lanes is about 0.4 GFLOP, some 3.5 ms
/// on one Zen 4 core.
const ITERS: u64 = 1 << 20;

/// The measured peak FP32 rate, GFLOP/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peak {
    /// One thread running the loop alone.
    pub one_thread: f64,
    /// Every thread of the pool running it at once, their rates added.
    pub all_threads: f64,
    /// The pool's threads when it was measured.
    pub threads: usize,
}

static PEAK: OnceLock<Peak> = OnceLock::new();

/// This machine's peak, measured on the first call and cached for the rest of the run. Call it
/// from the thread pool the work runs on (the examples' `main` does), so `all_threads` counts
/// that pool's threads.
pub fn measured() -> Peak {
    *PEAK.get_or_init(measure)
}

/// Time the loop: alone, then on every pool thread at once; best of [`REPEATS`] each.
fn measure() -> Peak {
    let mut one_thread = 0.0f64;
    let mut all_threads = 0.0f64;
    for _ in 0..REPEATS {
        one_thread = one_thread.max(timed_loop());
        // rayon::broadcast runs the closure once on every thread of the current pool, together.
        let rates: Vec<f64> = rayon::broadcast(|_| timed_loop());
        all_threads = all_threads.max(rates.iter().sum());
    }
    Peak {
        one_thread,
        all_threads,
        threads: rayon::current_num_threads(),
    }
}

/// One run of the loop on this thread: its rate in GFLOP/s.
fn timed_loop() -> f64 {
    let start = Instant::now();
    let (lanes, sum) = fma_loop(black_box(ITERS));
    let seconds = start.elapsed().as_secs_f64();
    black_box(sum);
    let flop = ITERS as f64 * ACCUMULATORS as f64 * lanes as f64 * 2.0;
    flop / seconds.max(1e-9) / 1e9
}

/// `iters` rounds of acc_i = acc_i * a + b on every accumulator, with the widest vectors this
/// CPU has. Returns the lanes per vector and the sum of the accumulators (so the work is used).
/// With a = 0.999999 and b = 1e-6 the values stay near 1: no overflow, no denormals.
fn fma_loop(iters: u64) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked on the line above).
            return (16, unsafe { fma_loop_avx512(iters) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked on the line above).
            return (8, unsafe { fma_loop_avx2(iters) });
        }
    }
    (8, fma_loop_portable(iters))
}

/// The loop on 16-lane vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(black_box(0.999_999)), _mm512_set1_ps(black_box(1e-6)));
    let mut acc: [__m512; ACCUMULATORS] = std::array::from_fn(|i| _mm512_set1_ps(black_box(i as f32)));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b); // acc_i = acc_i * a + b
        }
    }
    acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
}

/// The loop on 8-lane vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(black_box(0.999_999)), _mm256_set1_ps(black_box(1e-6)));
    let mut acc: [__m256; ACCUMULATORS] = std::array::from_fn(|i| _mm256_set1_ps(black_box(i as f32)));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b); // acc_i = acc_i * a + b
        }
    }
    let mut lanes = [0.0f32; 8];
    let mut sum = 0.0;
    for x in acc {
        _mm256_storeu_ps(lanes.as_mut_ptr(), x);
        sum += lanes.iter().sum::<f32>();
    }
    sum
}

/// The loop in plain Rust, 8 lanes per accumulator.
fn fma_loop_portable(iters: u64) -> f32 {
    let (a, b) = (black_box(0.999_999f32), black_box(1e-6f32));
    let mut acc = [[0.0f32; 8]; ACCUMULATORS];
    for (i, x) in acc.iter_mut().enumerate() {
        *x = [black_box(i as f32); 8];
    }
    for _ in 0..iters {
        for x in acc.iter_mut() {
            for lane in x.iter_mut() {
                *lane = lane.mul_add(a, b); // acc_i = acc_i * a + b
            }
        }
    }
    acc.iter().flatten().sum()
}
