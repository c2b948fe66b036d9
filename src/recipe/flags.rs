//! Reading a [`Recipe`] from the command line: every shared flag with its allowed range
//! ([`Domain`]), so that a zero count, a negative or NaN rate, or an unknown word is an error
//! naming the flag before anything runs. An example that does not use some of the shared flags
//! (the shapes world reads no corpus) leaves them out with [`Recipe::read_without`]: they are
//! then not in its `--help`, and giving one is an error ("unknown flag").

use super::check::parse_std;
use super::Recipe;
use crate::cli::{Domain, Flags, Number};

/// The shared flags the shapes-world examples (`mmlm`, `clip`) do not use: their text comes from
/// the world's grammar, with `--text-len` positions, not from a corpus.
pub const SHAPES_UNUSED: &[&str] = &["corpus", "tokenizer", "bpe-vocab", "seq-len"];

/// The shared flags that set the model's shape and initialisation: unused when the model comes
/// from a checkpoint (`--init`), so refused then ([`Flags::refuse_given`]). The tokenizer flags
/// are not among them: they say how the corpus is read, which must match the checkpoint's.
pub const SHAPE_FLAGS: &[&str] = &[
    "d-model",
    "layers",
    "heads",
    "tie",
    "scale-embeddings",
    "embedding-std",
    "embedding-norm",
    "position-scale",
    "activation",
];

/// The shared flags that only shape a training run (the optimiser, its schedule, the seed of the
/// weights and the data order, what is written and where): unused by a program that loads a
/// trained model and does not train it (`denoise --load`).
pub const TRAINING_FLAGS: &[&str] = &[
    "steps",
    "lr",
    "min-lr",
    "warmup",
    "weight-decay",
    "beta2",
    "decay-embeddings",
    "grad-clip",
    "dropout",
    "eval-every",
    "seed",
    "resume",
    "out",
    "profile",
    "checkpoint-blocks",
];

/// The flags of one example: those in `skip` are not read (their defaults stand).
struct Reader<'a> {
    flags: &'a mut Flags,
    skip: &'a [&'a str],
}

impl Reader<'_> {
    /// `default` if `name` is skipped, else what `read` reads from the flags.
    fn unless_skipped<T>(
        &mut self,
        name: &str,
        default: T,
        read: impl FnOnce(&mut Flags, T) -> Result<T, String>,
    ) -> Result<T, String> {
        match self.skip.contains(&name) {
            true => Ok(default),
            false => read(self.flags, default),
        }
    }

    fn arg<T: std::str::FromStr + std::fmt::Display>(&mut self, name: &str, default: T, help: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        self.unless_skipped(name, default, |f, d| f.arg(name, d, help))
    }

    fn arg_in<T: Number>(&mut self, name: &str, default: T, domain: Domain<T>, help: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        self.unless_skipped(name, default, |f, d| f.arg_in(name, d, domain, help))
    }

    fn arg_opt<T: std::str::FromStr>(&mut self, name: &str, help: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.unless_skipped(name, None, |f, _| f.arg_opt(name, help))
    }

    fn arg_choice(&mut self, name: &str, default: String, choices: &[&str], help: &str) -> Result<String, String> {
        self.unless_skipped(name, default, |f, d| f.arg_choice(name, &d, choices, help))
    }
}

impl Recipe {
    /// Read every shared flag (`defaults` where one is not given) and check each value; the
    /// error names the flag and its allowed range.
    pub fn read(flags: &mut Flags, defaults: Recipe) -> Result<Recipe, String> {
        Recipe::read_without(flags, defaults, &[])
    }

