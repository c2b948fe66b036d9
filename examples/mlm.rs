//! Masked language modelling on Tiny Shakespeare: a BERT-shaped encoder learns to fill in
//! masked characters, in about five minutes on two cores.
//!
//!   cargo run --release --example mlm
//!   cargo run --release --example mlm -- --steps 200 --out runs/short
//!   cargo run --release --example mlm -- --resume runs/mlm/checkpoint.safetensors --steps 2000
//!
//! What happens:
//! 1. The corpus is tokenized (characters by default), and split: the first 90% trains, the
//!    last 10% validates.
//! 2. Each update draws 32 random windows of 128 tokens, corrupts them as BERT does (15% of
//!    positions chosen, 80% of those become `[MASK]`, 10% a random token, 10% unchanged; see
//!    `src/objectives/mlm.rs`), and minimises the cross-entropy of the originals there.
//! 3. AdamW (lr 1e-3, weight decay 0.01 except on biases, LayerNorm and embeddings), 100 warmup
//!    steps then cosine decay to 1e-4, gradient norm clipped at 1.
//! 4. Every 100 steps it measures the loss and masked-token accuracy on 50 fixed validation
//!    batches (the same windows and masks every time, whatever the seed).
//! 5. At the end it fills in masked characters of validation lines, showing its top 5 guesses.
//!
//! Output in `--out` (default `runs/mlm`): `checkpoint.safetensors` (model, optimizer, step,
//! seed, config and tokenizer; Ctrl-C saves one too), `metrics.csv`, and `loss.svg` (open it in
//! a browser). `--resume` with the same flags continues exactly as if never stopped; a checkpoint
//! whose config differs from the flags is refused, naming each difference.
//!
//! The model is BERT's shape: the toy encoder (pre-LN, sinusoidal positions, no dropout by
//! default), then the MLM head Linear-GELU-LayerNorm and the output projection tied to the
//! token embedding. `--tie false --head-transform false` gives exactly the architecture of the
//! PyTorch reference script `torch_mlm.py` (NOTES.md §13 compares the two).

use microlm::cli::{check, Flags};
use microlm::data::{load_text, split, Windows};
use microlm::nn::{Tokens, TransformerConfig};
use microlm::objectives::{mask_tokens, MaskedBatch, MaskedLm, MlmConfig, MlmVocab};
use microlm::optim::{AdamW, Decay, LrSchedule, Optimizer};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use microlm::trainer::{load_checkpoint, train, Evaluation, TrainConfig};
use microlm::Params;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// The validation set's seed: independent of --seed, so every run is scored on the same masks.
const VAL_SEED: u64 = 1234;
const VAL_BATCHES: usize = 50;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

const USAGE: &str = "cargo run --release --example mlm -- [flags]
  --steps N          updates (1300)               --corpus PATH     text file (data/tinyshakespeare.txt)
  --tokenizer K      char or bpe (char)           --bpe-vocab N     BPE vocabulary size (512)
  --d-model N        width (128)                  --layers N        encoder layers (4)
  --heads N          attention heads (4)          --seq-len N       tokens per sequence (128)
  --max-len N        positional table (128)       --batch N         sequences per update (32)
  --dropout P        dropout (0)                  --tie B           tie the output to the input embedding (true)
  --head-transform B BERT's Linear-GELU-LN before the output projection (true); false = the reference script's plain head
  --lr X             peak learning rate (1e-3)    --min-lr X        cosine floor (1e-4)
  --warmup N         warmup updates (100)         --grad-clip X     global norm clip (1.0)
  --eval-every N     validate every N (100)       --seed N          seed (0)
  --resume PATH      continue a checkpoint        --out DIR         output directory (runs/mlm)
Threads: MICROLM_THREADS=n (default: all cores).";

