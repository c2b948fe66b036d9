//! Every example's flags, as a user types them: each example's `--help` is read, and every flag
//! it lists is given values outside its stated range (the range `--help` shows: "at least 1",
//! "a finite number above 0", "one of char, bpe"), NaN and infinity for numbers, a word for a
//! number, "maybe" for a switch. Each such run must stop at once with status 2 and an error
//! naming the flag, never panic, abort or run on. A few mistakes the issue found are run as
//! well (a flag an example does not use, sizes that cannot fit in memory).
//!
//! The examples are run as the programs users run: the binaries `cargo test --release` builds
//! beside this test (`target/release/examples/`). Built alone (`cargo test --test
//! example_flags`), the examples must be built first: `cargo build --release --examples`.
//! Every run here stops while reading flags or before building a model, so the whole file takes
//! a few seconds.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Every example: the training and inference ones by name, the tours by file.
const EXAMPLES: [&str; 18] = [
    "01_autograd_tour",
    "02_transformer_tour",
    "03_tokenizers",
    "mlm",
    "fill_mask",
    "clm",
    "generate",
    "bert",
    "denoise",
    "simcse",
    "mmlm",
    "clip",
    "finetune",
    "scaling",
    "bias",
    "attention",
    "export_hf",
    "electra",
];

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap(); // target/release/deps/example_flags-...
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build --release --examples)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MICROLM_THREADS", "1")
        .output()
        .unwrap()
}

/// A flag as `--help` lists it: `  --name   what it does; its range (default)`.
#[derive(Debug)]
struct Listed {
    name: String,
    help: String,
    default: String,
}

fn listed_flags(name: &str) -> Vec<Listed> {
    let out = run(name, &["--help"]);
    assert_eq!(out.status.code(), Some(0), "{name} --help");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("  --"))
        .map(|l| {
            let (flag, rest) = l.split_once(' ').unwrap_or((l, ""));
            let open = rest.rfind('(').expect("a default in parentheses");
            Listed {
                name: flag.to_string(),
                help: rest[..open].trim().to_string(),
                default: rest[open + 1..rest.len() - 1].to_string(),
            }
        })
        .collect()
}

/// The number after `phrase` in `help`, if the range has that end.
fn end(help: &str, phrase: &str) -> Option<f64> {
    let at = help.find(phrase)? + phrase.len();
    help[at..].split([' ', ';', ')']).find(|w| !w.is_empty())?.parse().ok()
}

/// Values outside what `--help` says the flag takes.
fn outside(flag: &Listed) -> Vec<String> {
    let h = &flag.help;
    let mut bad = Vec::new();
    if let Some(choices) = h.split("one of ").nth(1) {
        bad.push("no-such-choice".to_string());
        assert!(!choices.is_empty());
    }
    if flag.default == "true" || flag.default == "false" {
        bad.push("maybe".to_string());
    }
    let floats = h.contains("a finite number");
    let numeric = floats || h.contains("at least") || h.contains("above");
    if numeric {
        bad.push("x".to_string());
    }
    if floats {
        bad.extend(["nan", "inf", "-inf"].map(String::from));
    }
    if let Some(low) = end(h, "at least ") {
        if floats || low >= 1.0 {
            bad.push(format!("{}", low - 1.0));
        }
    }
    if let Some(low) = end(h, "above ") {
        bad.push(format!("{low}"));
    }
    if let Some(high) = end(h, "at most ") {
        bad.push(format!("{}", high + 1.0));
    }
    if let Some(high) = end(h, "below ") {
        bad.push(format!("{high}"));
    }
    bad
}

fn assert_refused(name: &str, args: &[&str], names: &str) {
    let out = run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{name} {args:?} panicked: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name} {args:?}: status {:?}, {stderr}",
        out.status
    );
    assert!(
        stderr.starts_with(&format!("error: {names}")),
        "{name} {args:?}: {stderr}"
    );
}

