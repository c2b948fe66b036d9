//! Fuzzing the loaders: whatever bytes a file holds, `checkpoint::read`, `MaskedLm::load`,
//! `CausalLm::load`, `checkpoint::load_training`, `BpeTokenizer::load`,
//! `Tokenizer::from_metadata`, `load_text` and `Corpus::load` return an error or a result that
//! works, and never panic.
//!
//! The inputs are arbitrary bytes and mutations of real files written here: a training
//! checkpoint of a tiny masked LM (with AdamW's state), a checkpoint of a tiny causal LM with a
//! BPE tokenizer, a BPE tokenizer file and a small corpus. The mutations truncate, flip bytes,
//! change numbers in the safetensors JSON header (shapes, offsets, names) and change metadata
//! values (config fields, `tokenizer.chars`, `tokenizer.merges`). Every loader call runs under
//! `catch_unwind`, and a panic fails the case with its message.
//!
//! An `Ok` is checked to be usable: a loaded model runs a forward pass on text its tokenizer
//! encodes, a loaded tokenizer round-trips text.
//!
//! Mutated config numbers stay at or below 4096 (and `d_model` at or below 512) to keep each
//! case cheap. Absurd sizes, which once aborted the process on allocation, and a tokenizer with
//! more ids than `config.vocab_size`, which once loaded and then panicked on the first forward,
//! have explicit tests at the end; a loaded model whose tokenizer is larger than its vocabulary
//! fails the property.
//!
//! Default case counts keep this binary to a few seconds in release; `PROPTEST_CASES` raises
//! them.

mod common;

use common::{fresh_dir, no_eval, short_run_config, tiny_corpus, tiny_training_config};

use microlm::checkpoint;
use microlm::data::{load_text, Batch, Corpus};
use microlm::nn::TransformerConfig;
use microlm::objectives::{CausalLm, MaskedLm};
use microlm::optim::{AdamW, Optimizer};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use microlm::trainer::{train, TrainConfig};
use microlm::Params;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// The real files every mutation starts from.

struct Bases {
    dir: PathBuf,
    /// A training checkpoint of a tiny MaskedLm (char tokenizer, AdamW state, train.step 2).
    mlm: Vec<u8>,
    /// The settings a resume of that run asks for (its metadata without `train.step`).
    mlm_expected: BTreeMap<String, String>,
    /// A model checkpoint of a tiny CausalLm with a BPE tokenizer.
    clm: Vec<u8>,
    /// A BPE tokenizer file.
    bpe: Vec<u8>,
    /// A small corpus.
    corpus: Vec<u8>,
}

