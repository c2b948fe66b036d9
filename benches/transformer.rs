//! Transformer benches:
//! 1. attention forward + backward at B = 32, T = 128, d_model = 128, 4 heads (the fused op on
//!    Q, K, V of shape [32, 4, 128, 32]);
//! 2. one full training step of the toy encoder on random tokens (`common/toy_step.rs`, shared
//!    with the growth bench), set up like the PyTorch reference script (NOTES.md §11.1) in its toy configuration: vocab 96, d_model 128, 4 heads, 4 layers,
//!    d_ff 512, seq 128, batch 32, pre-LN, no dropout, embeddings scaled by sqrt(d_model),
//!    untied output projection applied to the masked positions only (19 per sequence, 80/10/10),
//!    cross-entropy, backward, AdamW (lr 1e-3, wd 0.01).
//!
//! Run with `MICROLM_THREADS=1 cargo bench --bench transformer` and again with `=2`; each run
//! prints tokens/s (median) and the process's peak RSS.

use criterion::{Criterion, Throughput};
use microlm::{AttentionMask, Tape, Tensor};
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

mod common;

use common::toy_step::{build, make_batch, median_step_s, peak_rss_mb, train_step, Batch, Size};

const B: usize = Size::TOY.batch;
const T: usize = Size::TOY.seq_len;

fn bench_attention(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut randn = |shape: &[usize]| Tensor::from_shape_fn(IxDyn(shape), |_| rng.random::<f32>() - 0.5);
    let (q, k, v) = (randn(&[B, 4, T, 32]), randn(&[B, 4, T, 32]), randn(&[B, 4, T, 32]));
    let g = randn(&[B, 4, T, 32]).into_owned();
    let mut group = c.benchmark_group("attention");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("fwd+bwd B32 T128 d128 h4", |bench| {
        bench.iter(|| {
            let mut tape = Tape::new();
            let (qv, kv, vv) = (tape.input(q.clone()), tape.input(k.clone()), tape.input(v.clone()));
            let o = tape.attention(qv, kv, vv, &AttentionMask::none(), 1.0 / 32f32.sqrt());
            tape.backward_from(o, g.clone())
        })
    });
    group.finish();
}

fn bench_train_step(c: &mut Criterion) {
    let mut model = build(Size::TOY);
    let mut rng = StdRng::seed_from_u64(1);
    let pool: Vec<Batch> = (0..8).map(|_| make_batch(Size::TOY, &mut rng)).collect();
    let mut i = 0;
    let mut group = c.benchmark_group("toy_encoder_train_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements((B * T) as u64));
    group.bench_function("B32 T128", |bench| {
        bench.iter(|| {
            i += 1;
            train_step(&mut model, &pool[i % pool.len()], &mut rng)
        })
    });
    group.finish();
    // Our own summary: median of 10 timed steps after 2 warm-up steps.
    let step = median_step_s(&mut model, &pool, &mut rng, 2, 10);
    println!(
        "SUMMARY toy_encoder_train_step threads={} median_step_s={:.4} tokens_per_s={:.0} peak_rss_mb={:.0}",
        microlm::num_threads(),
        step,
        (B * T) as f64 / step,
        peak_rss_mb()
    );
}

fn main() {
    let threads = microlm::init_threads_from_env();
    println!("threads: {threads}");
    // As the examples do: on a worker of rayon's pool, so parallel loops do not hand off.
    microlm::threads::on_pool(|| {
        let mut c = Criterion::default().configure_from_args();
        bench_attention(&mut c);
        bench_train_step(&mut c);
        c.final_summary();
    });
}
