//! How cost grows: the toy training step (`common/toy_step.rs`) timed against the PyTorch
//! reference as the work grows, in three series that each grow one dimension of the toy size
//! (T 128, d_model 128, B 32):
//!
//! - sequence length T = 128, 256, 512, 1024 at d_model 128, with B = 4096 / T so that every
//!   step reads 4096 tokens (attention's T^2 is what grows);
//! - d_model = 128, 256, 512 at T 128, B 32 (d_ff stays 4 d_model);
//! - batch B = 8, 16, 32, 64 at T 128, d_model 128.
//!
//! ```text
//! MICROLM_THREADS=2 cargo bench --bench growth -- \
//!     --torch-script path/to/torch_mlm.py --python $HOME/torchref/bin/python
//! ```
//!
//! Each size runs in a child process of its own (this bench again, with `--one`), so the peak
//! RSS it reports is that size's alone; the reference is run alternately with it, `--pairs`
//! times (ours, theirs, ours, theirs, ...), and the medians over the pairs are kept. Both get
//! the same thread count: `MICROLM_THREADS` for microlm, `--threads` for PyTorch. The reference
//! is asked for d_ff = 4 d_model too (its toy override otherwise keeps d_ff 512). PyTorch's peak
//! RSS includes the Python interpreter and the torch library, as a user running it would pay.
//!
//! Flags: `--series seq|d_model|batch|all` (default all), `--steps N` timed steps per run
//! (default 5; the reference runs 3 windows of N after 2 warm-up steps), `--pairs P` (default
//! 1), `--out DIR` (default `target/growth`), `--torch-script PATH`, `--python PATH` (default
//! `python3`). `--one T,D,B` times that one size in this process (2 warm-up steps, then N) and
//! prints a `GROWTH impl=microlm ...` line; `--test` does so for one step of a tiny size.
//! `--checkpoint-blocks` times microlm with per-block activation checkpointing (each layer
//! recomputed in backward, `Tape::checkpoint`).
//!
//! It writes `DIR/growth.md`, a table of both implementations' tokens/s and peak RSS and their
//! ratios, and `DIR/growth.svg`, the ratios against size (`microlm::growth_chart`).
//!
//! Without `--torch-script` (as in a plain `cargo bench`, which runs every bench) it prints one
//! line saying it was skipped and exits successfully. `--microlm-only` times microlm's sizes
//! alone: the table then holds microlm's figures and no chart is drawn, since a ratio needs both
//! (a chart left from an earlier run is removed rather than left to mislead).

#[path = "../common/mod.rs"]
mod common;
mod measure;
mod report;

use common::toy_step::{build, make_batch, median_step_s, peak_rss_mb, toy_config, Batch, Size};
use measure::{measure_ours, measure_theirs, medians, Measured};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// What the command line asked for.
struct Options {
    /// `--one`: time this size here and exit.
    one: Option<Size>,
    steps: usize,
    pairs: usize,
    series: Vec<Series>,
    out: PathBuf,
    torch_script: Option<PathBuf>,
    python: String,
    /// `--microlm-only`: the table without the reference.
    microlm_only: bool,
}

/// A dimension that grows while the other two stay at the toy's.
#[derive(Clone, Copy, PartialEq)]
enum Series {
    Seq,
    DModel,
    Batch,
}

const ALL_SERIES: [Series; 3] = [Series::Seq, Series::DModel, Series::Batch];

impl Series {
    /// The name `--series` and the table use.
    fn name(self) -> &'static str {
        match self {
            Series::Seq => "seq",
            Series::DModel => "d_model",
            Series::Batch => "batch",
        }
    }

    /// The sizes measured, smallest first.
    fn sizes(self) -> Vec<Size> {
        let toy = Size::TOY;
        match self {
            // 4096 tokens per step throughout, so only the shape of the work changes.
            Series::Seq => [128, 256, 512, 1024]
                .map(|t| Size {
                    seq_len: t,
                    batch: 4096 / t,
                    ..toy
                })
                .to_vec(),
            Series::DModel => [128, 256, 512].map(|d| Size { d_model: d, ..toy }).to_vec(),
            Series::Batch => [8, 16, 32, 64].map(|b| Size { batch: b, ..toy }).to_vec(),
        }
    }

    /// The size's value along this series' dimension: the chart's x.
    fn x(self, size: Size) -> usize {
        match self {
            Series::Seq => size.seq_len,
            Series::DModel => size.d_model,
            Series::Batch => size.batch,
        }
    }

    /// The chart panel's title and x label.
    fn panel_title(self) -> (&'static str, &'static str) {
        match self {
            Series::Seq => ("sequence length (4096 tokens a step)", "T, tokens per sequence"),
            Series::DModel => ("width (T 128, B 32)", "d_model (d_ff = 4 d_model)"),
            Series::Batch => ("batch (T 128, d_model 128)", "B, sequences per step"),
        }
    }
}

