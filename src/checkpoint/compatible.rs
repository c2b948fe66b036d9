//! Before a program does any work with a checkpoint it was given: does the model in it fit what
//! the program will feed it? Every loader of a user-given checkpoint calls [`check_compatible`]
//! first, so a mismatch is an error naming both sides, never a panic deep in a layer
//! ("id 68 out of range") after an hour of other runs, nor a silent wrong answer (a BPE encoder
//! fed character ids scores the majority class).
//!
//! Three things are checked, each only if the program states it in [`Feeds`]:
//! - the tokenizer: the program's (built from its corpus and flags) must be the checkpoint's,
//!   kind and vocabulary both;
//! - the positions: the longest sequence the program will feed must fit `config.max_len`;
//! - the objective: the checkpoint must come from one of the objectives the program takes
//!   ([`objective_of`]).

use crate::nn::TransformerConfig;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::path::Path;

/// What a program will feed the model of a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Feeds<'a> {
    /// The flag that named the checkpoint (`"init"` for `--init`), for the errors.
    pub flag: &'a str,
    /// The tokenizer the program encodes its text with, and where it comes from
    /// (`"--corpus data/tinyshakespeare.txt, --tokenizer char"`).
    pub tokenizer: Option<(&'a Tokenizer, String)>,
    /// The longest sequence the program will feed, in tokens, and the flag or setting behind it.
    pub positions: Option<(usize, String)>,
    /// The objectives whose checkpoints the program takes (see [`objective_of`]); empty: any.
    pub objectives: &'a [&'a str],
}

/// The objective a checkpoint was trained with, from the keys its model wrote into the metadata:
/// `"simcse"` (`simcse.*`), `"electra"` (`electra.*`), `"bert"` (`pairs.*`, or `nsp.*` before
/// sentence-order prediction came: masked LM with next-sentence or sentence-order prediction),
/// `"mmlm"` (`mmlm.*`), `"mlm"` (`mlm.*`), `"clip"` (`clip.*`), `"denoise"` (`denoise.*`),
/// and otherwise `"clm"` (the causal LM writes its config alone).
pub fn objective_of(metadata: &BTreeMap<String, String>) -> &'static str {
    let has = |prefix: &str| metadata.keys().any(|k| k.starts_with(prefix));
    [
        ("simcse.", "simcse"),
        ("electra.", "electra"),
        ("pairs.", "bert"),
        ("nsp.", "bert"),
        ("mmlm.", "mmlm"),
        ("mlm.", "mlm"),
        ("clip.", "clip"),
        ("denoise.", "denoise"),
    ]
    .iter()
    .find(|(prefix, _)| has(prefix))
    .map_or("clm", |(_, name)| name)
}

/// A tokenizer in words: "a char tokenizer of 70 ids".
pub fn describe_tokenizer(t: &Tokenizer) -> String {
    format!("a {} tokenizer of {} ids", t.kind(), t.vocab_size())
}

/// Check the checkpoint at `path` against what the program `feeds` it; the error names the flag,
/// the file, and both sides of the first mismatch. Returns the checkpoint's metadata.
pub fn check_compatible(path: &Path, feeds: &Feeds) -> Result<BTreeMap<String, String>, String> {
    let flag = feeds.flag;
    let here = format!("--{flag} {}", path.display());
    let metadata = super::read(path).map_err(|e| format!("--{flag}: {e}"))?.metadata;
    let objective = objective_of(&metadata);
    if !feeds.objectives.is_empty() && !feeds.objectives.contains(&objective) {
        return Err(format!(
            "{here}: its model was trained as {objective}, but --{flag} takes a checkpoint of {}",
            feeds.objectives.join(" or ")
        ));
    }
    let its_tokenizer = Tokenizer::from_metadata(&metadata).map_err(|e| format!("{here}: {e}"))?;
    if let Some((ours, source)) = &feeds.tokenizer {
        if its_tokenizer != **ours {
            let what = if its_tokenizer.kind() == ours.kind() && its_tokenizer.vocab_size() == ours.vocab_size() {
                " (the same kind and size, but other tokens)"
            } else {
                ""
            };
            return Err(format!(
                "{here}: its model reads {}, but this program encodes with {} from {source}{what}; \
                 the ids would mean other tokens",
                describe_tokenizer(&its_tokenizer),
                describe_tokenizer(ours),
            ));
        }
    }
    let config = TransformerConfig::from_metadata(&metadata).map_err(|e| format!("{here}: {e}"))?;
    if let Some((n, source)) = &feeds.positions {
        if *n > config.max_len {
            return Err(format!(
                "{here}: its model reads at most {} positions (config.max_len), but this program \
                 feeds sequences of up to {n} ({source})",
                config.max_len
            ));
        }
    }
    Ok(metadata)
}

/// Load the checkpoint at `path`, given with `--flag`, that the `example` example makes (its
/// objective has the example's name): checked first ([`check_compatible`]), then read by
/// `load`, the objective's own loader (such as `MaskedLm::load`). Either error ends with the
/// command that makes one.
pub fn load_checked<T>(
    path: &Path,
    flag: &str,
    example: &str,
    load: impl FnOnce(&Path) -> Result<T, String>,
) -> Result<T, String> {
    let made_by = |e: String| format!("{e}\n(make it with: cargo run --release --example {example})");
    let objectives = [example];
    let feeds = Feeds {
        flag,
        objectives: &objectives,
        ..Feeds::default()
    };
    check_compatible(path, &feeds).map_err(made_by)?;
    load(path).map_err(made_by)
}
