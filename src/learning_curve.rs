//! A learning curve as an SVG chart: accuracy against the number of labelled examples (a log
//! axis), one line per way of starting, each point the mean over seeds with an error bar of one
//! standard deviation either side, and a baseline drawn across. Built with the crate's SVG
//! primitives (`svg.rs`), whose log axis it shares with the scaling charts.

use crate::svg::{line, log_ticks, min_max, plain_log_tick, text, xml_escape, COLOURS};
use std::fmt::Write as _;

const W: f64 = 780.0;
const H: f64 = 400.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Half the width of an error bar's caps, in pixels.
const CAP: f64 = 4.0;

/// One line of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// (labelled examples, mean accuracy, standard deviation), in order of examples.
    pub points: Vec<(f64, f64, f64)>,
}

/// The chart: each of `series` is a line through its means with a vertical bar from mean - sd
/// to mean + sd (clamped to [0, 1]) at each point; `baseline` is drawn as a dashed line with its
/// name; `unit` names the examples on the x axis ("lines"). Accuracy runs from 0 to 1; the x
/// axis is logarithmic over the points' range with a margin of 1.5 times either side, its ticks
/// those of `svg.rs`'s log axis written out in full (`2000`, not `2×10³`).
pub fn learning_curve_svg(title: &str, unit: &str, series: &[Series], baseline: Option<(&str, f64)>) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let (lo, hi) = min_max(xs.filter(|&x| x > 0.0)).unwrap_or((1.0, 10.0));
    let (x0, x1) = (lo / 1.5, hi * 1.5); // the axis's ends
    let (lo, hi) = (x0.log10(), x1.log10());
    let px = |x: f64| LEFT + (x.log10() - lo) / (hi - lo) * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - y) * (H - TOP - BOTTOM);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    s.push('\n');
    text(
        &mut s,
        (W / 2.0, 20.0),
        "middle",
        r#"font-size="14""#,
        &xml_escape(title),
    );
    line(&mut s, (LEFT, py(0.0)), (W - RIGHT, py(0.0)), "black", 1.0);
    line(&mut s, (LEFT, py(0.0)), (LEFT, py(1.0)), "black", 1.0);
    for k in 0..=5 {
        let y = k as f64 / 5.0;
        line(&mut s, (LEFT - 4.0, py(y)), (W - RIGHT, py(y)), "#ddd", 1.0);
        text(&mut s, (LEFT - 8.0, py(y) + 4.0), "end", "", &format!("{y:.1}"));
    }
    for x in log_ticks(x0, x1) {
        line(&mut s, (px(x), py(0.0)), (px(x), py(0.0) + 4.0), "black", 1.0);
        text(&mut s, (px(x), py(0.0) + 18.0), "middle", "", &plain_log_tick(x));
    }
    text(
        &mut s,
        ((LEFT + W - RIGHT) / 2.0, H - 10.0),
        "middle",
        "",
        &xml_escape(&format!("labelled training {unit} (log scale)")),
    );
    text(
        &mut s,
        (16.0, (TOP + H - BOTTOM) / 2.0),
        "middle",
        r#"transform="rotate(-90 16 200)""#,
        "test accuracy",
    );
    if let Some((name, b)) = baseline {
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.2}" x2="{x2}" y2="{y:.2}" stroke="gray" stroke-dasharray="5,4"/>"#,
            y = py(b),
            x2 = W - RIGHT
        );
        text(&mut s, (W - RIGHT + 8.0, py(b) + 4.0), "start", "", &xml_escape(name));
    }
    for (k, Series { name, points }) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        for pair in points.windows(2) {
            line(
                &mut s,
                (px(pair[0].0), py(pair[0].1)),
                (px(pair[1].0), py(pair[1].1)),
                colour,
                2.0,
            );
        }
        for &(x, y, sd) in points {
            let (lo, hi) = ((y - sd).max(0.0), (y + sd).min(1.0));
            line(&mut s, (px(x), py(lo)), (px(x), py(hi)), colour, 1.0); // mean ± sd
            for end in [lo, hi] {
                line(&mut s, (px(x) - CAP, py(end)), (px(x) + CAP, py(end)), colour, 1.0);
            }
            let _ = writeln!(
                s,
                r#"<circle cx="{:.2}" cy="{:.2}" r="4" fill="{colour}"/>"#,
                px(x),
                py(y)
            );
        }
        let legend_y = TOP + 20.0 * k as f64;
        line(
            &mut s,
            (W - RIGHT + 8.0, legend_y),
            (W - RIGHT + 28.0, legend_y),
            colour,
            2.0,
        );
        text(
            &mut s,
            (W - RIGHT + 32.0, legend_y + 4.0),
            "start",
            "",
            &xml_escape(name),
        );
    }
    s.push_str("</svg>\n");
    s
}
