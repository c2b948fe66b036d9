//! The growth bench's chart: a whole SVG document, every panel titled (and escaped), and each
//! ratio drawn where a log axis puts it (higher ratio, higher on the page).

use microlm::growth_chart::{growth_svg, GrowthPanel, GrowthPoint};

fn point(size: f64, speed_ratio: f64, memory_ratio: f64) -> GrowthPoint {
    GrowthPoint {
        size,
        speed_ratio,
        memory_ratio,
    }
}

fn panels() -> Vec<GrowthPanel> {
    vec![
        GrowthPanel {
            title: "sequence length".into(),
            x_label: "T".into(),
            points: vec![point(256.0, 0.5, 2.0), point(128.0, 0.8, 1.2)],
        },
        GrowthPanel {
            title: "d_model <wide> & \"deep\"".into(),
            x_label: "d_model".into(),
            points: vec![point(128.0, 0.8, 1.2), point(512.0, f64::NAN, 0.4)],
        },
        GrowthPanel {
            title: "batch".into(),
            x_label: "B".into(),
            points: vec![],
        },
    ]
}

/// The value of `name="..."` in one SVG element.
fn attr(element: &str, name: &str) -> f64 {
    let key = format!(" {name}=\"");
    let start = element.find(&key).unwrap_or_else(|| panic!("no {name} in {element}")) + key.len();
    let end = start + element[start..].find('"').unwrap();
    element[start..end].parse().unwrap()
}

/// Every dot of `series` as (ratio, cy), in the order drawn.
fn dots(svg: &str, series: &str) -> Vec<(f64, f64)> {
    let tag = format!("data-series=\"{series}\"");
    svg.lines()
        .filter(|l| l.starts_with("<circle") && l.contains(&tag))
        .map(|l| (attr(l, "data-ratio"), attr(l, "cy")))
        .collect()
}

#[test]
fn a_whole_document_with_every_title_escaped() {
    let svg = growth_svg("microlm / PyTorch, 2 threads", &panels());
    assert!(svg.starts_with("<svg "), "{}", &svg[..40]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("microlm / PyTorch, 2 threads"));
    assert!(svg.contains(">sequence length<"));
    assert!(svg.contains(">batch<"));
    assert!(svg.contains("d_model &lt;wide&gt; &amp; &quot;deep&quot;"));
    assert!(!svg.contains("<wide>"));
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
}

#[test]
fn a_higher_ratio_is_drawn_higher() {
    let svg = growth_svg("growth", &panels());
    // Within a panel and across panels: one y axis, so every pair of dots is ordered by ratio.
    let mut all = dots(&svg, "speed");
    all.extend(dots(&svg, "memory"));
    assert!(all.len() >= 6, "{all:?}");
    for &(r1, y1) in &all {
        for &(r2, y2) in &all {
            if r1 > r2 {
                assert!(y1 < y2, "ratio {r1} at y {y1} is not above ratio {r2} at y {y2}");
            }
        }
    }
}

#[test]
fn missing_ratios_are_left_out_and_an_empty_panel_says_so() {
    let svg = growth_svg("growth", &panels());
    // The NaN speed at d_model 512 has no dot; its memory ratio has one.
    assert_eq!(dots(&svg, "speed").len(), 3);
    assert_eq!(dots(&svg, "memory").len(), 4);
    assert!(!svg.contains("NaN"));
    assert_eq!(svg.matches(">no data<").count(), 1);
}

#[test]
fn sizes_run_left_to_right() {
    let svg = growth_svg("growth", &panels());
    // The first panel's speed dots, given in the order 256, 128, are drawn by size.
    let xs: Vec<(f64, f64)> = svg
        .lines()
        .filter(|l| l.contains("data-series=\"speed\""))
        .take(2)
        .map(|l| (attr(l, "data-size"), attr(l, "cx")))
        .collect();
    assert_eq!(xs[0].0, 128.0);
    assert!(xs[0].1 < xs[1].1, "{xs:?}");
}
