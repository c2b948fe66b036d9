//! The tiny models, tokenizers, texts, run settings and directories the test files share (and
//! the walk over the sources), named once so that a change of the test config is one edit. A test that needs something else overrides a field
//! with struct update syntax: `TransformerConfig { layers: 2, ..tiny_encoder_config(13) }`.

use microlm::nn::TransformerConfig;
use microlm::objectives::MaskedLm;
use microlm::optim::{Decay, LrSchedule};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::trainer::{Evaluation, TrainConfig};
use microlm::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// The smallest encoder the model tests build: d_model 8, 2 heads, 1 layer, d_ff 16, max_len
/// 16, no dropout; the rest is [`TransformerConfig::toy`]'s (pre-LN, exact GELU, tied output).
pub fn tiny_encoder_config(vocab: usize) -> TransformerConfig {
    TransformerConfig {
        d_model: 8,
        heads: 2,
        layers: 1,
        d_ff: 16,
        max_len: 16,
        dropout: 0.0,
        ..TransformerConfig::toy(vocab)
    }
}

/// A model big enough for the trainer to have something to do and small enough to train a few
/// steps in milliseconds: d_model 16, 2 heads, 2 layers, d_ff 32, max_len 16, dropout 0.1 (so
/// that exact resume must replay the dropout draws too).
pub fn tiny_training_config(vocab: usize) -> TransformerConfig {
    TransformerConfig {
        d_model: 16,
        heads: 2,
        layers: 2,
        d_ff: 32,
        dropout: 0.1,
        ..tiny_encoder_config(vocab)
    }
}

/// The 19 letters a to s: with the 5 specials, 24 ids ([`TINY_VOCAB`]).
pub fn tiny_tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefghijklmnopqrs"))
}

/// The number of ids of [`tiny_tokenizer`].
pub const TINY_VOCAB: usize = 24;

/// Ten lines of Hamlet, a corpus for the loaders and tokenizers (37 distinct characters).
pub fn tiny_corpus() -> &'static str {
    "To be, or not to be, that is the question:\n\
Whether 'tis nobler in the mind to suffer\n\
The slings and arrows of outrageous fortune,\n\
Or to take arms against a sea of troubles\n\
And by opposing end them. To die - to sleep,\n\
No more; and by a sleep to say we end\n\
The heart-ache and the thousand natural shocks\n\
That flesh is heir to: 'tis a consummation\n\
Devoutly to be wish'd. To die, to sleep;\n\
To sleep, perchance to dream - ay, there's the rub:\n"
}

/// A fresh, empty directory under the system's temp dir, `microlm-<name>-<pid>` (any earlier
/// one of the same name removed), so that parallel test binaries never share one.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microlm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A validation that measures nothing, for trainer runs whose validation is not under test.
pub fn no_eval(_: &Params) -> Evaluation {
    Evaluation {
        loss: 1.0,
        accuracy: None,
        count: 0,
        extra: Vec::new(),
    }
}

/// The settings of a short trainer run into `dir`, for tests of what a run does rather than of
/// what it learns: `steps` updates, the learning rate warmed up over one update to 1e-3 and
/// falling by a cosine to 1e-4, gradients clipped at norm 1, seed 1, nothing logged, validated
/// or saved before the end (every 1,000 updates), quiet. `tokens_per_step` is what the
/// progress line counts.
pub fn short_run_config(steps: usize, dir: PathBuf, tokens_per_step: usize) -> TrainConfig {
    TrainConfig {
        steps,
        schedule: LrSchedule {
            peak: 1e-3,
            warmup: 1,
            total: steps,
            floor: 1e-4,
            decay: Decay::Cosine,
        },
        grad_clip: Some(1.0),
        log_every: 1000,
        eval_every: 1000,
        checkpoint_every: 1000,
        seed: 1,
        out_dir: dir,
        resume: None,
        tokens_per_step,
        verbose: false,
        bounds: Vec::new(),
    }
}

/// A masked LM of `config` for `tok` (no head transform, initialised from seed 8), saved at
/// `path` as the mlm example saves it (its model's metadata and the tokenizer's); returns its
/// parameters.
pub fn save_masked_lm(path: &Path, config: &TransformerConfig, tok: &Tokenizer) -> Params {
    let mut params = Params::new();
    let mlm = MaskedLm::new(&mut params, config, tok, false, &mut StdRng::seed_from_u64(8)).unwrap();
    let mut metadata = mlm.metadata();
    metadata.extend(tok.to_metadata());
    microlm::checkpoint::save(path, &params, &metadata).unwrap();
    params
}

/// For a model started from a checkpoint's parameters `from`: asserts that every tensor of
/// `params` whose name `from` also has holds exactly `from`'s values, and returns how many did
/// and the names of the others (the model's fresh tensors), sorted.
pub fn copied_and_fresh(params: &Params, from: &Params) -> (usize, Vec<String>) {
    let (mut copied, mut fresh) = (0, Vec::new());
    for id in params.ids() {
        let name = params.name(id);
        match from.find(name) {
            Some(f) => {
                assert_eq!(params.value(id), from.value(f), "{name}");
                copied += 1;
            }
            None => fresh.push(name.to_string()),
        }
    }
    fresh.sort();
    (copied, fresh)
}

/// The settings of the trainer's resume and determinism tests: `steps` updates into `dir`, the
/// learning rate warmed up over 2 updates to 3e-3 and falling by a cosine to 1e-4, gradients
/// clipped at norm 1, a line logged every 2 updates, validation every 3, no checkpoint before
/// the end (every 1,000 updates), seed 42, 64 tokens an update (a batch of 4 x 16), quiet.
pub fn resume_run_config(steps: usize, dir: PathBuf) -> TrainConfig {
    TrainConfig {
        steps,
        schedule: LrSchedule {
            peak: 3e-3,
            warmup: 2,
            total: steps,
            floor: 1e-4,
            decay: Decay::Cosine,
        },
        grad_clip: Some(1.0),
        log_every: 2,
        eval_every: 3,
        checkpoint_every: 1000,
        seed: 42,
        out_dir: dir,
        resume: None,
        tokens_per_step: 4 * 16,
        verbose: false,
        bounds: Vec::new(),
    }
}

/// Run `f` in a fresh rayon pool of `threads` threads (for the tests that compare thread counts).
pub fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Read the checkpoint at `path`, let `edit` change it (a tensor, a metadata value), and write
/// it back: for the tests of what a damaged or altered checkpoint does.
pub fn rewrite_checkpoint(path: &Path, edit: impl FnOnce(&mut microlm::checkpoint::Checkpoint)) {
    let mut ckpt = microlm::checkpoint::read(path).unwrap();
    edit(&mut ckpt);
    let mut all = Params::new();
    for (name, t) in &ckpt.tensors {
        all.add(name.clone(), t.clone());
    }
    microlm::checkpoint::save(path, &all, &ckpt.metadata).unwrap();
}

/// Every `.rs` file below `dir`, appended to `out` (for the tests that read the sources).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
