//! One training step of the toy encoder on random tokens, set up like the PyTorch reference
//! script (NOTES.md §11.1) in its toy configuration: vocab 96, 4 heads, 4 layers, d_ff
//! 4 d_model, pre-LN, no dropout, embeddings scaled by sqrt(d_model), untied output projection
//! applied to the masked positions only (round(0.15 T) per sequence, 80/10/10), cross-entropy,
//! backward, AdamW (lr 1e-3, wd 0.01). The toy size is sequence length 128, d_model 128,
//! batch 32; [`Size`] changes those three, for the growth bench, and nothing else.
//!
//! Shared by `benches/transformer.rs` (the toy size) and `benches/growth.rs` (every size).

use microlm::data::Batch as Tokens;
use microlm::nn::{Encoder, NormPlacement, OutputProjection, TransformerConfig};
use microlm::optim::AdamW;
use microlm::{Params, Tape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Vocabulary: [PAD] = 0 (unused), [MASK] = 1, real tokens 2..96, as the reference's toy.
pub const VOCAB: usize = 96;
const MASK_ID: usize = 1;

/// The three dimensions the growth bench varies; heads (4), layers (4), d_ff (4 d_model) and
/// the vocabulary (96) stay the toy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Tokens per sequence, T.
    pub seq_len: usize,
    /// Width of the hidden states.
    pub d_model: usize,
    /// Sequences per step, B.
    pub batch: usize,
}

impl Size {
    /// The toy configuration: T = 128, d_model = 128, B = 32.
    pub const TOY: Size = Size {
        seq_len: 128,
        d_model: 128,
        batch: 32,
    };

    /// Tokens one training step reads, B T.
    pub fn tokens(&self) -> usize {
        self.batch * self.seq_len
    }
}

/// A pre-masked batch: input ids, flat masked positions, their original ids.
pub struct Batch {
    tokens: Tokens,
    positions: Vec<usize>,
    targets: Vec<Option<usize>>,
}

/// A batch of random real tokens with round(0.15 T) positions per sequence chosen (80% become
/// [MASK], 10% a random token, 10% stay), as the reference's `make_batch`.
pub fn make_batch(size: Size, rng: &mut StdRng) -> Batch {
    let (b_n, t_n) = (size.batch, size.seq_len);
    let mut ids: Vec<usize> = (0..b_n * t_n).map(|_| rng.random_range(2..VOCAB)).collect();
    let k = (0.15f64 * t_n as f64).round_ties_even() as usize; // 19 at T = 128
    let mut positions = Vec::with_capacity(b_n * k);
    let mut targets = Vec::with_capacity(b_n * k);
    for b in 0..b_n {
        // A partial Fisher-Yates shuffle picks k distinct positions.
        let mut order: Vec<usize> = (0..t_n).collect();
        for i in 0..k {
            let j = rng.random_range(i..t_n);
            order.swap(i, j);
        }
        let mut chosen = order[..k].to_vec();
        chosen.sort_unstable();
        for t in chosen {
            let p = b * t_n + t;
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
        tokens: Tokens::new(ids, b_n, t_n),
        positions,
        targets,
    }
}

/// The toy encoder's configuration at `size`: no dropout (the reference has none), pre-LN,
/// untied head, d_ff 4 d_model, and a positional table as long as the sequences.
pub fn toy_config(size: Size) -> TransformerConfig {
    TransformerConfig {
        d_model: size.d_model,
        d_ff: 4 * size.d_model,
        max_len: size.seq_len,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        tie_embeddings: false,
        ..TransformerConfig::toy(VOCAB)
    }
}

/// The parameters, the two modules that use them, and the optimizer's state.
pub struct Model {
    params: Params,
    encoder: Encoder,
    head: OutputProjection,
    opt: AdamW,
}

/// The model at `size`, initialised from seed 0.
pub fn build(size: Size) -> Model {
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(0);
    let encoder = Encoder::new(&mut params, "encoder", &toy_config(size), &mut rng).unwrap();
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
pub fn train_step(m: &mut Model, batch: &Batch, rng: &mut StdRng) -> f32 {
    let mut tape = Tape::new();
    let h = m.encoder.forward(&mut tape, &m.params, &batch.tokens, rng); // [B, T, D]
    let rows = batch.tokens.batch * batch.tokens.seq_len;
    let d = m.encoder.config.d_model;
    let h = tape.reshape(h, &[rows, d]); // [B*T, D]
    let h_masked = tape.embedding(h, &batch.positions, &[batch.positions.len()]); // gather rows, [M, D]
    let logits = m.head.forward(&mut tape, &m.params, h_masked); // [M, V]
    let loss = tape.cross_entropy(logits, &batch.targets).mean;
    let value = tape.scalar(loss);
    let grads = tape.backward(loss);
    m.opt.step(&mut m.params, &grads);
    value
}

/// This process's peak resident memory (VmHWM) in MB, NaN where there is no procfs.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The middle value (the upper one of the two middles for an even count), as the benches
/// have always taken it.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The median time of one step over `timed` steps after `warmup` untimed ones, cycling through
/// `pool` from its start. The warm-up lets the allocator's pools and the caches fill first.
pub fn median_step_s(m: &mut Model, pool: &[Batch], rng: &mut StdRng, warmup: usize, timed: usize) -> f64 {
    let mut times = Vec::with_capacity(timed);
    for s in 0..warmup + timed {
        let start = std::time::Instant::now();
        train_step(m, &pool[s % pool.len()], rng);
        if s >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    median(times)
}
