//! Transformer benches:
//! 1. attention forward + backward at B = 32, T = 128, d_model = 128, 4 heads (the fused op on
//!    Q, K, V of shape [32, 4, 128, 32]);
//! 2. one full training step of the toy encoder on random tokens, set up like
//!    the PyTorch reference script (NOTES.md §11.1) in its toy configuration: vocab 96, d_model 128, 4 heads, 4 layers,
//!    d_ff 512, seq 128, batch 32, pre-LN, no dropout, embeddings scaled by sqrt(d_model),
//!    untied output projection applied to the masked positions only (19 per sequence, 80/10/10),
//!    cross-entropy, backward, AdamW (lr 1e-3, wd 0.01).
//!
//! Run with `MICROLM_THREADS=1 cargo bench --bench transformer` and again with `=2`; each run
//! prints tokens/s (median) and the process's peak RSS.

use criterion::{Criterion, Throughput};
use microlm::data::Batch as Tokens;
use microlm::nn::{Encoder, NormPlacement, OutputProjection, TransformerConfig};
use microlm::optim::AdamW;
use microlm::{AttentionMask, Params, Tape, Tensor};
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const VOCAB: usize = 96;
const MASK_ID: usize = 1;
const B: usize = 32;
const T: usize = 128;

/// A pre-masked batch: input ids, flat masked positions, their original ids.
struct Batch {
    tokens: Tokens,
    positions: Vec<usize>,
    targets: Vec<Option<usize>>,
}

fn make_batch(rng: &mut StdRng) -> Batch {
    let mut ids: Vec<usize> = (0..B * T).map(|_| rng.random_range(2..VOCAB)).collect();
    let k = (0.15f64 * T as f64).round_ties_even() as usize; // 19
    let mut positions = Vec::with_capacity(B * k);
    let mut targets = Vec::with_capacity(B * k);
    for b in 0..B {
        let mut order: Vec<usize> = (0..T).collect();
        for i in 0..k {
            let j = rng.random_range(i..T);
            order.swap(i, j);
        }
        let mut chosen = order[..k].to_vec();
        chosen.sort_unstable();
        for t in chosen {
            let p = b * T + t;
            positions.push(p);
            targets.push(Some(ids[p]));
            let r: f32 = rng.random();
            if r < 0.8 {
                ids[p] = MASK_ID;
            } else if r < 0.9 {
                ids[p] = rng.random_range(2..VOCAB);
            }
        }
    }
    Batch {
        tokens: Tokens::new(ids, B, T),
        positions,
        targets,
    }
}

fn toy_config() -> TransformerConfig {
    TransformerConfig {
        dropout: 0.0,
        norm: NormPlacement::Pre,
        tie_embeddings: false,
        ..TransformerConfig::toy(VOCAB)
    }
}

struct Model {
    params: Params,
    encoder: Encoder,
    head: OutputProjection,
    opt: AdamW,
}

fn build() -> Model {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(0);
    let encoder = Encoder::new(&mut params, "encoder", &toy_config(), &mut rng).unwrap();
    let head = OutputProjection::new(&mut params, "head", &encoder.embed.token, false, &mut rng);
    let opt = AdamW::new(&params, 1e-3);
    Model {
        params,
        encoder,
        head,
        opt,
    }
}

/// Forward, loss over the masked positions, backward, AdamW. Returns the loss.
fn train_step(m: &mut Model, batch: &Batch, rng: &mut StdRng) -> f32 {
    let mut tape = Tape::new();
    let h = m.encoder.forward(&mut tape, &m.params, &batch.tokens, rng); // [B, T, D]
    let d = m.encoder.config.d_model;
    let h = tape.reshape(h, &[B * T, d]); // [B*T, D]
    let h_masked = tape.embedding(h, &batch.positions, &[batch.positions.len()]); // gather rows, [M, D]
    let logits = m.head.forward(&mut tape, &m.params, h_masked); // [M, V]
    let loss = tape.cross_entropy(logits, &batch.targets).mean;
    let value = tape.scalar(loss);
    let grads = tape.backward(loss);
    m.opt.step(&mut m.params, &grads);
    value
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

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
            let o = tape
                .attention(qv, kv, vv, &AttentionMask::none(), 1.0 / 32f32.sqrt());
            tape.backward_from(o, g.clone())
        })
    });
    group.finish();
}

fn bench_train_step(c: &mut Criterion) {
    let mut model = build();
    let mut rng = StdRng::seed_from_u64(1);
    let pool: Vec<Batch> = (0..8).map(|_| make_batch(&mut rng)).collect();
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
    let mut times = Vec::new();
    for s in 0..12 {
        let start = Instant::now();
        train_step(&mut model, &pool[s % pool.len()], &mut rng);
        if s >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let step = median(times);
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
