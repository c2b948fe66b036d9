//! The attention grid: every layer's and head's attention weights drawn as heatmaps in one
//! SVG, a row of panels per layer and a column per head, queries down and keys across.

use super::heads_of;
use crate::svg::{text, xml_escape};
use crate::tensor::Tensor;
use ndarray::Axis;
use std::fmt::Write as _;

/// Side of one heatmap cell in SVG units, for `t` tokens: about 400 units a panel.
fn cell_size(t: usize) -> f64 {
    (400.0 / t as f64).clamp(3.0, 14.0)
}

/// The heatmaps of `maps` (one per layer, each `[H, T, T]` or `[1, H, T, T]`) in a grid:
/// a row per layer, a column per head. In each panel row i is query token i and column j key
/// token j, labelled with `tokens` (small for long sequences: zoom in); a cell's darkness is its
/// weight, from white at 0 to dark blue at 1 (cells under 0.01 are left white). Each panel is
/// an SVG group with id `layer{l}-head{h}`.
pub fn attention_grid_svg(tokens: &[String], maps: &[Tensor], title: &str) -> String {
    let t = tokens.len();
    let heads = maps.first().map_or(0, |m| heads_of(m).shape()[0]);
    let c = cell_size(t.max(1));
    let label = c + 4.0; // room for the token labels
    let (gap, head_band) = (16.0, 16.0);
    let panel = label + t as f64 * c;
    let width = gap + heads as f64 * (panel + gap);
    let height = 30.0 + maps.len() as f64 * (head_band + panel + gap);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let font = r#"font-family="sans-serif" font-size="14""#;
    text(&mut s, (gap, 20.0), "start", font, &xml_escape(title));
    for (l, map) in maps.iter().enumerate() {
        let w = heads_of(map);
        assert_eq!(
            w.shape(),
            [heads, t, t],
            "attention_grid_svg: layer {l} against {t} tokens"
        );
        for h in 0..heads {
            let x = gap + h as f64 * (panel + gap);
            let y = 30.0 + l as f64 * (head_band + panel + gap);
            let _ = writeln!(s, r#"<g id="layer{l}-head{h}">"#);
            let small = r#"font-family="sans-serif" font-size="11""#;
            text(&mut s, (x, y + 11.0), "start", small, &format!("layer {l}, head {h}"));
            let (x0, y0) = (x + label, y + head_band + label);
            panel_cells(&mut s, w.index_axis(Axis(0), h), (x0, y0), c);
            axis_labels(&mut s, tokens, (x0, y0), c);
            s.push_str("</g>\n");
        }
    }
    s.push_str("</svg>\n");
    s
}

/// A panel's frame and its cells, the top-left corner at `at`, cells `c` units wide.
fn panel_cells(s: &mut String, w: ndarray::ArrayView2<'_, f32>, at: (f64, f64), c: f64) {
    let side = w.shape()[0] as f64 * c;
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="{side:.1}" height="{side:.1}" fill="none" stroke="#bbb"/>"##,
        at.0, at.1
    );
    let _ = writeln!(
        s,
        r##"<g fill="#08306b" transform="translate({:.1} {:.1}) scale({c:.3})">"##,
        at.0, at.1
    );
    for ((i, j), &v) in w.indexed_iter() {
        if v >= 0.01 {
            let _ = writeln!(
                s,
                r#"<rect x="{j}" y="{i}" width="1" height="1" fill-opacity="{v:.2}"/>"#
            );
        }
    }
    s.push_str("</g>\n");
}

/// Token labels: queries down the left of a panel, keys across its top.
fn axis_labels(s: &mut String, tokens: &[String], at: (f64, f64), c: f64) {
    let attrs = format!(r#"font-family="monospace" font-size="{:.1}""#, c * 0.9);
    for (k, token) in tokens.iter().enumerate() {
        let mid = (k as f64 + 0.5) * c;
        let label = xml_escape(token);
        text(s, (at.0 - 2.0, at.1 + mid + c * 0.3), "end", &attrs, &label);
        text(s, (at.0 + mid, at.1 - 2.0), "middle", &attrs, &label);
    }
}
