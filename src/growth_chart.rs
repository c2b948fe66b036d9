//! The growth bench's chart (`benches/growth/`), as SVG: how microlm's training step compares
//! with PyTorch's as the work grows. One panel per dimension that grows (sequence length,
//! d_model, batch), side by side; in each, x is the size on a log2 axis ticked at the sizes
//! measured, and y is the ratio microlm / PyTorch on a log axis shared by all panels, so that
//! "twice as fast" and "half as fast" sit equally far from the dashed line at 1 (parity). Two
//! lines per panel: tokens/s (above 1, microlm is faster) and peak RSS (below 1, microlm uses
//! less memory). Built with the crate's SVG primitives (`svg.rs`).

use crate::svg::{chart_start, line, log_axis, log_tick_label, min_max, text, xml_escape};
use std::fmt::Write as _;

/// One size measured on both implementations.
#[derive(Clone, Debug, PartialEq)]
pub struct GrowthPoint {
    /// The size along the panel's dimension (a sequence length, a d_model, a batch).
    pub size: f64,
    /// microlm's tokens/s over PyTorch's: above 1, microlm trains faster.
    pub speed_ratio: f64,
    /// microlm's peak RSS over PyTorch's: below 1, microlm needs less memory.
    pub memory_ratio: f64,
}

/// One panel: a dimension that grows while the others stay put.
#[derive(Clone, Debug, PartialEq)]
pub struct GrowthPanel {
    /// Drawn above the panel, e.g. "sequence length (d_model 128)".
    pub title: String,
    /// Drawn under the x axis, e.g. "T (tokens per sequence)".
    pub x_label: String,
    /// The sizes, in any order; they are drawn left to right by size.
    pub points: Vec<GrowthPoint>,
}

const PANEL_W: f64 = 340.0;
const LEGEND_W: f64 = 270.0; // one legend entry, line and words
const LEFT: f64 = 64.0; // room for the y ticks (and, in the first panel, the y label)
const RIGHT: f64 = 16.0;
const TOP: f64 = 64.0; // the chart's title, then the panel's
const PLOT_BOTTOM: f64 = 350.0;
const SPEED: (&str, &str) = ("speed", "#1f77b4");
const MEMORY: (&str, &str) = ("memory", "#d62728");

/// The chart as a self-contained SVG document, `title` on top and `panels` side by side
/// (340 px each). Each point is a `<circle>` carrying `data-series` ("speed" or "memory"),
/// `data-size` and `data-ratio`, so a reader (or a test) can find a value's dot. Ratios that
/// are not positive and finite (a size the reference did not measure) are left out; a panel
/// with none says "no data".
pub fn growth_svg(title: &str, panels: &[GrowthPanel]) -> String {
    let w = PANEL_W * panels.len().max(1) as f64;
    // The legend's three entries go on one row under three panels, one per row under one.
    let per_row = (((w - LEFT) / LEGEND_W) as usize).clamp(1, 3);
    let h = PLOT_BOTTOM + 64.0 + 18.0 * 3usize.div_ceil(per_row) as f64;
    let mut s = chart_start(w, h, title);
    // One y axis for every panel, always including parity, so the panels compare at a glance.
    let ratios = panels
        .iter()
        .flat_map(|p| p.points.iter())
        .flat_map(|q| [q.speed_ratio, q.memory_ratio]);
    let (y0, y1, y_ticks) = log_axis(min_max(ratios.filter(|&r| drawable(r)).chain([1.0])).unwrap_or((1.0, 1.0)));
    let py = |r: f64| PLOT_BOTTOM - (r / y0).ln() / (y1 / y0).ln() * (PLOT_BOTTOM - TOP);
    for (k, panel) in panels.iter().enumerate() {
        let _ = writeln!(s, "<g transform=\"translate({},0)\">", PANEL_W * k as f64);
        draw_panel(&mut s, panel, &py, &y_ticks);
        s.push_str("</g>\n");
    }
    let mid_y = (TOP + PLOT_BOTTOM) / 2.0;
    let rotate = format!("transform=\"rotate(-90 16 {mid_y})\"");
    text(
        &mut s,
        (16.0, mid_y),
        "middle",
        &rotate,
        "microlm / PyTorch (log scale)",
    );
    legend(&mut s, PLOT_BOTTOM + 64.0, per_row);
    s.push_str("</svg>\n");
    s
}

/// A ratio that a log axis can show.
fn drawable(r: f64) -> bool {
    r > 0.0 && r.is_finite()
}

