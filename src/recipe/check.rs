//! Checking a recipe's values, each error naming its flag.

use super::Recipe;
use crate::cli::check;
use crate::nn::Activation;

impl Recipe {
    /// Check every value; the error names the flag.
    pub fn check(&self) -> Result<(), String> {
        let at_least_1 = "must be at least 1";
        check(self.steps >= 1, "steps", self.steps, at_least_1)?;
        check(self.batch >= 1, "batch", self.batch, at_least_1)?;
        check(self.seq_len >= 2, "seq-len", self.seq_len, "must be at least 2")?;
        check(self.lr > 0.0 && self.lr.is_finite(), "lr", self.lr, "must be positive")?;
        check(
            (0.0..=self.lr).contains(&self.min_lr),
            "min-lr",
            self.min_lr,
            "must be in [0, lr]",
        )?;
        check(
            self.weight_decay >= 0.0,
            "weight-decay",
            self.weight_decay,
            "must not be negative",
        )?;
        check(
            (0.0..1.0).contains(&self.beta2),
            "beta2",
            self.beta2,
            "must be in [0, 1)",
        )?;
        check(self.grad_clip > 0.0, "grad-clip", self.grad_clip, "must be positive")?;
        check(self.eval_every >= 1, "eval-every", self.eval_every, at_least_1)?;
        check(self.eval_batches >= 1, "eval-batches", self.eval_batches, at_least_1)?;
        check(
            ["char", "bpe"].contains(&self.tokenizer.as_str()),
            "tokenizer",
            &self.tokenizer,
            "expected char or bpe",
        )?;
        let known = Activation::parse(&self.activation).is_some();
        check(
            known,
            "activation",
            &self.activation,
            "expected gelu, gelu_tanh or relu",
        )?;
        let min_bpe = 256 + 5 + 1;
        check(
            self.bpe_vocab >= min_bpe,
            "bpe-vocab",
            self.bpe_vocab,
            "must exceed 256 bytes + 5 specials",
        )
    }
}

/// `--embedding-std`: `auto` (None) or a positive, finite standard deviation.
pub(super) fn parse_std(raw: &str) -> Result<Option<f32>, String> {
    if raw == "auto" {
        return Ok(None);
    }
    match raw.parse::<f32>() {
        Ok(std) if std > 0.0 && std.is_finite() => Ok(Some(std)),
        _ => Err(format!("--embedding-std {raw:?}: expected auto or a positive number")),
    }
}
