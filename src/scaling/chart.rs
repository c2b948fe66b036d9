//! The scaling example's charts, as SVG: [`loglog_svg`] draws series of points and a fitted
//! power law on log-log axes (where the law is a straight line); [`size_svg`] puts the size
//! sweep's two charts side by side and [`data_svg`] draws the data part. The axes' ends and
//! ticks come from `svg.rs`'s log axis, shared with the learning curve.

use super::{PowerLaw, Run, SizeFits};
use crate::svg::{chart_start, line, log_axis, log_tick_label, min_max, text, xml_escape, COLOURS};
use std::fmt::Write as _;

/// Two log-log charts side by side: final validation loss against N with its fit, and every
/// run's validation curve against FLOPs with the frontier's fit.
pub fn size_svg(runs: &[Run], fits: &SizeFits) -> String {
    let finals = vec![(
        "final validation loss".into(),
        runs.iter().map(|r| (r.non_embedding as f64, r.val_loss)).collect(),
    )];
    let curves: Vec<_> = runs.iter().map(|r| (r.label.clone(), r.curve_vs_flops())).collect();
    let (y, by_n) = ("validation loss (nats)", Some(&fits.parameters));
    let left = loglog_svg(&finals, "non-embedding parameters N", y, "loss against size", by_n);
    let right = loglog_svg(
        &curves,
        "training FLOPs C = 6ND",
        y,
        "loss against compute",
        Some(&fits.compute),
    );
    let w = 2.0 * WIDTH;
    let mut s = format!("<svg xmlns=\"{SVG_NS}\" width=\"{w}\" height=\"{HEIGHT}\" viewBox=\"0 0 {w} {HEIGHT}\">\n");
    let _ = write!(
        s,
        "<g>\n{left}</g>\n<g transform=\"translate({WIDTH},0)\">\n{right}</g>\n</svg>\n"
    );
    s
}

/// The data part's chart: final validation loss against unique training tokens.
pub fn data_svg(runs: &[Run]) -> String {
    let points = vec![(
        "final validation loss".into(),
        runs.iter().map(|r| (r.unique_tokens as f64, r.val_loss)).collect(),
    )];
    let title = format!("{} updates on less and less data", runs.first().map_or(0, |r| r.steps));
    loglog_svg(
        &points,
        "unique training tokens",
        "validation loss (nats)",
        &title,
        None,
    )
}

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 680.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 380.0;