/// One panel in its own coordinates (0..PANEL_W): frame, ticks, parity line, the two lines.
fn draw_panel(s: &mut String, panel: &GrowthPanel, py: &dyn Fn(f64) -> f64, y_ticks: &[f64]) {
    let (left, right) = (LEFT, PANEL_W - RIGHT);
    let mut points: Vec<&GrowthPoint> = panel.points.iter().filter(|p| drawable(p.size)).collect();
    points.sort_by(|a, b| a.size.total_cmp(&b.size));
    // Half a doubling of margin either side, so the end points are not on the frame.
    let (lo, hi) = min_max(points.iter().map(|p| p.size)).unwrap_or((1.0, 2.0));
    let (x0, x1) = (lo.log2() - 0.5, hi.log2() + 0.5);
    let px = |x: f64| left + (x.log2() - x0) / (x1 - x0) * (right - left);
    let mid_x = (left + right) / 2.0;
    text(
        s,
        (mid_x, TOP - 12.0),
        "middle",
        "font-size=\"13\"",
        &xml_escape(&panel.title),
    );
    for &y in y_ticks {
        line(s, (left, py(y)), (right, py(y)), "#ddd", 1.0);
        text(s, (left - 6.0, py(y) + 4.0), "end", "", &log_tick_label(y));
    }
    for p in &points {
        line(
            s,
            (px(p.size), PLOT_BOTTOM),
            (px(p.size), PLOT_BOTTOM + 4.0),
            "black",
            1.0,
        );
        text(
            s,
            (px(p.size), PLOT_BOTTOM + 18.0),
            "middle",
            "",
            &format!("{}", p.size),
        );
    }
    let (pw, ph) = (right - left, PLOT_BOTTOM - TOP);
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    text(
        s,
        (mid_x, PLOT_BOTTOM + 40.0),
        "middle",
        "",
        &xml_escape(&panel.x_label),
    );
    dashed(s, (left, py(1.0)), (right, py(1.0)));
    let speed: Vec<(f64, f64)> = points.iter().map(|p| (p.size, p.speed_ratio)).collect();
    let memory: Vec<(f64, f64)> = points.iter().map(|p| (p.size, p.memory_ratio)).collect();
    let mut any = false;
    for ((name, colour), values) in [(SPEED, speed), (MEMORY, memory)] {
        let values: Vec<(f64, f64)> = values.into_iter().filter(|v| drawable(v.1)).collect();
        any |= !values.is_empty();
        let path: Vec<String> = values
            .iter()
            .map(|&(x, r)| format!("{:.2},{:.2}", px(x), py(r)))
            .collect();
        let stroke = format!("fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"");
        let _ = writeln!(s, r#"<polyline points="{}" {stroke}/>"#, path.join(" "));
        for (x, r) in values {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.2}" cy="{:.2}" r="4" fill="{colour}" data-series="{name}" data-size="{x}" data-ratio="{r:.4}"/>"#,
                px(x),
                py(r)
            );
        }
    }
    if !any {
        text(
            s,
            (mid_x, (TOP + PLOT_BOTTOM) / 2.0),
            "middle",
            "fill=\"#888\"",
            "no data",
        );
    }
}

/// The key, under the panels, on as many rows of up to `per_row` entries as it needs: what each
/// line means and which way is better.
fn legend(s: &mut String, top: f64, per_row: usize) {
    let entries = [
        (SPEED.1, "tokens/s ratio (higher: microlm faster)"),
        (MEMORY.1, "peak RSS ratio (lower: microlm leaner)"),
        ("gray", "1 = parity"),
    ];
    for (i, (colour, label)) in entries.into_iter().enumerate() {
        let (x, y) = (
            LEFT + LEGEND_W * (i % per_row) as f64,
            top + 18.0 * (i / per_row) as f64,
        );
        match colour {
            "gray" => dashed(s, (x, y), (x + 20.0, y)),
            _ => line(s, (x, y), (x + 20.0, y), colour, 2.0),
        }
        text(s, (x + 26.0, y + 4.0), "start", "", label);
    }
}

/// Append the grey dashed line that marks parity.
fn dashed(s: &mut String, a: (f64, f64), b: (f64, f64)) {
    let style = "stroke=\"gray\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"";
    let _ = writeln!(
        s,
        r#"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" {style}/>"#,
        a.0, a.1, b.0, b.1
    );
}