#[test]
fn every_flag_of_every_example_refuses_values_outside_its_range_by_name() {
    let mut tried = 0;
    for name in EXAMPLES {
        let flags = listed_flags(name);
        for flag in &flags {
            for value in outside(flag) {
                let arg = format!("--{}", flag.name);
                assert_refused(name, &[&arg, &value], &format!("{arg} "));
                tried += 1;
            }
        }
        // Any example: a flag it does not have.
        assert_refused(name, &["--no-such-flag", "1"], "unknown flag --no-such-flag");
    }
    assert!(tried > 300, "only {tried} values tried: is --help read?");
}

/// Every numeric flag states its range in `--help`, so the test above reaches it: a number with
/// no range would be a flag that takes any value. Seeds too: 0 to 2^64 - 1.
#[test]
fn every_numeric_flag_states_its_range() {
    let mut unranged = Vec::new();
    for name in EXAMPLES {
        for flag in listed_flags(name) {
            let number = flag.default.parse::<f64>().is_ok();
            let ranged = flag.help.contains("at least") || flag.help.contains("above");
            if number && !ranged {
                unranged.push(format!("{name} --{}: {:?}", flag.name, flag.help));
            }
        }
    }
    assert!(unranged.is_empty(), "{}", unranged.join("\n"));
}

/// The cases the issue found, each refused by name before any work.
#[test]
fn the_mistakes_the_issue_found_are_refused() {
    assert_refused("clip", &["--corpus", "/nonexistent"], "unknown flag --corpus");
    assert_refused("mmlm", &["--seq-len", "32"], "unknown flag --seq-len");
    assert_refused("clip", &["--embed-dim", "0"], "--embed-dim 0");
    assert_refused("finetune", &["--seeds", "0"], "--seeds 0");
    assert_refused("finetune", &["--lr", "nan"], "--lr NaN");
    assert_refused("denoise", &["--score", "0"], "--score 0");
    // Seeds, warmup and the documents shown: the ranges of the second round's sweep.
    for (name, seed) in [("mlm", "seed"), ("generate", "seed"), ("bias", "corpus-seed")] {
        let arg = format!("--{seed}");
        for bad in ["-1", "18446744073709551616", "0x10"] {
            let out = run(name, &[&arg, bad]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {arg} {bad}: {stderr}");
            let want = format!("error: {arg} {bad}: ");
            assert!(stderr.starts_with(&want), "{name} {arg} {bad}: {stderr}");
            assert!(stderr.contains("at most 18446744073709551615"), "{name}: {stderr}");
        }
    }
    assert_refused(
        "mlm",
        &["--warmup", "-1"],
        "--warmup -1: invalid digit found in string; must be at least 0",
    );
    assert_refused(
        "mlm",
        &["--steps", "50", "--warmup", "51"],
        "--warmup 51: must be at most --steps (50)",
    );
    assert_refused(
        "clm",
        &["--warmup", "100000"],
        "--warmup 100000: must be at most --steps",
    );
    assert_refused(
        "denoise",
        &["--score", "10", "--show", "11"],
        "--show 11: must be at least 0 and at most 10",
    );
    // Flags another choice leaves unused (issue 26's sweep of denoise and finetune).
    assert_refused(
        "denoise",
        &["--load", "/nonexistent", "--steps", "5"],
        "--steps: unused with --load",
    );
    assert_refused(
        "denoise",
        &["--load", "/nonexistent", "--noise", "t5"],
        "--noise: unused with --load",
    );
    assert_refused(
        "denoise",
        &["--twin", "/tmp/twin", "--resume", "x"],
        "--resume: --twin writes",
    );
    assert_refused(
        "finetune",
        &["--tasks", "speakers,speakers"],
        "--tasks: 'speakers' is given twice",
    );
    // Sizes no machine holds: refused by the memory estimate, before anything is built.
    assert_refused("clip", &["--embed-dim", "1000000000"], "this configuration needs about");
    assert_refused("mmlm", &["--batch", "1000000"], "this configuration needs about");
    assert_refused("mlm", &["--batch", "1000000"], "this configuration needs about");
    // A validation set no machine holds (the random fuzz pass found it aborting in `bias`).
    let huge = ["--eval-batches", "99999999999"];
    assert_refused("bias", &huge, "--eval-batches 99999999999 x --batch");
    assert_refused("mlm", &huge, "--eval-batches 99999999999 x --batch");
}
