//! Matmul throughput: the crate's `Tape::matmul` beside a direct `matrixmultiply::sgemm`.
//!
//! For every shape, criterion reports throughput as elements/s with one "element" per FLOP
//! (`Throughput::Elements(2*M*N*K)`, times the batch), so its `thrpt` line reads as FLOP/s.
//! At the end, one `SUMMARY` line per shape gives the median GFLOP/s of each variant and their
//! ratio, ready to copy. Those come from this file's own timing, done right after the shape's
//! criterion group: about 2 s in which the variants take turns in ~100 ms blocks, so that a
//! load change on a shared machine hits all variants alike and the ratio stays honest even
//! when the absolute figures are noisy (see `summary_medians`).
//!
//! Variants:
//! - `tape.matmul`: what a user pays: a fresh `Tape::no_grad()`, A and B put on it with
//!   `tape.constant(t.clone())` (a refcount bump), `tape.matmul(a, b)` (which allocates the
//!   output), and dropping the tape (which frees it). For K <= 512 on a CPU with AVX2 or
//!   AVX-512 the product itself is `kernels::thin_gemm`'s, not sgemm's, so at 1 thread the
//!   ratio to `sgemm` is what that kernel gains.
//! - `sgemm`: one `matrixmultiply::sgemm` call into a preallocated output. The crate builds
//!   matrixmultiply without its threads, so this is one thread: with 2 threads, `tape.matmul`
//!   (which cuts a large product into one sgemm per thread) should be nearly twice as fast.
//! - batched shape only: `sgemm loop`, 128 sequential sgemm calls, and `sgemm rayon`, the same
//!   128 calls spread over rayon's pool, which is what the crate's kernel does for a batch of
//!   small products.
//!
//! Threads: `MICROLM_THREADS=1` or `=2` sizes rayon's pool through
//! `microlm::init_threads_from_env()`; the default is all CPUs.
//!
//! ```text
//! MICROLM_THREADS=2 cargo bench --bench matmul
//! MICROLM_THREADS=1 cargo bench --bench matmul
//! cargo bench --bench matmul -- --warm-up-time 1 --measurement-time 2   # quicker
//! cargo bench --bench matmul -- 1024                                     # one shape
//! ```

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use microlm::{Tape, Tensor};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One product shape: `batch` independent (M x K)·(K x N) products (batch 1 = plain 2-D).
#[derive(Clone, Copy)]
struct Shape {
    label: &'static str,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
}

impl Shape {
    fn flops(&self) -> u64 {
        2 * (self.batch * self.m * self.n * self.k) as u64
    }
}

const SHAPES: &[Shape] = &[
    Shape {
        label: "128x128x128",
        batch: 1,
        m: 128,
        k: 128,
        n: 128,
    },
    Shape {
        label: "512x512x512",
        batch: 1,
        m: 512,
        k: 512,
        n: 512,
    },
    Shape {
        label: "1024x1024x1024",
        batch: 1,
        m: 1024,
        k: 1024,
        n: 1024,
    },
    Shape {
        label: "(4096x128)x(128x512)",
        batch: 1,
        m: 4096,
        k: 128,
        n: 512,
    },
    Shape {
        label: "(4096x512)x(512x128)",
        batch: 1,
        m: 4096,
        k: 512,
        n: 128,
    },
    Shape {
        label: "128x(128x32)x(32x128)",
        batch: 128,
        m: 128,
        k: 32,
        n: 128,
    },
];

/// Deterministic pseudo-random values in [-1, 1) (a 64-bit LCG; no need for `rand` here).
fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// C (M x N, row-major, contiguous) = A (M x K) · B (K x N), both row-major and contiguous.
fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (checked above) and the
    // strides describe row-major matrices of exactly those sizes.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The crate's result must match the direct sgemm's (same kernel, so essentially exactly).
fn check_agreement(s: &Shape, ta: &Tensor, tb: &Tensor, a: &[f32], b: &[f32]) {
    let mut tape = Tape::no_grad();
    let (va, vb) = (tape.constant(ta.clone()), tape.constant(tb.clone()));
    let vc = tape.matmul(va, vb);
    let got = tape.value(vc);
    let mut want = vec![0.0f32; s.batch * s.m * s.n];
    for i in 0..s.batch {
        sgemm(
            s.m,
            s.k,
            s.n,
            &a[i * s.m * s.k..],
            &b[i * s.k * s.n..],
            &mut want[i * s.m * s.n..],
        );
    }
    let max_err = got.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(
        got.len() == want.len() && max_err <= 1e-3,
        "{}: tape.matmul and sgemm disagree (max |diff| {max_err})",
        s.label
    );
}