fn main() -> ExitCode {
    microlm::init_threads_from_env();
    let result = parse_args(std::env::args().skip(1)).and_then(|opts| {
        // As the other benches do: on a worker of rayon's pool, so parallel loops do not hand off.
        microlm::threads::on_pool(|| match opts.one {
            Some(size) => run_one(size, opts.steps),
            None if opts.torch_script.is_none() && !opts.microlm_only => {
                println!(
                    "growth: skipped: no --torch-script PATH given (this bench times microlm against the \
                     PyTorch reference; --microlm-only times microlm alone; see benches/growth/main.rs)"
                );
                Ok(())
            }
            None => drive(&opts),
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("growth: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "flags: --one T,D,B | --series seq|d_model|batch|all | --steps N | --pairs P | --out DIR | \
                     --torch-script PATH | --python PATH | --microlm-only | --checkpoint-blocks | --test";

/// The flags, in any order; later ones win.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        one: None,
        steps: 5,
        pairs: 1,
        series: ALL_SERIES.to_vec(),
        out: PathBuf::from("target/growth"),
        torch_script: None,
        python: "python3".into(),
        microlm_only: false,
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value ({USAGE})"));
        match flag.as_str() {
            "--bench" => {} // what `cargo bench` passes to every bench
            "--test" => {
                (opts.one, opts.steps) = (
                    Some(Size {
                        seq_len: 16,
                        d_model: 32,
                        batch: 2,
                    }),
                    1,
                )
            }
            "--one" => opts.one = Some(parse_size(&value()?)?),
            "--steps" => opts.steps = parse_count("--steps", &value()?)?,
            "--pairs" => opts.pairs = parse_count("--pairs", &value()?)?,
            "--series" => opts.series = parse_series(&value()?)?,
            "--out" => opts.out = PathBuf::from(value()?),
            "--torch-script" => opts.torch_script = Some(PathBuf::from(value()?)),
            "--python" => opts.python = value()?,
            "--microlm-only" => opts.microlm_only = true,
            // Per-block activation checkpointing, for tapes made from now on (and the children).
            "--checkpoint-blocks" => microlm::tape::set_checkpoint_blocks(true),
            _ => return Err(format!("unknown flag {flag:?} ({USAGE})")),
        }
    }
    Ok(opts)
}

/// A positive whole number, or an error naming `flag`.
fn parse_count(flag: &str, s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {s:?} is not a positive whole number")),
    }
}

/// `T,D,B`, e.g. `128,128,32`; checked against the encoder's own rules (heads divide d_model).
fn parse_size(s: &str) -> Result<Size, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [t, d, b] = parts[..] else {
        return Err(format!(
            "--one {s:?}: want three numbers SEQ,DMODEL,BATCH, e.g. 128,128,32"
        ));
    };
    let size = Size {
        seq_len: parse_count("--one's SEQ", t)?,
        d_model: parse_count("--one's DMODEL", d)?,
        batch: parse_count("--one's BATCH", b)?,
    };
    toy_config(size).validate().map_err(|e| format!("--one {s:?}: {e}"))?;
    Ok(size)
}

/// `seq`, `d_model`, `batch` or `all`.
fn parse_series(s: &str) -> Result<Vec<Series>, String> {
    match s {
        "all" => Ok(ALL_SERIES.to_vec()),
        _ => ALL_SERIES
            .into_iter()
            .find(|x| x.name() == s)
            .map(|x| vec![x])
            .ok_or_else(|| format!("--series {s:?}: want seq, d_model, batch or all")),
    }
}

/// `--one`: time one size in this process and print its `GROWTH` line.
fn run_one(size: Size, steps: usize) -> Result<(), String> {
    let mut model = build(size);
    let mut rng = StdRng::seed_from_u64(1);
    let pool: Vec<Batch> = (0..4).map(|_| make_batch(size, &mut rng)).collect();
    let step = median_step_s(&mut model, &pool, &mut rng, 2, steps);
    println!(
        "GROWTH impl=microlm seq={} d_model={} batch={} threads={} tokens_per_s={:.1} peak_rss_mb={:.1}",
        size.seq_len,
        size.d_model,
        size.batch,
        microlm::num_threads(),
        size.tokens() as f64 / step,
        peak_rss_mb()
    );
    Ok(())
}

/// Every size of the chosen series, once each, in order (the toy size is in all three).
fn distinct_sizes(series: &[Series]) -> Vec<Size> {
    let mut sizes: Vec<Size> = Vec::new();
    for size in series.iter().flat_map(|s| s.sizes()) {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    sizes
}

/// The driver: measure every size (alternating with the reference, if given), then write the
/// table and, with the reference, the chart.
fn drive(opts: &Options) -> Result<(), String> {
    let threads = microlm::num_threads();
    let sizes = distinct_sizes(&opts.series);
    let mut results: Vec<(Size, Measured, Option<Measured>)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for pair in 1..=opts.pairs {
            let what = format!("[{}/{}] {} pair {pair}/{}", i + 1, sizes.len(), show(size), opts.pairs);
            eprintln!("{what}: microlm ...");
            ours.push(measure_ours(size, opts.steps, threads)?);
            if let Some(script) = &opts.torch_script {
                eprintln!("{what}: PyTorch ...");
                theirs.push(measure_theirs(&opts.python, script, size, opts.steps, threads)?);
            }
        }
        let (ours, theirs) = (medians(&ours), (!theirs.is_empty()).then(|| medians(&theirs)));
        eprintln!("{}: {}", show(size), describe(ours, theirs));
        results.push((size, ours, theirs));
    }
    report::write_outputs(opts, threads, &results)
}

/// "T 256, d_model 128, B 16".
fn show(size: Size) -> String {
    format!("T {}, d_model {}, B {}", size.seq_len, size.d_model, size.batch)
}

/// The progress line after a size: its medians.
fn describe(ours: Measured, theirs: Option<Measured>) -> String {
    let mut s = format!("microlm {:.0} tokens/s, {:.0} MB", ours.tokens_per_s, ours.peak_rss_mb);
    if let Some(t) = theirs {
        let _ = write!(s, "; PyTorch {:.0} tokens/s, {:.0} MB", t.tokens_per_s, t.peak_rss_mb);
    }
    s
}
