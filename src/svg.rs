//! The drawing primitives of the crate's SVG charts (the loss curve in `metrics.rs`): lines,
//! text, round tick values, and XML escaping. A chart is SVG text built with these; no plotting
//! library.

use std::fmt::Write as _;

/// Append an SVG `<line>` from `a` to `b`.
pub(crate) fn line(s: &mut String, a: (f64, f64), b: (f64, f64), stroke: &str, width: f64) {
    let _ = writeln!(
        s,
        r#"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="{stroke}" stroke-width="{width}"/>"#,
        a.0, a.1, b.0, b.1
    );
}

/// Append an SVG `<text>` at `at` (already escaped `content`, extra attributes in `attrs`).
pub(crate) fn text(s: &mut String, at: (f64, f64), anchor: &str, attrs: &str, content: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="{anchor}" {attrs}>{content}</text>"#,
        at.0, at.1
    );
}

/// The smallest and largest of `values`, or `None` if there are none.
pub(crate) fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A round tick spacing (1, 2 or 5 times a power of ten) giving about `target` ticks over `range`.
pub(crate) fn nice_step(range: f64, target: usize) -> f64 {
    let raw = range / target as f64;
    let power = 10f64.powf(raw.log10().floor());
    let m = raw / power;
    let nice = [1.0, 2.0, 5.0].into_iter().find(|&n| m <= n).unwrap_or(10.0);
    nice * power
}

/// The multiples of `step` in `[lo, hi]` (with a little slack for rounding).
pub(crate) fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick value with as many decimals as its spacing needs (0.05 -> 2, 0.5 -> 1, 100 -> 0).
pub(crate) fn format_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v }; // no "-0.0"
    format!("{v:.decimals$}")
}

/// Escape text for use inside an XML element or attribute.
pub(crate) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