fn bases() -> &'static Bases {
    static BASES: OnceLock<Bases> = OnceLock::new();
    BASES.get_or_init(|| {
        let dir = fresh_dir("fuzz");

        // A masked LM trained for two steps by the trainer: a real training checkpoint.
        let tok = Tokenizer::Char(CharTokenizer::from_text(tiny_corpus()));
        let mut params = Params::new();
        let config = tiny_training_config(tok.vocab_size());
        let model = MaskedLm::new(&mut params, &config, &tok, true, &mut StdRng::seed_from_u64(0)).unwrap();
        let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
        let mut meta = model.metadata();
        meta.extend(tok.to_metadata());
        let ids = tok.encode(tiny_corpus());
        let out = dir.join("mlm_run");
        let tc = TrainConfig {
            seed: 7,
            ..short_run_config(2, out.clone(), 2 * 16)
        };
        let batch = |rng: &mut StdRng| {
            let rows: Vec<usize> = (0..2)
                .flat_map(|_| {
                    let s = rng.random_range(0..ids.len() - 16);
                    ids[s..s + 16].to_vec()
                })
                .collect();
            Batch::new(rows, 2, 16)
        };
        train(
            &tc,
            &mut params,
            &mut optimizer,
            &meta,
            |tape, p, rng| model.loss(tape, p, &batch(rng), rng),
            no_eval,
        )
        .unwrap();
        let mlm_path = tc.checkpoint_path();
        let mlm = std::fs::read(&mlm_path).unwrap();
        let mut mlm_expected = checkpoint::read(&mlm_path).unwrap().metadata;
        mlm_expected.remove("train.step");

        // A causal LM with a BPE tokenizer, saved as a plain model checkpoint.
        let bpe_tok = BpeTokenizer::train(tiny_corpus(), 280);
        let tok = Tokenizer::Bpe(bpe_tok.clone());
        let mut params = Params::new();
        let model = CausalLm::new(
            &mut params,
            &tiny_training_config(tok.vocab_size()),
            &mut StdRng::seed_from_u64(1),
        )
        .unwrap();
        let mut meta = model.metadata();
        meta.extend(tok.to_metadata());
        let clm_path = dir.join("clm.safetensors");
        checkpoint::save(&clm_path, &params, &meta).unwrap();
        let clm = std::fs::read(&clm_path).unwrap();

        let bpe_path = dir.join("tok.bpe");
        bpe_tok.save(&bpe_path).unwrap();
        let bpe = std::fs::read(&bpe_path).unwrap();

        Bases {
            dir,
            mlm,
            mlm_expected,
            clm,
            bpe,
            corpus: tiny_corpus().as_bytes().to_vec(),
        }
    })
}

/// A file of its own for each test (tests run on parallel threads).
fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = bases().dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Running a loader and checking what it returns.

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".into()
    }
}

/// Run `f`, turning a panic into a failed case that names the loader and the panic.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| TestCaseError::fail(format!("{what} panicked: {}", panic_message(p.as_ref()))))
}

/// A short text's ids, cut to the model's `max_len`, as one sequence.
fn smoke_batch(tokenizer: &Tokenizer, max_len: usize) -> Option<Batch> {
    let mut ids = tokenizer.encode("To be, or not to be");
    ids.truncate(max_len.min(12));
    (!ids.is_empty()).then(|| {
        let n = ids.len();
        Batch::new(ids, 1, n)
    })
}

/// The tokenizer has ids the model's embedding lacks: a load must refuse it.
fn tokenizer_too_large(tokenizer: &Tokenizer, config: &TransformerConfig) -> bool {
    tokenizer.vocab_size() > config.vocab_size
}

/// `MaskedLm::load`, and a forward pass if it loaded.
fn check_mlm_load(path: &Path) -> Result<bool, TestCaseError> {
    let loaded = no_panic("MaskedLm::load", || MaskedLm::load(path))?;
    let Ok((model, params, tokenizer)) = loaded else {
        return Ok(false);
    };
    if tokenizer_too_large(&tokenizer, &model.encoder.config) {
        return Err(TestCaseError::fail(format!(
            "MaskedLm::load accepted a tokenizer of {} ids for config.vocab_size {}",
            tokenizer.vocab_size(),
            model.encoder.config.vocab_size
        )));
    }
    if let Some(x) = smoke_batch(&tokenizer, model.encoder.config.max_len) {
        no_panic("MaskedLm::evaluate after a successful load", || {
            model.evaluate(&params, &[x])
        })?;
    }
    Ok(true)
}

/// `CausalLm::load`, and a forward pass if it loaded.
fn check_clm_load(path: &Path) -> Result<bool, TestCaseError> {
    let loaded = no_panic("CausalLm::load", || CausalLm::load(path))?;
    let Ok((model, params, tokenizer)) = loaded else {
        return Ok(false);
    };
    if tokenizer_too_large(&tokenizer, &model.decoder.config) {
        return Err(TestCaseError::fail(
            "CausalLm::load accepted a tokenizer larger than the model",
        ));
    }
    if let Some(x) = smoke_batch(&tokenizer, model.decoder.config.max_len) {
        no_panic("CausalLm::evaluate after a successful load", || {
            model.evaluate(&params, &[x])
        })?;
    }
    Ok(true)
}