fn run() -> Result<(), String> {
    microlm::init_threads_from_env();
    let mut flags = Flags::from_env()?;
    if flags.wants_help() {
        println!("{USAGE}");
        return Ok(());
    }
    let steps: usize = flags.get("steps", 1300)?;
    let corpus: PathBuf = flags.get("corpus", PathBuf::from("data/tinyshakespeare.txt"))?;
    let tokenizer_kind: String = flags.get("tokenizer", "char".to_string())?;
    let bpe_vocab: usize = flags.get("bpe-vocab", 512)?;
    let d_model: usize = flags.get("d-model", 128)?;
    let layers: usize = flags.get("layers", 4)?;
    let heads: usize = flags.get("heads", 4)?;
    let seq_len: usize = flags.get("seq-len", 128)?;
    let max_len: usize = flags.get("max-len", 128)?;
    let batch: usize = flags.get("batch", 32)?;
    let dropout: f32 = flags.get("dropout", 0.0)?;
    let tie: bool = flags.get("tie", true)?;
    let head_transform: bool = flags.get("head-transform", true)?;
    let lr: f32 = flags.get("lr", 1e-3)?;
    let min_lr: f32 = flags.get("min-lr", 1e-4)?;
    let warmup: usize = flags.get("warmup", 100)?;
    let grad_clip: f32 = flags.get("grad-clip", 1.0)?;
    let eval_every: usize = flags.get("eval-every", 100)?;
    let seed: u64 = flags.get("seed", 0)?;
    let resume: Option<PathBuf> = flags.get_opt("resume")?;
    let out: PathBuf = flags.get("out", PathBuf::from("runs/mlm"))?;
    flags.finish()?;
    check(steps >= 1, "steps", steps, "must be at least 1")?;
    check(lr > 0.0 && lr.is_finite(), "lr", lr, "must be positive")?;
    check((0.0..=lr).contains(&min_lr), "min-lr", min_lr, "must be in [0, lr]")?;
    check(grad_clip > 0.0, "grad-clip", grad_clip, "must be positive")?;
    check(batch >= 1, "batch", batch, "must be at least 1")?;
    check(seq_len >= 2, "seq-len", seq_len, "must be at least 2")?;
    check(
        seq_len <= max_len,
        "seq-len",
        seq_len,
        &format!("exceeds the positional table's length {max_len} (raise --max-len)"),
    )?;
    check(eval_every >= 1, "eval-every", eval_every, "must be at least 1")?;

    // 1. Tokenizer and data.
    let text = load_text(&corpus)?;
    let train_chars = &text[..text
        .char_indices()
        .nth(text.chars().count() * 9 / 10)
        .map_or(text.len(), |(i, _)| i)];
    let tokenizer = match tokenizer_kind.as_str() {
        "char" => Tokenizer::Char(CharTokenizer::from_text(&text)),
        "bpe" => {
            check(
                bpe_vocab > 261,
                "bpe-vocab",
                bpe_vocab,
                "must exceed 256 bytes + 5 specials",
            )?;
            println!("training a {bpe_vocab}-id BPE on the training split ...");
            Tokenizer::Bpe(BpeTokenizer::train(train_chars, bpe_vocab))
        }
        other => return Err(format!("--tokenizer {other}: expected char or bpe")),
    };
    let ids = tokenizer.encode(&text);
    let (train_ids, val_ids) = split(&ids, 0.9);
    let train_windows = Windows::new(train_ids, seq_len, &format!("the training 90% of {}", corpus.display()))?;
    let val_windows = Windows::new(val_ids, seq_len, &format!("the validation 10% of {}", corpus.display()))?;
    let vocab = match &tokenizer {
        Tokenizer::Char(t) => MlmVocab::for_chars(t),
        Tokenizer::Bpe(t) => MlmVocab::for_bpe(t),
    };
    let mlm = MlmConfig::default();

    // 2. Model and optimizer.
    let config = TransformerConfig {
        layers,
        heads,
        max_len,
        dropout,
        tie_embeddings: tie,
        ..TransformerConfig::toy(tokenizer.vocab_size()).with_d_model(d_model)
    };
    config
        .validate()
        .map_err(|e| format!("{e} (check --d-model, --heads, --layers, --dropout)"))?;
    let mut params = Params::new();
    let model = MaskedLm::with_head(&mut params, &config, head_transform, &mut StdRng::seed_from_u64(seed))?;
    let mut optimizer = Optimizer::AdamW(AdamW::new(&params, lr));
    let mut metadata = model.metadata();
    metadata.extend(tokenizer.to_metadata());
    let start = match &resume {
        Some(path) => {
            let (step, _) = load_checkpoint(path, &mut params, &mut optimizer, &metadata, seed)?;
            check(
                step < steps,
                "steps",
                steps,
                &format!("the checkpoint is already at step {step}"),
            )?;
            println!("resumed from {} at step {step}", path.display());
            step
        }
        None => 0,
    };
    println!(
        "corpus {}: {} tokens ({} train, {} validation), vocabulary {} ({tokenizer_kind})",
        corpus.display(),
        ids.len(),
        train_ids.len(),
        val_ids.len(),
        tokenizer.vocab_size()
    );
    println!(
        "model: d_model {d_model}, {heads} heads, {layers} layers, d_ff {}, {} parameters; batch {batch} x {seq_len}, {steps} steps, {} threads",
        config.d_ff,
        params.num_elements(),
        microlm::num_threads()
    );

    // 3. A fixed validation set, and training.
    let mut val_rng = StdRng::seed_from_u64(VAL_SEED);
    let val_set: Vec<MaskedBatch> = (0..VAL_BATCHES)
        .map(|_| {
            let x = Tokens::new(val_windows.batch(batch, &mut val_rng), batch, seq_len);
            mask_tokens(&x, &vocab, &mlm, &mut val_rng)
        })
        .collect();
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
        checkpoint_every: 500,
        seed,
        out_dir: out.clone(),
        tokens_per_step: batch * seq_len,
        verbose: true,
    };
    let report = train(
        &train_config,
        start,
        &mut params,
        &mut optimizer,
        &metadata,
        |tape, params, rng| {
            let x = Tokens::new(train_windows.batch(batch, rng), batch, seq_len);
            let corrupted = mask_tokens(&x, &vocab, &mlm, rng);
            model.loss(tape, params, &corrupted, rng)
        },
        |params| {
            let e = model.evaluate(params, &val_set);
            Evaluation {
                loss: e.loss,
                accuracy: Some(e.accuracy),
            }
        },
    )?;
    if report.interrupted {
        return Ok(());
    }

    // 4. Fill in masked characters of validation lines.
    println!("\nfill-mask on validation lines (_ = masked; top 5 guesses, * = the right answer):");
    let val_text = tokenizer.decode(val_ids);
    show_fill_mask(&model, &params, &tokenizer, &val_text, seq_len, &vocab);

    let e = report.last_eval.expect("the trainer validates after the last step");
    println!(
        "\nvalidation after {} steps: loss {:.4} nats, masked-token accuracy {:.4} ({} masked tokens)",
        report.step,
        e.loss,
        e.accuracy.unwrap_or(0.0),
        val_set.iter().map(|b| b.labels.len()).sum::<usize>()
    );
    println!(
        "training: {:.0} tokens/s, {:.0} s in all; metrics in {}/metrics.csv and {}/loss.svg",
        report.tokens_per_s,
        report.elapsed_s,
        out.display(),
        out.display()
    );
    Ok(())
}

