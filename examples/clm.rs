//! Causal language modelling on Tiny Shakespeare with nanoGPT's CPU recipe: a GPT-style
//! character model that learns to write Shakespeare-like text, in about two minutes on two cores.
//!
//!   cargo run --release --example clm
//!   cargo run --release --example clm -- --steps 500 --out runs/short
//!
//! The recipe (karpathy/nanoGPT's README, "I only have a macbook": `config/train_shakespeare_char.py`
//! with `--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
//! --lr_decay_iters=2000 --dropout=0.0`):
//! - context 64, batch 12, 4 layers, 4 heads, d_model 128, d_ff 512, no dropout;
//! - 2,000 updates at lr 1e-3: 100 warmup updates, then cosine decay to 1e-4 at update 2,000;
//! - AdamW with betas (0.9, 0.99) and weight decay 0.1 on every matrix (nanoGPT's rule: every
//!   parameter of 2 or more dimensions, the embedding included), gradients clipped at norm 1;
//! - the first 90% of the characters train, the last 10% validate.
//! - Unlike nanoGPT, positions are the fixed sinusoidal table (this crate's architecture), the
//!   output projection is not tied to the embedding (`--tie true` ties it; with the sqrt(d)
//!   input scale, tying starts the model predicting the current character, see NOTES.md), and
//!   a window of 64 tokens gives 63 targets (the CLM loss scores x_{t+1} for t < 63), where
//!   nanoGPT reads 65 characters to score 64.
//!
//! It prints the training loss as it goes and, every 250 updates, the validation loss as the
//! mean over 20 random validation batches (nanoGPT's estimate). At the end: the loss over the
//! whole validation split, and a 500-character sample.

use microlm::cli::{check, Flags};
use microlm::data::{load_text, split, Windows};
use microlm::generate::{generate, Sampling};
use microlm::nn::{Decoder, Tokens, TransformerConfig};
use microlm::objectives::clm::clm_loss;
use microlm::optim::{AdamW, Decay, LrSchedule, Optimizer};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::trainer::{load_checkpoint, train, Evaluation, TrainConfig};
use microlm::{Params, Tape};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

const USAGE: &str = "cargo run --release --example clm -- [flags]
  --steps N (2000)  --corpus PATH (data/tinyshakespeare.txt)  --context N (64)  --batch N (12)
  --d-model N (128)  --layers N (4)  --heads N (4)  --dropout P (0)  --tie B (false)  --lr X (1e-3)  --min-lr X (1e-4)
  --warmup N (100)  --weight-decay X (0.1)  --grad-clip X (1)  --eval-every N (250)
  --eval-batches N (20)  --sample-len N (500)  --seed N (1337)  --resume PATH  --out DIR (runs/clm)";

