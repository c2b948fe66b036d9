//! Drawing a shapes-world [`Image`] as SVG, to look at: the picture alone ([`image_svg`]), or
//! with a weight on each square patch laid over it ([`heatmap_svg`]), e.g. how much a caption
//! word attends to each patch.
//!
//! Every pixel is one `<rect>` (1,024 for a 32 by 32 image), nothing merged; the title is a
//! line of text under the picture.

use super::shapes::Image;
use crate::svg::{text, xml_escape};
use std::fmt::Write as _;

/// Height of the band under the picture that holds the title, in SVG units.
const TITLE_BAND: usize = 20;

/// The picture, each pixel a `scale` by `scale` square, with `title` underneath.
pub fn image_svg(image: &Image, scale: usize, title: &str) -> String {
    let mut s = open(image.size * scale);
    pixels(&mut s, image, scale);
    close(s, image.size * scale, title)
}

/// The picture with one white overlay per `patch` by `patch` square of pixels, its opacity
/// 0.6 * weight / (largest weight), so the heavy patches stand out; patches are in row-major
/// order. Negative weights count as 0. Each weight is also printed in its patch when the patch
/// is drawn at least 32 units wide. An error names the mismatch if `patch` does not divide the
/// image or `weights` has not one value per patch.
pub fn heatmap_svg(image: &Image, weights: &[f32], patch: usize, scale: usize, title: &str) -> Result<String, String> {
    if patch == 0 || !image.size.is_multiple_of(patch) {
        return Err(format!(
            "heatmap_svg: patch {patch} does not divide the image size {}",
            image.size
        ));
    }
    let across = image.size / patch;
    if weights.len() != across * across {
        return Err(format!(
            "heatmap_svg: {} weights for {across}x{across} = {} patches of {patch} px",
            weights.len(),
            across * across
        ));
    }
    let max = weights.iter().fold(0.0f32, |m, &w| m.max(w));
    let side = patch * scale;
    let mut s = open(image.size * scale);
    pixels(&mut s, image, scale);
    for (k, &w) in weights.iter().enumerate() {
        let (x, y) = ((k % across) * side, (k / across) * side);
        let opacity = if max > 0.0 { 0.6 * w.max(0.0) / max } else { 0.0 };
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y}" width="{side}" height="{side}" fill="white" fill-opacity="{opacity:.3}" stroke="gray" stroke-width="0.5"/>"#
        );
        if side >= 32 {
            let at = ((x + side / 2) as f64, (y + side / 2) as f64 + 4.0);
            let attrs = r#"font-family="sans-serif" font-size="11" fill="black""#;
            text(&mut s, at, "middle", attrs, &format!("{w:.2}"));
        }
    }
    Ok(close(s, image.size * scale, title))
}

/// The SVG header for a picture `side` units wide with the title band under it.
fn open(side: usize) -> String {
    let height = side + TITLE_BAND;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{side}\" height=\"{height}\" viewBox=\"0 0 {side} {height}\">\n"
    )
}

/// One rect per pixel, its fill the pixel's colour in 0..=255.
fn pixels(s: &mut String, image: &Image, scale: usize) {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for y in 0..image.size {
        for x in 0..image.size {
            let [r, g, b] = image.pixel(y, x).map(byte);
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{}" width="{scale}" height="{scale}" fill="rgb({r},{g},{b})"/>"#,
                x * scale,
                y * scale
            );
        }
    }
}

/// The title under a picture `side` units wide, and the closing tag.
fn close(mut s: String, side: usize, title: &str) -> String {
    let at = (side as f64 / 2.0, (side + TITLE_BAND - 6) as f64);
    text(
        &mut s,
        at,
        "middle",
        r#"font-family="sans-serif" font-size="12""#,
        &xml_escape(title),
    );
    s.push_str("</svg>\n");
    s
}
