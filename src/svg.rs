//! The drawing primitives of the crate's SVG charts (the loss curve in `metrics.rs`, the
//! scaling charts, the learning curve, the attention maps): lines, text, the ticks of a linear
//! axis and of a log axis, and XML escaping. A chart is SVG text built with these; no plotting
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

/// The charts' line colours, in the order series take them (matplotlib's first six).
pub(crate) const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// The opening of a chart's SVG document, `width` x `height` pixels: the `<svg>` element
/// (sans-serif, 12 px), a white background, and `title` (escaped here) centred on top in 16 px.
/// What the loss curve, the scaling charts and the growth chart share.
pub(crate) fn chart_start(width: f64, height: f64, title: &str) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n"
    );
    text(
        &mut s,
        (width / 2.0, 24.0),
        "middle",
        "font-size=\"16\"",
        &xml_escape(title),
    );
    s
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

/// Rounding slack for comparing tick values: 0.30000000000000004 is the tick 0.3.
const EPS: f64 = 1e-9;

/// The candidate ticks of a log axis over `lo..hi` (both positive): m times 10^k for k from a
/// power below `lo` to one above `hi`, with mantissas m as dense as the span calls for: the
/// powers of ten alone over more than two decades, 1, 2 and 5 times them over more than 0.7 of
/// one, 1, 1.5, 2, 2.5, 3, 4, ..., 8 times them over more than 0.2, and every tenth (1.0, 1.1,
/// ..., 9.9 times them) below that.
fn log_candidates(lo: f64, hi: f64) -> Vec<f64> {
    let tenths: Vec<f64> = (10..100).map(|m| m as f64 / 10.0).collect();
    let mantissas: &[f64] = match (hi / lo).log10() {
        span if span > 2.0 => &[1.0],
        span if span > 0.7 => &[1.0, 2.0, 5.0],
        span if span > 0.2 => &[1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        _ => &tenths,
    };
    let (k0, k1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    let candidates = (k0..=k1).flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)));
    candidates.collect()
}

/// A log axis that fits its data `(lo, hi)` (both positive): its ends, the nearest ticks at or
/// beyond the data, and the ticks between them (see [`log_candidates`] for how dense). Data of
/// one value get an axis from half to twice it.
pub(crate) fn log_axis((lo, hi): (f64, f64)) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if lo == hi { (lo / 2.0, hi * 2.0) } else { (lo, hi) };
    let candidates = log_candidates(lo, hi);
    let below = candidates.iter().copied().filter(|&c| c <= lo * (1.0 + EPS));
    let above = candidates.iter().copied().filter(|&c| c >= hi * (1.0 - EPS));
    let (lo_end, hi_end) = (below.fold(f64::NAN, f64::max), above.fold(f64::NAN, f64::min));
    let ticks = candidates.into_iter().filter(|&c| c >= lo_end && c <= hi_end);
    (lo_end, hi_end, ticks.collect())
}

/// The ticks of a log axis whose ends `lo < hi` are already chosen: the candidates of
/// [`log_candidates`] between them.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let inside = |c: &f64| *c >= lo * (1.0 - EPS) && *c <= hi * (1.0 + EPS);
    log_candidates(lo, hi).into_iter().filter(inside).collect()
}

/// A log tick value written out, with the decimals its mantissa needs: "0.05", "2", "150",
/// "2000", "1.5".
pub(crate) fn plain_log_tick(v: f64) -> String {
    let (_, k, m_step) = mantissa_exponent(v);
    format_tick(v, m_step * 10f64.powi(k))
}

/// A log tick value: plain between 0.01 and 999 ("0.05", "2", "150"), else "10³" or "2×10⁵".
pub(crate) fn log_tick_label(v: f64) -> String {
    let (m, k, m_step) = mantissa_exponent(v);
    if (-2..=2).contains(&k) {
        return format_tick(v, m_step * 10f64.powi(k));
    }
    let digit = |c: char| {
        c.to_digit(10)
            .map_or('⁻', |d| "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().nth(d as usize).unwrap())
    };
    let power: String = k.to_string().chars().map(digit).collect();
    match format_tick(m, m_step).as_str() {
        "1" => format!("10{power}"),
        m => format!("{m}×10{power}"),
    }
}

/// v = m 10^k with 1 <= m < 10 (a hair of slack, so 1000 is 1 x 10^3, not 9.99... x 10^2),
/// and the step the mantissa is written to: 1 for a whole m, else 0.1.
fn mantissa_exponent(v: f64) -> (f64, i32, f64) {
    let k = (v.log10() + EPS).floor() as i32;
    let m = v / 10f64.powi(k);
    let m_step = if (m - m.round()).abs() < 1e-6 { 1.0 } else { 0.1 };
    (m, k, m_step)
}

/// Escape text for use inside an XML element or attribute.
pub(crate) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