    /// [`Recipe::read`] leaving out the flags named in `skip` (their defaults stand; giving one
    /// is an unknown flag).
    pub fn read_without(flags: &mut Flags, defaults: Recipe, skip: &[&str]) -> Result<Recipe, String> {
        let d = defaults;
        let mut f = Reader { flags, skip };
        let one = Domain::at_least(1);
        let r = Recipe {
            steps: f.arg_in("steps", d.steps, one, "updates")?,
            corpus: f
                .arg("corpus", d.corpus.display().to_string(), "UTF-8 text file")?
                .into(),
            tokenizer: f.arg_choice("tokenizer", d.tokenizer, &["char", "bpe"], "tokenizer")?,
            bpe_vocab: f.arg_in(
                "bpe-vocab",
                d.bpe_vocab,
                Domain::at_least(256 + 5 + 1),
                "BPE vocabulary size (256 bytes, 5 specials, merges)",
            )?,
            d_model: f.arg_in("d-model", d.d_model, one, "width")?,
            layers: f.arg_in("layers", d.layers, one, "layers")?,
            heads: f.arg_in("heads", d.heads, one, "attention heads (divides --d-model)")?,
            seq_len: f.arg_in("seq-len", d.seq_len, Domain::at_least(2), "tokens per sequence")?,
            batch: f.arg_in("batch", d.batch, one, "sequences per update")?,
            dropout: f.arg_in("dropout", d.dropout, Domain::below(0.0, 1.0), "dropout probability")?,
            tie: f.arg("tie", d.tie, "tie the output projection to the token embedding")?,
            scale_embeddings: f.arg(
                "scale-embeddings",
                d.scale_embeddings,
                "multiply token vectors by sqrt(d-model)",
            )?,
            embedding_std: parse_std(&f.arg(
                "embedding-std",
                d.embedding_std.map_or("auto".to_string(), |s| s.to_string()),
                "token embedding init std, a number above 0 or auto (1/sqrt(d-model) when scaled)",
            )?)?,
            embedding_norm: f.arg("embedding-norm", d.embedding_norm, "LayerNorm on the embedding sum")?,
            position_scale: f.arg_in(
                "position-scale",
                d.position_scale,
                Domain::at_least(0.0),
                "factor on the sinusoidal positions",
            )?,
            activation: f.arg_choice("activation", d.activation, &["gelu", "gelu_tanh", "relu"], "activation")?,
            lr: f.arg_in("lr", d.lr, Domain::above(0.0), "peak learning rate")?,
            min_lr: f.arg_in(
                "min-lr",
                d.min_lr,
                Domain::at_least(0.0),
                "cosine decay floor (at most --lr)",
            )?,
            warmup: f.arg_in(
                "warmup",
                d.warmup,
                Domain::at_least(0),
                "warmup updates (if given, at most --steps)",
            )?,
            weight_decay: f.arg_in(
                "weight-decay",
                d.weight_decay,
                Domain::at_least(0.0),
                "AdamW weight decay",
            )?,
            beta2: f.arg_in("beta2", d.beta2, Domain::below(0.0, 1.0), "AdamW beta2")?,
            decay_embeddings: f.arg("decay-embeddings", d.decay_embeddings, "weight decay on embeddings")?,
            grad_clip: f.arg_in(
                "grad-clip",
                d.grad_clip,
                Domain::above(0.0),
                "global gradient-norm clip",
            )?,
            eval_every: f.arg_in("eval-every", d.eval_every, one, "validate every N updates")?,
            eval_batches: f.arg_in("eval-batches", d.eval_batches, one, "validation batches")?,
            seed: f.arg_in("seed", d.seed, Domain::seeds(), "seed")?,
            resume: f.arg_opt("resume", "continue this checkpoint")?,
            out: f.arg("out", d.out.display().to_string(), "output directory")?.into(),
            tokens_per_step: d.tokens_per_step,
        };
        r.check()?;
        if f.flags.is_given("warmup") {
            // A run shorter than its warmup never reaches --lr. (The default warmup may be
            // longer than a short --steps: a quick try is allowed to end while warming up.)
            let steps = format!("must be at most --steps ({})", r.steps);
            crate::cli::check(r.warmup <= r.steps, "warmup", r.warmup, &steps)?;
        }
        // One switch for the process, as MICROLM_THREADS is: tapes read it when they are made.
        crate::profile::set_enabled(f.arg("profile", false, "print where a training step goes, op by op")?);
        crate::tape::set_checkpoint_blocks(f.arg(
            "checkpoint-blocks",
            false,
            "keep only each layer's input and recompute the layer in backward (less memory, about a third more compute)",
        )?);
        Ok(r)
    }
}