/// For a few validation lines: mask 3 of their characters, give the model the line with the
/// text before it as context, and print its top 5 guesses at each masked position.
fn show_fill_mask(
    model: &MaskedLm,
    params: &Params,
    tokenizer: &Tokenizer,
    val_text: &str,
    seq_len: usize,
    vocab: &MlmVocab,
) {
    let mut rng = StdRng::seed_from_u64(7);
    let lines: Vec<(usize, &str)> = val_text
        .match_indices('\n')
        .zip(val_text.split('\n').skip(1))
        .map(|((i, _), line)| (i + 1, line))
        .filter(|(start, line)| line.chars().count() >= 24 && *start > 2 * seq_len)
        .collect();
    if lines.is_empty() {
        println!("  (the validation text has no line of 24 characters or more to show)");
        return;
    }
    for _ in 0..4 {
        let (start, line) = lines[rng.random_range(0..lines.len())];
        // Context: the tokens that end with this line, seq_len of them.
        let before = tokenizer.encode(&val_text[..start]);
        let line_ids = tokenizer.encode(line);
        let keep = seq_len.saturating_sub(line_ids.len()).min(before.len());
        let mut ids: Vec<usize> = before[before.len() - keep..].to_vec();
        let offset = ids.len();
        ids.extend(&line_ids[..line_ids.len().min(seq_len - offset)]);
        let letters: Vec<usize> = (offset..ids.len())
            .filter(|&p| tokenizer.decode(&ids[p..p + 1]).chars().all(|c| c.is_alphabetic()))
            .collect();
        if letters.is_empty() {
            continue;
        }
        let mut positions: Vec<usize> = (0..3).map(|_| letters[rng.random_range(0..letters.len())]).collect();
        positions.sort_unstable();
        positions.dedup();
        let originals: Vec<usize> = positions.iter().map(|&p| ids[p]).collect();
        let mut x_masked = ids.clone();
        for &p in &positions {
            x_masked[p] = vocab.mask;
        }
        let shown: String = (offset..ids.len())
            .map(|p| {
                if positions.contains(&p) {
                    "_".to_string()
                } else {
                    tokenizer.decode(&ids[p..p + 1])
                }
            })
            .collect();
        println!("\n  {shown}");
        let n = x_masked.len();
        let probs = model.probabilities(params, &Tokens::new(x_masked, 1, n), &positions);
        for ((p, row), &original) in positions.iter().zip(&probs).zip(&originals) {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let guesses: Vec<String> = order[..5]
                .iter()
                .map(|&v| {
                    let mark = if v == original { "*" } else { "" };
                    format!("{mark}{:?} {:.2}", tokenizer.decode(&[v]), row[v])
                })
                .collect();
            let rank = order.iter().position(|&v| v == original).unwrap() + 1;
            println!(
                "    position {:>2}: {}   (right: {:?}, ranked {rank})",
                p - offset,
                guesses.join("  "),
                tokenizer.decode(&[original])
            );
        }
    }
}