/// `checkpoint::load_training` into a fresh tiny MaskedLm and AdamW, as a resume does.
fn check_load_training(path: &Path) -> Result<bool, TestCaseError> {
    let b = bases();
    let tok = Tokenizer::Char(CharTokenizer::from_text(tiny_corpus()));
    let mut params = Params::new();
    MaskedLm::new(
        &mut params,
        &tiny_training_config(tok.vocab_size()),
        &tok,
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
    let r = no_panic("checkpoint::load_training", || {
        checkpoint::load_training(path, &mut params, &mut optimizer, &b.mlm_expected)
    })?;
    Ok(r.is_ok())
}

/// Every checkpoint loader on the file at `path`.
fn check_checkpoint_file(path: &Path) -> Result<(), TestCaseError> {
    let read = no_panic("checkpoint::read", || checkpoint::read(path))?;
    if let Ok(ckpt) = &read {
        let _ = no_panic("Tokenizer::from_metadata", || Tokenizer::from_metadata(&ckpt.metadata))?;
        let _ = no_panic("TransformerConfig::from_metadata", || {
            TransformerConfig::from_metadata(&ckpt.metadata)
        })?;
    }
    check_mlm_load(path)?;
    check_clm_load(path)?;
    check_load_training(path)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Mutations.

#[derive(Clone, Debug)]
enum Mutation {
    /// Keep the first `at` bytes (`at` is taken modulo the length + 1).
    Truncate { at: usize },
    /// Set byte `at % len` to `to`, for each pair.
    Flip { bytes: Vec<(usize, u8)> },
    /// Flip bytes, but only inside the JSON header.
    FlipHeader { bytes: Vec<(usize, u8)> },
    /// Replace the `index % count`-th number in the header (outside `__metadata__`) by `value`;
    /// `fix_length` rewrites the 8-byte header length to match.
    HeaderNumber {
        index: usize,
        value: String,
        fix_length: bool,
    },
}

fn mutate(base: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = base.to_vec();
    match m {
        Mutation::Truncate { at } => out.truncate(at % (base.len() + 1)),
        Mutation::Flip { bytes } => {
            for &(at, to) in bytes {
                let n = out.len();
                out[at % n] = to;
            }
        }
        Mutation::FlipHeader { bytes } => {
            let n = header_len(base).min(base.len() - 8);
            for &(at, to) in bytes {
                out[8 + at % n] = to;
            }
        }
        Mutation::HeaderNumber {
            index,
            value,
            fix_length,
        } => {
            let n = header_len(base);
            let header = &base[8..8 + n];
            // Skip the metadata object: its numbers are config values, mutated (within bounds)
            // by the metadata strategies instead.
            let meta = find(header, b"\"__metadata__\"").map(|s| (s, s + find(&header[s..], b"}").unwrap()));
            let runs: Vec<(usize, usize)> = digit_runs(header)
                .into_iter()
                .filter(|&(s, _)| meta.is_none_or(|(a, b)| s < a || s > b))
                .collect();
            if runs.is_empty() {
                return out;
            }
            let (s, e) = runs[index % runs.len()];
            let mut h = header[..s].to_vec();
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(&header[e..]);
            let len = if *fix_length { h.len() as u64 } else { n as u64 };
            out = len.to_le_bytes().to_vec();
            out.extend_from_slice(&h);
            out.extend_from_slice(&base[8 + n..]);
        }
    }
    out
}

fn header_len(file: &[u8]) -> usize {
    u64::from_le_bytes(file[..8].try_into().unwrap()) as usize
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn digit_runs(s: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i].is_ascii_digit() {
            let start = i;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// Numbers for the header's shapes and offsets: edges, off-by-ones, and huge ones (these are
/// checked against the file's length by the safetensors crate, so they cannot make it
/// allocate), and non-numbers.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..=70).prop_map(|v| v.to_string()),
        Just("4096".to_string()),
        Just("65536".to_string()),
        Just("4294967296".to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("1.5".to_string()),
        Just("1e3".to_string()),
        Just("".to_string()),
        Just("\"x\"".to_string()),
    ]
}

fn byte_flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    vec((any::<usize>(), any::<u8>()), 1..8)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        byte_flips().prop_map(|bytes| Mutation::Flip { bytes }),
        byte_flips().prop_map(|bytes| Mutation::FlipHeader { bytes }),
        (any::<usize>(), header_value(), prop::bool::weighted(0.8)).prop_map(|(index, value, fix_length)| {
            Mutation::HeaderNumber {
                index,
                value,
                fix_length,
            }
        }),
    ]
}

/// A changed metadata map: each edit sets a key to a value or removes it.
#[derive(Clone, Debug)]
enum MetaEdit {
    Set(String, String),
    Remove(String),
}

const CONFIG_FIELDS: [&str; 13] = [
    "vocab_size",
    "d_model",
    "heads",
    "layers",
    "d_ff",
    "activation",
    "max_len",
    "dropout",
    "norm",
    "tie_embeddings",
    "type_vocab_size",
    "scale_embeddings",
    "layer_norm_eps",
];

/// A config value: numbers no larger than 4096 (512 for d_model), and strings that are not
/// numbers or are numbers out of range for floats.
fn config_value(field: &'static str) -> BoxedStrategy<String> {
    let cap: usize = if field == "d_model" { 512 } else { 4096 };
    prop_oneof![
        4 => (0usize..=cap).prop_map(|v| v.to_string()),
        4 => prop::sample::select(vec![0usize, 1, 2, 3, 4, 7, 8, 15, 16, 17, 23, 24, 25, 31, 32, 33, 64, 279, 280, 281, 512])
            .prop_map(move |v| v.min(cap).to_string()),
        2 => prop::sample::select(vec![
            "", "-1", "0.0", "1e-30", "1e40", "NaN", "inf", "-inf", "0.5", "true", "false", "pre",
            "post", "relu", "gelu", "gelu_tanh", "x", "2 ", " 2", "+2",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

fn meta_edit() -> impl Strategy<Value = MetaEdit> {
    let config = prop::sample::select(CONFIG_FIELDS.to_vec())
        .prop_flat_map(|f| (Just(f), config_value(f)))
        .prop_map(|(f, v)| MetaEdit::Set(format!("config.{f}"), v));
    let remove = prop::sample::select(
        CONFIG_FIELDS
            .iter()
            .map(|f| format!("config.{f}"))
            .chain(["tokenizer.kind", "tokenizer.chars", "tokenizer.merges", "train.step"].map(String::from))
            .collect::<Vec<_>>(),
    )
    .prop_map(MetaEdit::Remove);
    let kind = prop::sample::select(vec!["char", "bpe", "", "Char", "wordpiece"])
        .prop_map(|k| MetaEdit::Set("tokenizer.kind".into(), k.into()));
    let chars = prop_oneof![
        ".{0,40}",
        Just(tiny_corpus().to_string()),
        Just(format!("{}XYZ", tiny_corpus())),
        Just(tiny_corpus()[..20].to_string())
    ]
    .prop_map(|c| MetaEdit::Set("tokenizer.chars".into(), c));
    let merges = merges_string().prop_map(|m| MetaEdit::Set("tokenizer.merges".into(), m));
    let step = prop_oneof![
        (0usize..=4096).prop_map(|v| v.to_string()),
        Just(u64::MAX.to_string()),
        Just("-1".to_string()),
        Just("2.0".to_string())
    ]
    .prop_map(|s| MetaEdit::Set("train.step".into(), s));
    let other = ("[a-z.]{1,12}", ".{0,12}").prop_map(|(k, v)| MetaEdit::Set(k, v));
    prop_oneof![4 => config, 1 => remove, 1 => kind, 2 => chars, 2 => merges, 1 => step, 1 => other]
}

/// A `tokenizer.merges` value: valid chains of merges (of any length up to 64), chains with a
/// bad entry, and free text.
fn merges_string() -> impl Strategy<Value = String> {
    // Merge i may use ids below 256 + i.
    let valid = vec((any::<usize>(), any::<usize>()), 0..64).prop_map(|pairs| {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (a, b))| format!("{} {}", a % (256 + i), b % (256 + i)))
            .collect::<Vec<_>>()
            .join(",")
    });
    let entry = prop_oneof![
        (0usize..400, 0usize..400).prop_map(|(a, b)| format!("{a} {b}")),
        Just("".to_string()),
        Just("1".to_string()),
        Just("1 2 3".to_string()),
        Just(" 1 2".to_string()),
        Just("-1 2".to_string()),
        Just(format!("{} 1", u64::MAX)),
        Just("a b".to_string()),
    ];
    prop_oneof![valid, vec(entry, 0..20).prop_map(|e| e.join(",")), ".{0,30}"]
}

fn apply(meta: &BTreeMap<String, String>, edits: &[MetaEdit]) -> BTreeMap<String, String> {
    let mut m = meta.clone();
    for e in edits {
        match e {
            MetaEdit::Set(k, v) => {
                m.insert(k.clone(), v.clone());
            }
            MetaEdit::Remove(k) => {
                m.remove(k);
            }
        }
    }
    m
}

/// The checkpoint `base` with its metadata replaced, saved through `checkpoint::save`.
fn with_metadata(base: &[u8], name: &str, edits: &[MetaEdit]) -> PathBuf {
    let path = write(name, base);
    let ckpt = checkpoint::read(&path).unwrap();
    let mut params = Params::new();
    for (n, t) in &ckpt.tensors {
        params.add(n.clone(), t.clone());
    }
    checkpoint::save(&path, &params, &apply(&ckpt.metadata, edits)).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// The properties.

#[test]
fn arbitrary_bytes_never_panic_any_loader() {
    let _ = bases();
    common::run_scaled(
        "arbitrary bytes",
        64,
        1,
        prop_oneof![
            vec(any::<u8>(), 0..64),
            // A plausible header length in front of random bytes, so the JSON parser is reached.
            (0u64..200, vec(any::<u8>(), 0..200)).prop_map(|(n, rest)| {
                let mut v = n.to_le_bytes().to_vec();
                v.extend(rest);
                v
            }),
            // A JSON-looking header.
            "\\{\"[a-z_]{0,12}\":\\{\"dtype\":\"F32\",\"shape\":\\[[0-9,]{0,8}\\],\"data_offsets\":\\[[0-9,]{0,8}\\]\\}\\}"
                .prop_map(|h| {
                    let mut v = (h.len() as u64).to_le_bytes().to_vec();
                    v.extend(h.as_bytes());
                    v.extend([0u8; 16]);
                    v
                }),
        ],
        |bytes| {
            let path = write("arbitrary.bin", &bytes);
            check_checkpoint_file(&path)?;
            let _ = no_panic("BpeTokenizer::load", || BpeTokenizer::load(&path))?;
            let _ = no_panic("load_text", || load_text(&path))?;
            Ok(())
        },
    );
}

#[test]
fn mutated_training_checkpoints_never_panic_the_loaders() {
    let b = bases();
    common::run_scaled("mutated MLM training checkpoint", 96, 1, mutation(), |m| {
        let path = write("mlm_mutated.safetensors", &mutate(&b.mlm, &m));
        check_checkpoint_file(&path)
    });
}

#[test]
fn mutated_clm_checkpoints_never_panic_the_loaders() {
    let b = bases();
    common::run_scaled("mutated CLM checkpoint", 64, 1, mutation(), |m| {
        let path = write("clm_mutated.safetensors", &mutate(&b.clm, &m));
        check_checkpoint_file(&path)
    });
}

#[test]
fn changed_metadata_never_panics_the_loaders() {
    let b = bases();
    common::run_scaled(
        "changed metadata",
        96,
        1,
        (any::<bool>(), vec(meta_edit(), 1..4)),
        |(clm, edits)| {
            let base = if clm { &b.clm } else { &b.mlm };
            let path = with_metadata(base, "meta_mutated.safetensors", &edits);
            check_checkpoint_file(&path)
        },
    );
}

#[test]
fn arbitrary_tokenizer_metadata_never_panics() {
    common::run_scaled(
        "tokenizer metadata",
        256,
        1,
        (
            prop::sample::select(vec!["char", "bpe", "bpe", "other"]),
            ".{0,40}",
            merges_string(),
        ),
        |(kind, chars, merges)| {
            let m: BTreeMap<String, String> = [
                ("tokenizer.kind", kind.to_string()),
                ("tokenizer.chars", chars),
                ("tokenizer.merges", merges),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            if let Ok(t) = no_panic("Tokenizer::from_metadata", || Tokenizer::from_metadata(&m))? {
                let ids = no_panic("encode after from_metadata", || t.encode(tiny_corpus()))?;
                prop_assert!(ids.iter().all(|&i| i < t.vocab_size()), "an id beyond the vocabulary");
                no_panic("decode after from_metadata", || t.decode(&ids))?;
            }
            Ok(())
        },
    );
}

/// A number for the BPE file: within bounds for the count line (a huge `merges N` would make
/// `Vec::with_capacity` abort; see the ignored test), any for the merge lines.
fn bpe_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..600).prop_map(|v| v.to_string()),
        Just("4096".to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("".to_string()),
        Just("x".to_string()),
    ]
}

#[test]
fn mutated_bpe_files_never_panic_the_loader() {
    let b = bases();
    let strategy = prop_oneof![
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        byte_flips().prop_map(|bytes| Mutation::Flip { bytes }),
        // HeaderNumber's index, reused: which number in the file to replace.
        (any::<usize>(), bpe_number()).prop_map(|(index, value)| Mutation::HeaderNumber {
            index,
            value,
            fix_length: true
        }),
    ];
    common::run_scaled("mutated BPE file", 128, 1, strategy, |m| {
        let bytes = match &m {
            Mutation::HeaderNumber { index, value, .. } => {
                let runs = digit_runs(&b.bpe);
                let (s, e) = runs[index % runs.len()];
                // The count line is the second line; keep what goes there bounded.
                let on_count_line =
                    s < b.bpe.iter().position(|&c| c == b'\n').unwrap() + 16 && b.bpe[..s].ends_with(b"merges ");
                let value = if on_count_line && value.len() > 6 {
                    "4096"
                } else {
                    value.as_str()
                };
                [&b.bpe[..s], value.as_bytes(), &b.bpe[e..]].concat()
            }
            other => mutate(&b.bpe, other),
        };
        let path = write("bpe_mutated.txt", &bytes);
        if let Ok(t) = no_panic("BpeTokenizer::load", || BpeTokenizer::load(&path))? {
            let ids = no_panic("encode after load", || t.encode(tiny_corpus()))?;
            prop_assert!(ids.iter().all(|&i| i < t.vocab_size()), "an id beyond the vocabulary");
            let text = no_panic("decode after load", || t.decode(&ids))?;
            prop_assert_eq!(text, tiny_corpus());
        }
        Ok(())
    });
}

#[test]
fn mutated_corpora_never_panic_load_text_or_corpus_load() {
    let b = bases();
    let strategy = (
        prop_oneof![mutation().prop_map(|m| match m {
            // The corpus has no header: replace the header mutations with plain flips.
            Mutation::FlipHeader { bytes } | Mutation::Flip { bytes } => Mutation::Flip { bytes },
            Mutation::HeaderNumber { index, .. } => Mutation::Truncate { at: index },
            t => t,
        }),],
        prop::sample::select(vec!["char", "bpe", "word"]),
        prop::sample::select(vec![261usize, 262, 300]),
        prop::sample::select(vec![1usize, 2, 8, 16, 64, 4096]),
    );
    common::run_scaled(
        "mutated corpus",
        48,
        1,
        strategy,
        |(m, tokenizer, bpe_vocab, seq_len)| {
            let path = write("corpus_mutated.txt", &mutate(&b.corpus, &m));
            let _ = no_panic("load_text", || load_text(&path))?;
            if let Ok(c) = no_panic("Corpus::load", || Corpus::load(&path, tokenizer, bpe_vocab, seq_len))? {
                prop_assert!(c.train.iter().chain(&c.val).all(|&i| i < c.tokenizer.vocab_size()));
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Inputs that once aborted or panicked.

#[test]
fn a_checkpoint_with_absurd_config_sizes_is_an_error() {
    let b = bases();
    for (field, value) in [
        // Single huge allocations first (they aborted at once before the bounds check); `layers`
        // last, since a loop building a billion layers would fill the memory slowly.
        ("max_len", "1000000000000"),
        ("d_model", "4000000000"),
        ("d_ff", "1000000000000"),
        ("vocab_size", "1000000000000"),
        ("type_vocab_size", "1000000000000"),
        ("layers", "1000000000"),
    ] {
        let edits = [MetaEdit::Set(format!("config.{field}"), value.into())];
        for base in [&b.mlm, &b.clm] {
            let path = with_metadata(base, "absurd.safetensors", &edits);
            assert!(
                MaskedLm::load(&path).is_err(),
                "MaskedLm::load accepted config.{field} = {value}"
            );
            assert!(
                CausalLm::load(&path).is_err(),
                "CausalLm::load accepted config.{field} = {value}"
            );
        }
    }
}

#[test]
fn a_causal_lm_checkpoint_with_a_larger_tokenizer_is_an_error() {
    let b = bases();
    // One more merge than the model has ids for.
    let ckpt = checkpoint::read(&write("larger_tok_base.safetensors", &b.clm)).unwrap();
    let merges = format!("{},97 98", ckpt.metadata["tokenizer.merges"]);
    let path = with_metadata(
        &b.clm,
        "larger_tok.safetensors",
        &[MetaEdit::Set("tokenizer.merges".into(), merges)],
    );
    let r = catch_unwind(|| {
        CausalLm::load(&path).map(|(model, params, tokenizer)| {
            let x = smoke_batch(&tokenizer, 16).unwrap();
            model.evaluate(&params, &[x])
        })
    });
    match r {
        Ok(r) => assert!(r.is_err(), "CausalLm::load accepted a tokenizer larger than the model"),
        Err(p) => panic!("panicked: {}", panic_message(p.as_ref())),
    }
}

/// Found by this fuzzing: the count line `merges N` goes straight
/// into `Vec::with_capacity(N)` in `BpeTokenizer::load` (fixed). With N = 2^64 - 1 that panics with
/// "capacity overflow"; with N = 10^12 it aborts the process ("memory allocation of
/// 16000000000000 bytes failed"), which no `catch_unwind` can catch, so only the panicking
/// value is tested here and the strategy above keeps the count line small.
#[test]
fn a_bpe_file_with_a_huge_merge_count_is_an_error() {
    let path = write(
        "huge_count.bpe",
        format!("microlm bpe v1\nmerges {}\n97 98\n", u64::MAX).as_bytes(),
    );
    match catch_unwind(|| BpeTokenizer::load(&path)) {
        Ok(r) => assert!(r.is_err(), "a count of 2^64 - 1 with one merge line loaded"),
        Err(p) => panic!("BpeTokenizer::load panicked: {}", panic_message(p.as_ref())),
    }
}
