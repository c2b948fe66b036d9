//! Autograd overhead: the cost of the tape itself, per op, when the arithmetic is nothing.
//!
//! A chain of 10,000 ops on 1-element tensors, cycling through a mix of cheap unary and binary
//! ops (`mul_scalar`, `add_scalar`, `tanh`, `mul` by a 1-element input `w`, `add` of `w`), so
//! that what is measured is node bookkeeping, allocation and the backward closures:
//!
//! - `forward (recording)`: `Tape::new()` and the 10,000 ops (tape teardown not timed);
//! - `forward + backward`: the same, then `tape.backward(y)` (which consumes and frees the
//!   tape; dropping the returned gradients is not timed);
//! - `forward (no_grad)`: `Tape::no_grad()` and the 10,000 ops (teardown not timed).
//!
//! Each `SUMMARY` line at the end gives the median time of one chain over criterion's
//! measurement samples, divided by 10,000: microseconds per op.
//!
//! ```text
//! cargo bench --bench autograd
//! cargo bench --bench autograd -- --warm-up-time 1 --measurement-time 2   # quicker
//! ```

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use microlm::{Tape, Tensor, Var};
use std::any::Any;
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

const OPS: usize = 10_000;
const SAMPLES: usize = 30;

/// Build the chain on `tape`: returns the last node. `w` is a 1-element leaf used by the
/// binary ops. Values stay in a small range (tanh every fifth op), so nothing overflows.
fn chain(tape: &mut Tape, x0: Var, w: Var) -> Var {
    let mut x = x0;
    for i in 0..OPS {
        x = match i % 5 {
            0 => tape.mul_scalar(x, 0.9),
            1 => tape.add_scalar(x, 0.1),
            2 => tape.mul(x, w),
            3 => tape.add(x, w),
            _ => tape.tanh(x),
        };
    }
    x
}

/// Median seconds per chain over the last `samples` recorded (iterations, elapsed) pairs
/// (criterion's measurement calls come after its warm-up calls).
fn median_secs(rec: &[(u64, Duration)], samples: usize) -> Option<f64> {
    if rec.is_empty() {
        return None;
    }
    let mut per_iter: Vec<f64> = rec[rec.len().saturating_sub(samples)..]
        .iter()
        .map(|&(iters, d)| d.as_secs_f64() / iters.max(1) as f64)
        .collect();
    per_iter.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = per_iter.len() / 2;
    Some(if per_iter.len() % 2 == 1 {
        per_iter[mid]
    } else {
        0.5 * (per_iter[mid - 1] + per_iter[mid])
    })
}

type Record = Rc<RefCell<Vec<(u64, Duration)>>>;

/// One timed run of a variant: its elapsed time, and what it made (dropped later, untimed).
type Variant = fn(&Tensor, &Tensor) -> (Duration, Box<dyn Any>);

fn main() {
    let threads = microlm::init_threads_from_env();
    // As the other benches do: on a worker of rayon's pool, so parallel loops do not hand off.
    microlm::threads::on_pool(|| run(threads));
}

fn run(threads: usize) {
    println!("autograd bench: {threads} thread(s); a chain of {OPS} ops on 1-element tensors");

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let x0 = Tensor::from_elem(vec![1], 0.5f32);
    let w0 = Tensor::from_elem(vec![1], 1.01f32);

    // Sanity: the chain runs, backward reaches both leaves, and the values are finite.
    {
        let mut tape = Tape::new();
        let (x, w) = (tape.input(x0.clone()), tape.input(w0.clone()));
        let y = chain(&mut tape, x, w);
        assert_eq!(tape.len(), OPS + 2);
        assert!(tape.scalar(y).is_finite());
        let g = tape.backward(y);
        assert!(g.wrt(x).is_some_and(|g| g[[0]].is_finite()));
        assert!(g.wrt(w).is_some_and(|g| g[[0]].is_finite()));
    }

    let mut group = c.benchmark_group("autograd chain");
    group.throughput(Throughput::Elements(OPS as u64));
    group.sample_size(SAMPLES);
    group.sampling_mode(SamplingMode::Flat); // a chain takes milliseconds

    let mut results: Vec<(&str, Record)> = Vec::new();

    // Each closure times exactly what its name says and keeps the teardown of what it returns
    // (the tape, or the gradients) outside the timed region.
    let variants: [(&str, Variant); 3] = [
        ("forward (recording)", |x0, w0| {
            let start = Instant::now();
            let mut tape = Tape::new();
            let (x, w) = (tape.input(x0.clone()), tape.input(w0.clone()));
            let y = chain(&mut tape, x, w);
            black_box(tape.scalar(y));
            (start.elapsed(), Box::new(tape))
        }),
        ("forward + backward", |x0, w0| {
            let start = Instant::now();
            let mut tape = Tape::new();
            let (x, w) = (tape.input(x0.clone()), tape.input(w0.clone()));
            let y = chain(&mut tape, x, w);
            let grads = tape.backward(y);
            black_box(&grads);
            (start.elapsed(), Box::new(grads))
        }),
        ("forward (no_grad)", |x0, w0| {
            let start = Instant::now();
            let mut tape = Tape::no_grad();
            let (x, w) = (tape.input(x0.clone()), tape.input(w0.clone()));
            let y = chain(&mut tape, x, w);
            black_box(tape.scalar(y));
            (start.elapsed(), Box::new(tape))
        }),
    ];

    for (name, run) in variants {
        let rec: Record = Default::default();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (t, keep) = run(&x0, &w0);
                    total += t;
                    drop(keep); // untimed
                }
                rec.borrow_mut().push((iters, total));
                total
            })
        });
        results.push((name, rec));
    }
    group.finish();
    c.final_summary();

    println!();
    println!("Median time per op ({OPS}-op chain on 1-element tensors, {threads} thread(s)):");
    for (name, rec) in &results {
        let rec = rec.borrow();
        if let Some(t) = median_secs(&rec, SAMPLES) {
            let note = if rec.len() < SAMPLES {
                format!("  [only {} sample(s): not a measurement]", rec.len())
            } else {
                String::new()
            };
            println!(
                "SUMMARY autograd {name:<20}: {:8.3} ms per chain = {:.3} us/op{note}",
                t * 1e3,
                t * 1e6 / OPS as f64
            );
        }
    }
}
