//! Running one size as a child process, microlm's (this bench with `--one`) or the PyTorch
//! reference's, and reading the figures it prints.

use crate::common::toy_step::Size;
use crate::show;
use std::path::Path;
use std::process::Command;

/// One run's figures.
#[derive(Clone, Copy)]
pub struct Measured {
    /// Training tokens per second (the median step's, or the median window's).
    pub tokens_per_s: f64,
    /// The process's peak resident memory.
    pub peak_rss_mb: f64,
}

/// The medians of each figure over the pairs (the mean of the middle two for an even count).
pub fn medians(runs: &[Measured]) -> Measured {
    let median = |f: fn(&Measured) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v[(n - 1) / 2] + v[n / 2]) / 2.0
    };
    Measured {
        tokens_per_s: median(|m| m.tokens_per_s),
        peak_rss_mb: median(|m| m.peak_rss_mb),
    }
}

/// Run `command` to its end, returning its standard output, or an error naming `what` with the end
/// of its standard error.
fn run_child(what: &str, mut command: Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("{what}: could not start {command:?}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = &lines[lines.len().saturating_sub(8)..]; // the error is at the end
        return Err(format!("{what} failed ({}):\n{}", out.status, tail.join("\n")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// microlm at `size`: this bench again with `--one`, so the child's peak RSS is the size's own.
pub fn measure_ours(size: Size, steps: usize, threads: usize) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this bench's executable: {e}"))?;
    let mut command = Command::new(exe);
    let one = format!("{},{},{}", size.seq_len, size.d_model, size.batch);
    command.args(["--one", &one, "--steps", &steps.to_string()]);
    if microlm::tape::checkpoint_blocks_enabled() {
        command.arg("--checkpoint-blocks");
    }
    command.env("MICROLM_THREADS", threads.to_string());
    let stdout = run_child(&format!("microlm at {}", show(size)), command)?;
    let line = stdout.lines().find(|l| l.starts_with("GROWTH "));
    let field = |key: &str| line.and_then(|l| growth_field(l, key));
    match (field("tokens_per_s"), field("peak_rss_mb")) {
        (Some(tokens_per_s), Some(peak_rss_mb)) => Ok(Measured {
            tokens_per_s,
            peak_rss_mb,
        }),
        _ => Err(format!("microlm at {} printed no GROWTH line:\n{stdout}", show(size))),
    }
}

/// `key=value` from a `GROWTH` line.
fn growth_field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The reference at `size`, with as many threads and d_ff = 4 d_model like ours.
pub fn measure_theirs(
    python: &str,
    script: &Path,
    size: Size,
    steps: usize,
    threads: usize,
) -> Result<Measured, String> {
    let mut command = Command::new(python);
    command.arg(script).args(["--config", "toy"]);
    let n = |v: usize| v.to_string();
    for (flag, value) in [
        ("--threads", threads),
        ("--seq-len", size.seq_len),
        ("--d-model", size.d_model),
        ("--d-ff", 4 * size.d_model),
        ("--batch", size.batch),
        ("--steps", steps),
        ("--windows", 3),
        ("--warmup", 2),
    ] {
        command.args([flag.to_string(), n(value)]);
    }
    let what = format!("PyTorch reference {} at {}", script.display(), show(size));
    let stdout = run_child(&what, command)?;
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{') && l.contains("tokens_per_s_median"));
    let line = line.ok_or_else(|| format!("{what} printed no JSON line with tokens_per_s_median:\n{stdout}"))?;
    let field = |key: &str| json_number(line, key).ok_or_else(|| format!("{what}: no number {key:?} in {line}"));
    Ok(Measured {
        tokens_per_s: field("tokens_per_s_median")?,
        peak_rss_mb: field("peak_rss_mb")?,
    })
}

/// The number after `"key":` in a one-line JSON object: enough for the reference's flat output,
/// without a JSON library.
fn json_number(line: &str, key: &str) -> Option<f64> {
    let quoted = format!("\"{key}\"");
    let rest = line[line.find(&quoted)? + quoted.len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
