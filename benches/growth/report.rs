//! The driver's outputs: the markdown table and the chart of the ratios.

use crate::common::toy_step::Size;
use crate::measure::Measured;
use crate::{show, Options, Series};
use microlm::growth_chart::{growth_svg, GrowthPanel, GrowthPoint};
use std::fmt::Write as _;

/// `DIR/growth.md` always; `DIR/growth.svg` when there are ratios to draw.
pub fn write_outputs(
    opts: &Options,
    threads: usize,
    results: &[(Size, Measured, Option<Measured>)],
) -> Result<(), String> {
    let dir = &opts.out;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        Ok::<(), String>(())
    };
    let find = |size: Size| {
        results
            .iter()
            .find(|r| r.0 == size)
            .map(|r| (r.1, r.2))
            .expect("every size of the series was measured")
    };
    write("growth.md", &table(opts, threads, &find))?;
    let svg = dir.join("growth.svg");
    if opts.torch_script.is_none() {
        if svg.exists() {
            std::fs::remove_file(&svg).map_err(|e| format!("cannot remove {}: {e}", svg.display()))?;
        }
        eprintln!("no --torch-script: microlm's figures only, and no chart (a ratio needs both)");
        return Ok(());
    }
    let panels: Vec<GrowthPanel> = opts.series.iter().map(|&s| panel(s, &find)).collect();
    // Short enough to fit over a single panel (`--series batch`).
    let title = format!("microlm / PyTorch, threads: {threads}");
    write("growth.svg", &growth_svg(&title, &panels))
}

/// One series' panel: microlm's figures over the reference's at each size.
fn panel(series: Series, find: &dyn Fn(Size) -> (Measured, Option<Measured>)) -> GrowthPanel {
    let (title, x_label) = series.panel_title();
    let points = series.sizes().into_iter().filter_map(|size| {
        let (ours, theirs) = find(size);
        theirs.map(|t| GrowthPoint {
            size: series.x(size) as f64,
            speed_ratio: ours.tokens_per_s / t.tokens_per_s,
            memory_ratio: ours.peak_rss_mb / t.peak_rss_mb,
        })
    });
    GrowthPanel {
        title: title.into(),
        x_label: x_label.into(),
        points: points.collect(),
    }
}

/// The markdown table: one row per series and size (the toy size in each of its series).
fn table(opts: &Options, threads: usize, find: &dyn Fn(Size) -> (Measured, Option<Measured>)) -> String {
    let mut s = format!(
        "Threads: {threads}. Timed steps per run: {} after 2 warm-up (PyTorch: 3 windows of {0}, median \
         window). Runs per size and implementation: {}, medians kept. Ratio = microlm / PyTorch.\n\n",
        opts.steps, opts.pairs
    );
    s.push_str("| series | size | microlm tokens/s | PyTorch tokens/s | ratio | microlm peak RSS MB | PyTorch peak RSS MB | RSS ratio |\n");
    s.push_str("|---|---|--:|--:|--:|--:|--:|--:|\n");
    for &series in &opts.series {
        for size in series.sizes() {
            let (ours, theirs) = find(size);
            let (their_speed, speed_ratio, their_rss, rss_ratio) = match theirs {
                Some(t) => (
                    format!("{:.0}", t.tokens_per_s),
                    format!("{:.2}", ours.tokens_per_s / t.tokens_per_s),
                    format!("{:.0}", t.peak_rss_mb),
                    format!("{:.2}", ours.peak_rss_mb / t.peak_rss_mb),
                ),
                None => ("–".into(), "–".into(), "–".into(), "–".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {their_speed} | {speed_ratio} | {:.0} | {their_rss} | {rss_ratio} |",
                series.name(),
                show(size),
                ours.tokens_per_s,
                ours.peak_rss_mb
            );
        }
    }
    s
}