/// A variant's routine: one product (or one batch of products) per call.
type Routine<'a> = Box<dyn FnMut() + 'a>;

/// The variants for one shape, each owning its output buffer.
fn variants<'a>(
    s: Shape,
    ta: &'a Tensor,
    tb: &'a Tensor,
    a: &'a [f32],
    b: &'a [f32],
) -> Vec<(&'static str, Routine<'a>)> {
    let (mk, kn, mn) = (s.m * s.k, s.k * s.n, s.m * s.n);
    let mut v: Vec<(&'static str, Routine<'a>)> = vec![(
        "tape.matmul",
        Box::new(move || {
            let mut tape = Tape::no_grad();
            let va = tape.constant(ta.clone());
            let vb = tape.constant(tb.clone());
            let vc = tape.matmul(va, vb);
            black_box(tape.value(vc));
        }),
    )];
    if s.batch == 1 {
        let mut out = vec![0.0f32; mn];
        v.push((
            "sgemm",
            Box::new(move || {
                sgemm(s.m, s.k, s.n, black_box(a), black_box(b), &mut out);
                black_box(&mut out);
            }),
        ));
    } else {
        let mut out = vec![0.0f32; s.batch * mn];
        v.push((
            "sgemm loop",
            Box::new(move || {
                let (a, b) = (black_box(a), black_box(b));
                for ((ai, bi), ci) in a.chunks_exact(mk).zip(b.chunks_exact(kn)).zip(out.chunks_exact_mut(mn)) {
                    sgemm(s.m, s.k, s.n, ai, bi, ci);
                }
                black_box(&mut out);
            }),
        ));
        let mut out = vec![0.0f32; s.batch * mn];
        v.push((
            "sgemm rayon",
            Box::new(move || {
                let (a, b) = (black_box(a), black_box(b));
                a.par_chunks_exact(mk)
                    .zip(b.par_chunks_exact(kn))
                    .zip(out.par_chunks_exact_mut(mn))
                    .for_each(|((ai, bi), ci)| sgemm(s.m, s.k, s.n, ai, bi, ci));
                black_box(&mut out);
            }),
        ));
    }
    v
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

/// Seconds of block-interleaved timing per shape for the SUMMARY figures.
const SUMMARY_BUDGET: Duration = Duration::from_secs(2);
/// Length of one block: one variant timed alone for this long before the next one's turn.
const BLOCK: Duration = Duration::from_millis(100);

/// The SUMMARY figures: median seconds per call of each routine. The routines take turns in
/// blocks of ~100 ms (rotating which goes first), each block starting with one untimed call,
/// then timings of enough calls to last about a millisecond each. Blocks, not single calls,
/// are interleaved: a load change on a shared machine over the ~2 s still hits every variant
/// alike, yet inside a block a variant has its own caches and allocator state to itself (with
/// call-by-call interleaving, one variant's 8 MB output evicting another's inputs, or the
/// rayon pool going idle during a single-threaded loop, biased some ratios by 5-30%).
/// `quick` times one call each (criterion's `--test` mode: a smoke test, not a measurement).
fn summary_medians(routines: &mut [(&'static str, Routine<'_>)], quick: bool) -> Vec<f64> {
    let nv = routines.len();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); nv];
    let start = Instant::now();
    for round in 0.. {
        for j in 0..nv {
            let i = (round + j) % nv;
            let f = &mut routines[i].1;
            // Untimed: warms this variant's buffers and caches, and sizes the repetitions.
            let t = Instant::now();
            f();
            let est = t.elapsed().as_secs_f64();
            let reps = ((1e-3 / est.max(1e-9)).ceil() as usize).max(1);
            let block = Instant::now();
            loop {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                times[i].push(t.elapsed().as_secs_f64() / reps as f64);
                if quick || block.elapsed() >= BLOCK {
                    break;
                }
            }
        }
        if quick || (round + 1 >= 3 && start.elapsed() >= SUMMARY_BUDGET) {
            break;
        }
    }
    times.into_iter().map(median).collect()
}