fn run() -> Result<(), String> {
    microlm::init_threads_from_env();
    let mut flags = Flags::from_env()?;
    if flags.wants_help() {
        println!("{USAGE}");
        return Ok(());
    }
    let steps: usize = flags.get("steps", 2000)?;
    let corpus: PathBuf = flags.get("corpus", PathBuf::from("data/tinyshakespeare.txt"))?;
    let context: usize = flags.get("context", 64)?;
    let batch: usize = flags.get("batch", 12)?;
    let d_model: usize = flags.get("d-model", 128)?;
    let layers: usize = flags.get("layers", 4)?;
    let heads: usize = flags.get("heads", 4)?;
    let dropout: f32 = flags.get("dropout", 0.0)?;
    let tie: bool = flags.get("tie", false)?;
    let lr: f32 = flags.get("lr", 1e-3)?;
    let min_lr: f32 = flags.get("min-lr", 1e-4)?;
    let warmup: usize = flags.get("warmup", 100)?;
    let weight_decay: f32 = flags.get("weight-decay", 0.1)?;
    let grad_clip: f32 = flags.get("grad-clip", 1.0)?;
    let eval_every: usize = flags.get("eval-every", 250)?;
    let eval_batches: usize = flags.get("eval-batches", 20)?;
    let sample_len: usize = flags.get("sample-len", 500)?;
    let seed: u64 = flags.get("seed", 1337)?;
    let resume: Option<PathBuf> = flags.get_opt("resume")?;
    let out: PathBuf = flags.get("out", PathBuf::from("runs/clm"))?;
    flags.finish()?;
    check(steps >= 1, "steps", steps, "must be at least 1")?;
    check(context >= 2, "context", context, "must be at least 2")?;
    check(batch >= 1, "batch", batch, "must be at least 1")?;
    check(lr > 0.0 && lr.is_finite(), "lr", lr, "must be positive")?;
    check((0.0..=lr).contains(&min_lr), "min-lr", min_lr, "must be in [0, lr]")?;
    check(
        weight_decay >= 0.0,
        "weight-decay",
        weight_decay,
        "must not be negative",
    )?;
    check(grad_clip > 0.0, "grad-clip", grad_clip, "must be positive")?;
    check(eval_every >= 1, "eval-every", eval_every, "must be at least 1")?;
    check(eval_batches >= 1, "eval-batches", eval_batches, "must be at least 1")?;

    // Data: characters, 90/10.
    let text = load_text(&corpus)?;
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text(&text));
    let ids = tokenizer.encode(&text);
    let (train_ids, val_ids) = split(&ids, 0.9);
    let train_windows = Windows::new(train_ids, context, &format!("the training 90% of {}", corpus.display()))?;
    let val_windows = Windows::new(val_ids, context, &format!("the validation 10% of {}", corpus.display()))?;

    // Model and optimizer.
    let config = TransformerConfig {
        layers,
        heads,
        max_len: context,
        dropout,
        tie_embeddings: tie,
        ..TransformerConfig::toy(tokenizer.vocab_size()).with_d_model(d_model)
    };
    config
        .validate()
        .map_err(|e| format!("{e} (check --d-model, --heads, --layers, --dropout)"))?;
    let mut params = Params::new();
    let decoder = Decoder::new(&mut params, "decoder", &config, &mut StdRng::seed_from_u64(seed))?;
    let mut adamw = AdamW::new(&params, lr);
    adamw.beta2 = 0.99;
    adamw.weight_decay = weight_decay;
    let ids_all: Vec<_> = params.ids().collect();
    for id in ids_all {
        adamw.set_decay(id, params.value(id).ndim() >= 2); // nanoGPT: every matrix decays
    }
    let mut optimizer = Optimizer::AdamW(adamw);
    let mut metadata = config.to_metadata();
    metadata.extend(tokenizer.to_metadata());
    let start = match &resume {
        Some(path) => load_checkpoint(path, &mut params, &mut optimizer, &metadata, seed)?.0,
        None => 0,
    };
    println!(
        "corpus {}: {} characters ({} train, {} validation), vocabulary {}",
        corpus.display(),
        ids.len(),
        train_ids.len(),
        val_ids.len(),
        tokenizer.vocab_size()
    );
    println!(
        "model: d_model {d_model}, {heads} heads, {layers} layers, {} parameters; batch {batch} x {context}, {steps} steps, {} threads",
        params.num_elements(),
        microlm::num_threads()
    );

    // The mean loss of `n` random validation batches, as nanoGPT's estimate_loss does.
    let mut eval_rng = StdRng::seed_from_u64(seed ^ 0xE7A1);
    let mean_loss_of = |params: &Params, batches: &[Vec<usize>], rows: usize| {
        let (mut sum, mut count) = (0.0f64, 0usize);
        for ids in batches {
            let x = Tokens::new(ids.clone(), rows, context);
            let mut tape = Tape::no_grad();
            let logits = decoder.forward(&mut tape, params, &x, &mut StdRng::seed_from_u64(0));
            let ce = clm_loss(&mut tape, logits, &x);
            sum += tape.scalar(ce.sum) as f64;
            count += ce.count;
        }
        sum / count as f64
    };
    let t0 = Instant::now();
    let train_config = TrainConfig {
        steps,
        schedule: LrSchedule {
            peak: lr,
            warmup,
            total: steps,
            floor: min_lr,
            decay: Decay::Cosine,
        },
        grad_clip: Some(grad_clip),
        log_every: 50,
        eval_every,
        checkpoint_every: steps,
        seed,
        out_dir: out.clone(),
        tokens_per_step: batch * context,
        verbose: true,
    };
    let report = train(
        &train_config,
        start,
        &mut params,
        &mut optimizer,
        &metadata,
        |tape, params, rng| {
            let x = Tokens::new(train_windows.batch(batch, rng), batch, context);
            let logits = decoder.forward(tape, params, &x, rng); // [B, T, V]
            clm_loss(tape, logits, &x)
        },
        |params| {
            let batches: Vec<Vec<usize>> = (0..eval_batches)
                .map(|_| val_windows.batch(batch, &mut eval_rng))
                .collect();
            Evaluation {
                loss: mean_loss_of(params, &batches, batch),
                accuracy: None,
            }
        },
    )?;
    if report.interrupted {
        return Ok(());
    }
    let wall = t0.elapsed().as_secs_f64();

    // The whole validation split: windows of `context` tokens overlapping by one, so every token
    // after the first is a target exactly once.
    let whole: Vec<Vec<usize>> = (0..)
        .map(|i| i * (context - 1))
        .take_while(|&s| s + context <= val_ids.len())
        .map(|s| val_ids[s..s + context].to_vec())
        .collect();
    let whole_batches: Vec<Vec<usize>> = whole.chunks(8).map(|c| c.concat()).collect();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (chunk, ids) in whole.chunks(8).zip(&whole_batches) {
        let rows = chunk.len();
        let targets = rows * (context - 1);
        sum += mean_loss_of(&params, std::slice::from_ref(ids), rows) * targets as f64;
        count += targets;
    }
    let val_whole = sum / count as f64;
    let estimate = report.last_eval.map_or(f64::NAN, |e| e.loss);
    println!(
        "\nafter {} steps: validation loss {val_whole:.4} over the whole split ({} windows), {estimate:.4} as the {eval_batches}-batch estimate",
        report.step,
        whole.len()
    );
    println!(
        "training: {:.0} tokens/s; {wall:.1} s for training and evaluation",
        report.tokens_per_s
    );

    // A sample, as nanoGPT's sample.py draws it: from a newline, temperature 0.8, top 200.
    let prompt = tokenizer.encode("\n");
    let sampling = Sampling::TopK {
        k: 200,
        temperature: 0.8,
    };
    let mut timings = Vec::new();
    let mut sample = String::new();
    for use_cache in [true, false] {
        let t = Instant::now();
        let g = generate(
            &decoder,
            &params,
            &prompt,
            sample_len,
            &sampling,
            use_cache,
            &mut StdRng::seed_from_u64(seed),
        )?;
        timings.push(sample_len as f64 / t.elapsed().as_secs_f64());
        if use_cache {
            sample = tokenizer.decode(&g.tokens);
        }
    }
    println!("\n--- sample ({sample_len} characters, temperature 0.8, top-k 200) ---\n{sample}\n---");
    println!(
        "generation: {:.0} tokens/s with the KV cache, {:.0} without",
        timings[0], timings[1]
    );
    Ok(())
}
