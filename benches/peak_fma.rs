//! This machine's peak FP32 FMA rate, the ceiling a matmul is measured against.
//!
//! A timed loop of AVX2 `vfmadd` on 256-bit registers (8 f32 lanes, 16 FLOP per instruction).
//! Each FMA depends on the previous one in its accumulator, so to keep both FMA pipes busy
//! despite the 4-cycle latency there must be at least 2 x 4 = 8 independent accumulators; the
//! loop is run with 8, 10 and 12 (12 accumulators + 2 operands fit in the 16 ymm registers).
//!
//! It runs on 1 thread, then on N threads at once (each thread its own loop, started together
//! behind a barrier), where N = `MICROLM_THREADS` or all CPUs. Each figure is the median of
//! several timed repetitions. A plain `main` (no criterion): it prints its results.
//!
//! ```text
//! cargo bench --bench peak_fma
//! MICROLM_THREADS=1 cargo bench --bench peak_fma
//! ```

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    /// FLOP per loop iteration for `acc` accumulators: 8 lanes x (mul + add) each.
    pub const fn flop_per_iter(acc: usize) -> u64 {
        16 * acc as u64
    }

    /// One kernel per accumulator count: `iters` rounds of `acc_i = acc_i * a + b` on every
    /// accumulator, returning the sum of all lanes so the work is observable. With a = 0.999999
    /// and b small the values converge to b / (1 - a): no overflow, no denormals.
    macro_rules! fma_kernel {
        ($name:ident, $($acc:ident),+) => {
            /// # Safety
            /// The CPU must support AVX2 and FMA (checked by the caller).
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn $name(iters: u64, a: f32, b: f32) -> f32 {
                let va = _mm256_set1_ps(a);
                let vb = _mm256_set1_ps(b);
                $(let mut $acc = _mm256_set1_ps(0.0);)+
                // Make the starting values opaque so the loop cannot be folded.
                $($acc = black_box($acc);)+
                for _ in 0..iters {
                    $($acc = _mm256_fmadd_ps($acc, va, vb);)+
                }
                let mut sum = _mm256_setzero_ps();
                $(sum = _mm256_add_ps(sum, $acc);)+
                let mut lanes = [0.0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
                lanes.iter().sum()
            }
        };
    }

    fma_kernel!(fma8, a0, a1, a2, a3, a4, a5, a6, a7);
    fma_kernel!(fma10, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9);
    fma_kernel!(fma12, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);

    type Kernel = unsafe fn(u64, f32, f32) -> f32;

    pub const KERNELS: [(usize, Kernel); 3] = [(8, fma8), (10, fma10), (12, fma12)];

    /// Run `k` for `iters` iterations and return the elapsed time.
    fn run(k: Kernel, iters: u64) -> Duration {
        let start = Instant::now();
        // SAFETY: main checked AVX2 and FMA before calling anything in this module.
        let r = unsafe { k(black_box(iters), black_box(0.999_999), black_box(1e-6)) };
        let elapsed = start.elapsed();
        black_box(r);
        elapsed
    }

    /// Iterations that take about `target` on one thread (after a short warm-up).
    pub fn calibrate(k: Kernel, target: Duration) -> u64 {
        let mut iters = 1u64 << 16;
        loop {
            let t = run(k, iters);
            if t >= Duration::from_millis(20) {
                let scale = target.as_secs_f64() / t.as_secs_f64();
                return ((iters as f64 * scale) as u64).max(1);
            }
            iters *= 4;
        }
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mid = xs.len() / 2;
        if xs.len() % 2 == 1 {
            xs[mid]
        } else {
            0.5 * (xs[mid - 1] + xs[mid])
        }
    }

    /// Median total GFLOP/s over `reps` repetitions of `threads` threads each running `iters`
    /// iterations of `k` at the same time. Wall time runs from the barrier to the last join.
    pub fn measure(k: Kernel, acc: usize, iters: u64, threads: usize, reps: usize) -> f64 {
        let flop = flop_per_iter(acc) * iters * threads as u64;
        let rates = (0..reps)
            .map(|_| {
                let barrier = Barrier::new(threads + 1);
                let wall = std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            barrier.wait();
                            run(k, iters)
                        });
                    }
                    barrier.wait();
                    let start = Instant::now();
                    // the scope joins every thread before returning
                    start
                })
                .elapsed();
                flop as f64 / wall.as_secs_f64() / 1e9
            })
            .collect();
        median(rates)
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use x86::*;
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        println!("peak_fma: this CPU lacks AVX2 and/or FMA; the AVX2 FMA peak cannot be measured here.");
        return;
    }
    let threads = microlm::init_threads_from_env();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    const REPS: usize = 7;
    let target = std::time::Duration::from_millis(300);
    println!(
        "peak_fma: AVX2 256-bit FMA (16 FLOP per instruction), median of {REPS} runs of ~{} ms each; \
         {threads} thread(s) (MICROLM_THREADS), {cpus} CPU(s)",
        target.as_millis()
    );

    let mut best = (0usize, 0.0f64, 0.0f64); // (accumulators, 1-thread, N-thread GFLOP/s)
    for (acc, k) in KERNELS {
        let iters = calibrate(k, target);
        let one = measure(k, acc, iters, 1, REPS);
        let all = measure(k, acc, iters, threads, REPS);
        println!(
            "  {acc:>2} accumulators: 1 thread {one:7.1} GFLOP/s | {threads} threads {all:7.1} GFLOP/s total, \
             {:6.1} per thread",
            all / threads as f64
        );
        if one > best.1 {
            best = (acc, one, all);
        }
    }
    let (acc, one, all) = best;
    if threads > 1 && all < 0.9 * one * threads as f64 {
        println!(
            "  note: {threads} threads reach only {:.0}% of {threads} x the 1-thread rate; other processes are \
             probably using the CPUs (or the vCPUs share physical cores)",
            100.0 * all / (threads as f64 * one)
        );
    }
    println!(
        "SUMMARY peak FP32 FMA ({acc} accumulators): {one:.1} GFLOP/s per core (1 thread), \
         {all:.1} GFLOP/s total on {threads} threads ({:.1} per thread); \
         = {:.2} GHz x 32 FLOP/cycle (2 FMA pipes x 8 lanes x 2)",
        all / threads as f64,
        one / 32.0
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("peak_fma: only implemented for x86_64 (AVX2 + FMA); nothing to measure on this architecture.");
}