/// A log-log chart as a self-contained SVG document (720 x 440): each series as a line through
/// its points with a dot (`<circle>`) on every point, and `fit`, if given, as a dashed straight
/// line with its formula in the legend (bottom left). Ticks are at the powers of ten
/// (labelled `10⁴`), or at 1, 2 and 5 times them when the data span less than two decades,
/// finer still under one. Points that are not positive and finite are left out.
pub fn loglog_svg(
    series: &[(String, Vec<(f64, f64)>)],
    x_label: &str,
    y_label: &str,
    title: &str,
    fit: Option<&PowerLaw>,
) -> String {
    let drawable = |p: &&(f64, f64)| p.0 > 0.0 && p.1 > 0.0 && p.0.is_finite() && p.1.is_finite();
    let all = || series.iter().flat_map(|(_, pts)| pts.iter().filter(drawable));
    let (x0, x1, x_ticks) = log_axis(min_max(all().map(|p| p.0)).unwrap_or((1.0, 10.0)));
    let (y0, y1, y_ticks) = log_axis(min_max(all().map(|p| p.1)).unwrap_or((1.0, 10.0)));
    let px = |x: f64| LEFT + (x / x0).log10() / (x1 / x0).log10() * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - (y / y0).log10() / (y1 / y0).log10() * (BOTTOM - TOP);
    let (w, h, mid_x, mid_y) = (RIGHT - LEFT, BOTTOM - TOP, (LEFT + RIGHT) / 2.0, (TOP + BOTTOM) / 2.0);

    let mut s = chart_start(WIDTH, HEIGHT, title);
    for y in y_ticks {
        line(&mut s, (LEFT, py(y)), (RIGHT, py(y)), "#ddd", 1.0);
        text(&mut s, (LEFT - 6.0, py(y) + 4.0), "end", "", &log_tick_label(y));
    }
    for x in x_ticks {
        line(&mut s, (px(x), TOP), (px(x), BOTTOM), "#ddd", 1.0);
        text(&mut s, (px(x), BOTTOM + 18.0), "middle", "", &log_tick_label(x));
    }
    let frame = "fill=\"none\" stroke=\"black\"";
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" {frame}/>"#);
    text(&mut s, (mid_x, HEIGHT - 12.0), "middle", "", &xml_escape(x_label));
    let rotate = format!("transform=\"rotate(-90 20 {mid_y})\"");
    text(&mut s, (20.0, mid_y), "middle", &rotate, &xml_escape(y_label));

    let mut legend: Vec<(String, &str, &str)> = Vec::new(); // (name, colour, dashes)
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let pts: Vec<(f64, f64)> = pts.iter().filter(drawable).map(|&(x, y)| (px(x), py(y))).collect();
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
        let stroke = format!("fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"");
        let _ = writeln!(s, r#"<polyline points="{}" {stroke}/>"#, path.join(" "));
        for (x, y) in pts {
            let _ = writeln!(s, r#"<circle cx="{x:.2}" cy="{y:.2}" r="3.5" fill="{colour}"/>"#);
        }
        legend.push((name.clone(), colour, "none"));
    }
    if let Some(law) = fit {
        if let Some((xa, xb)) = fit_segment(law, (x0, x1), (y0, y1)) {
            let (a, b) = ((px(xa), py(law.predict(xa))), (px(xb), py(law.predict(xb))));
            dashed_line(&mut s, a, b, "black");
        }
        legend.push((format!("fit: {law}"), "black", "6 4"));
    }
    if all().next().is_none() {
        text(&mut s, (mid_x, mid_y), "middle", "fill=\"#888\"", "no data");
    }
    // The legend, bottom left (falling data leave that corner empty), on a pale box.
    let (x, top) = (LEFT + 10.0, BOTTOM - 18.0 * legend.len() as f64 - 14.0);
    let (w, h) = (236.0, 18.0 * legend.len() as f64 + 8.0);
    let style = "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"";
    let _ = writeln!(s, r#"<rect x="{x}" y="{top}" width="{w}" height="{h}" {style}/>"#);
    for (i, (name, colour, dashes)) in legend.iter().enumerate() {
        let (x, y) = (x + 6.0, top + 12.0 + 18.0 * i as f64);
        match *dashes {
            "none" => line(&mut s, (x, y), (x + 20.0, y), colour, 2.0),
            _ => dashed_line(&mut s, (x, y), (x + 20.0, y), colour),
        }
        text(&mut s, (x + 26.0, y + 4.0), "start", "", &xml_escape(name));
    }
    s.push_str("</svg>\n");
    s
}

/// Append a dashed SVG `<line>` (the fitted law's style).
fn dashed_line(s: &mut String, a: (f64, f64), b: (f64, f64), stroke: &str) {
    let (x1, y1, x2, y2) = (a.0, a.1, b.0, b.1);
    let style = format!("stroke=\"{stroke}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    let _ = writeln!(
        s,
        r#"<line x1="{x1:.2}" y1="{y1:.2}" x2="{x2:.2}" y2="{y2:.2}" {style}/>"#
    );
}

/// The x range, within the axes' ends, where the fitted line y = a x^(-alpha) stays between
/// the y ends; in log space it is a straight line, so this is an interval (or nothing).
fn fit_segment(law: &PowerLaw, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (x0, x1);
    if law.alpha != 0.0 {
        // x where the line crosses y0 and y1: x = (a / y)^(1 / alpha).
        let (xa, xb) = ((law.a / y0).powf(1.0 / law.alpha), (law.a / y1).powf(1.0 / law.alpha));
        (lo, hi) = (lo.max(xa.min(xb)), hi.min(xa.max(xb)));
    } else if !(y0..=y1).contains(&law.a) {
        return None;
    }
    (lo < hi).then_some((lo, hi))
}