struct Summary {
    shape: Shape,
    /// (variant name, median seconds per call) for each variant that criterion ran.
    medians: Vec<(&'static str, f64)>,
    /// True if criterion only smoke-tested (`--test`), so the figures are single calls.
    quick: bool,
}

fn bench_shape(c: &mut Criterion, s: Shape) -> Summary {
    let a = fill(s.batch * s.m * s.k, 1);
    let b = fill(s.batch * s.k * s.n, 2);
    let (ashape, bshape) = if s.batch == 1 {
        (vec![s.m, s.k], vec![s.k, s.n])
    } else {
        (vec![s.batch, s.m, s.k], vec![s.batch, s.k, s.n])
    };
    let ta = Tensor::from_shape_vec(ashape, a.clone()).unwrap();
    let tb = Tensor::from_shape_vec(bshape, b.clone()).unwrap();
    check_agreement(&s, &ta, &tb, &a, &b);
    let mut routines = variants(s, &ta, &tb, &a, &b);

    // Time per call, roughly, at ~150 GFLOP/s: 28 us (128^3) to 14 ms (1024^3). All but the
    // smallest get fewer, flat samples, so that a group stays within a few seconds even with a
    // short --measurement-time.
    let secs = s.flops() as f64 / 150e9;
    let big = secs > 2e-4;
    let samples = if big { 20 } else { 50 };
    let mut group = c.benchmark_group(format!("matmul {}", s.label));
    group.throughput(Throughput::Elements(s.flops()));
    group.sample_size(samples);
    if big {
        group.sampling_mode(SamplingMode::Flat);
    }
    // How many times criterion called each routine: 0 if filtered out, 1 in --test mode,
    // warm-up calls + `samples` when it measured.
    let mut calls = vec![0usize; routines.len()];
    for ((name, f), calls) in routines.iter_mut().zip(calls.iter_mut()) {
        group.bench_function(BenchmarkId::from_parameter(*name), |bch| {
            bch.iter_custom(|iters| {
                *calls += 1;
                let start = Instant::now();
                for _ in 0..iters {
                    f();
                }
                start.elapsed()
            })
        });
    }
    group.finish();

    let mut ran: Vec<(&'static str, Routine<'_>)> = routines
        .into_iter()
        .zip(&calls)
        .filter(|(_, &n)| n > 0)
        .map(|(r, _)| r)
        .collect();
    let quick = calls.iter().any(|&n| n > 0 && n < samples);
    let medians = if ran.is_empty() {
        Vec::new()
    } else {
        let names: Vec<&'static str> = ran.iter().map(|(n, _)| *n).collect();
        names.into_iter().zip(summary_medians(&mut ran, quick)).collect()
    };
    Summary {
        shape: s,
        medians,
        quick,
    }
}

fn summary_line(threads: usize, s: &Summary) -> Option<String> {
    if s.medians.is_empty() {
        return None;
    }
    let gflops = |t: f64| s.shape.flops() as f64 / t / 1e9;
    let mut line = format!("SUMMARY matmul {:<22} threads={threads}:", s.shape.label);
    for (name, t) in &s.medians {
        line += &format!("  {name} {:6.1} GFLOP/s ({:8.1} us)", gflops(*t), t * 1e6);
    }
    if let Some((_, t_op)) = s.medians.iter().find(|(n, _)| *n == "tape.matmul") {
        for (name, t) in s.medians.iter().filter(|(n, _)| *n != "tape.matmul") {
            // ratio of throughputs = inverse ratio of times
            line += &format!("  | tape/{name} = {:.3}", t / t_op);
        }
    }
    if s.quick {
        line += "  [--test: single calls, not a measurement]";
    }
    Some(line)
}

fn main() {
    let threads = microlm::init_threads_from_env();
    println!(
        "matmul bench: {threads} thread(s) in rayon's pool \
         (MICROLM_THREADS={}; set MICROLM_THREADS=1 or =2 to choose)",
        std::env::var("MICROLM_THREADS").unwrap_or_else(|_| "<unset: all CPUs>".into())
    );

    // On a worker of rayon's pool, as the examples run.
    microlm::threads::on_pool(move || {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();

        let summaries: Vec<Summary> = SHAPES.iter().map(|&s| bench_shape(&mut c, s)).collect();
        c.final_summary();

        println!();
        println!(
            "Median GFLOP/s (2*M*N*K*batch / median time per call; the variants of a shape timed in \
             alternating {} ms blocks for ~{} s after its criterion group), {threads} thread(s):",
            BLOCK.as_millis(),
            SUMMARY_BUDGET.as_secs()
        );
        for s in &summaries {
            if let Some(line) = summary_line(threads, s) {
                println!("{line}");
            }
        }
    });
}
