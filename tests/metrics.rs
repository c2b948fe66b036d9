//! The training log: CSV round trips through `write` and `resume`, and the SVG chart is
//! well-formed and puts its points where they belong.

use microlm::metrics::{MetricsLog, Record};
use std::path::PathBuf;

/// A fresh, empty directory under the system temp dir, unique to this test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microlm-metrics-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Ten records: train loss at every step, validation every third step, other fields sparse.
fn sample_log(dir: &std::path::Path) -> MetricsLog {
    let mut log = MetricsLog::new(dir, "sample");
    for i in 0..10usize {
        log.push(Record {
            step: i * 50,
            train_loss: Some(4.0 / (1.0 + i as f64) + 0.1),
            val_loss: (i % 3 == 0).then(|| 3.5 / (1.0 + i as f64) + 0.3),
            val_accuracy: (i % 3 == 0).then_some(0.1 * i as f64 / 3.0),
            lr: (i > 0).then_some(1e-3 * (1.0 - i as f64 / 10.0)),
            tokens_per_s: if i == 4 { None } else { Some(12345.678 + i as f64) },
            elapsed_s: Some(0.1 * i as f64),
            ..Record::default()
        });
    }
    log
}

/// The numbers in the `points` attribute of each `<polyline class="...">` with the given class.
fn polyline_points(svg: &str, class: &str) -> Vec<Vec<(f64, f64)>> {
    svg.split("<polyline")
        .skip(1)
        .filter(|tag| tag.split('>').next().unwrap().contains(&format!("class=\"{class}\"")))
        .map(|tag| {
            let points = tag.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            points
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The value of attribute `name` in the first tag that contains `marker`.
fn attr(svg: &str, marker: &str, name: &str) -> f64 {
    let start = svg.find(marker).unwrap_or_else(|| panic!("no `{marker}` in svg"));
    let tag = &svg[svg[..start].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    let value = tag
        .split(&format!(" {name}=\""))
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    value.parse().unwrap()
}

/// A minimal well-formedness check: every tag closes in order, and every `&` starts an entity.
fn assert_well_formed(svg: &str) {
    assert_eq!(svg.matches("<svg").count(), 1, "one <svg> element");
    assert_eq!(svg.matches("</svg>").count(), 1, "one </svg>");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    for (i, _) in svg.match_indices('&') {
        let after = &svg[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| after.starts_with(e)),
            "bare & at {i}"
        );
    }
}

#[test]
fn csv_round_trips_through_write_and_resume() {
    let dir = temp_dir("roundtrip");
    let log = sample_log(&dir);
    log.write().unwrap();
    assert!(dir.join("metrics.csv").exists() && dir.join("loss.svg").exists());
    assert!(!dir.join("metrics.csv.tmp").exists() && !dir.join("loss.svg.tmp").exists());
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s"
    );
    assert!(csv.lines().nth(1).unwrap().starts_with("0,"));
    assert!(csv.contains(",,"), "None is an empty cell");
    let back = MetricsLog::resume(&dir, "sample", usize::MAX).unwrap();
    assert_eq!(back.records(), log.records());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_drops_rows_after_the_checkpoint_and_starts_empty_without_a_file() {
    let dir = temp_dir("resume");
    let empty = MetricsLog::resume(&dir, "sample", 100).unwrap();
    assert!(empty.records().is_empty());
    let log = sample_log(&dir);
    log.write().unwrap();
    let mut back = MetricsLog::resume(&dir, "sample", 200).unwrap();
    let steps: Vec<usize> = back.records().iter().map(|r| r.step).collect();
    assert_eq!(steps, vec![0, 50, 100, 150, 200]);
    assert_eq!(back.records(), &log.records()[..5]);
    // The resumed run carries on: a value measured later lands on the last row.
    back.last_mut().unwrap().val_loss = Some(1.25);
    back.push(Record {
        step: 250,
        train_loss: Some(1.5),
        ..Record::default()
    });
    back.write().unwrap();
    let again = MetricsLog::resume(&dir, "sample", usize::MAX).unwrap();
    assert_eq!(again.records().len(), 6);
    assert_eq!(again.records()[4].val_loss, Some(1.25));
    assert_eq!(again.records()[5].step, 250);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_rows_and_headers_are_errors_naming_file_and_line() {
    let dir = temp_dir("malformed");
    let csv = dir.join("metrics.csv");
    let header = "step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s";
    std::fs::write(&csv, format!("{header}\n0,1.5,,,,,\n10,1.2,,,,,\n20,oops,,,,,\n")).unwrap();
    let err = MetricsLog::resume(&dir, "t", usize::MAX)
        .err()
        .expect("bad number is an error");
    assert!(err.contains("metrics.csv") && err.contains("line 4"), "{err}");
    assert!(err.contains("oops"), "{err}");

    std::fs::write(&csv, format!("{header}\n0,1.5,,,,\n")).unwrap();
    let err = MetricsLog::resume(&dir, "t", usize::MAX)
        .err()
        .expect("short row is an error");
    assert!(err.contains("metrics.csv") && err.contains("line 2"), "{err}");

    std::fs::write(&csv, "step,loss\n0,1.5\n").unwrap();
    let err = MetricsLog::resume(&dir, "t", usize::MAX)
        .err()
        .expect("wrong header is an error");
    assert!(err.contains("metrics.csv") && err.contains("line 1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn svg_has_one_polyline_per_series_spanning_the_plot() {
    let mut log = sample_log(&std::env::temp_dir().join("microlm-metrics-svg-unwritten"));
    log.push(Record {
        step: 500,
        train_loss: Some(f64::NAN),
        val_loss: Some(f64::INFINITY),
        ..Record::default()
    });
    let svg = log.to_svg();
    assert_well_formed(&svg);
    let n_train = log
        .records()
        .iter()
        .filter(|r| r.train_loss.is_some_and(f64::is_finite))
        .count();
    let n_val = log
        .records()
        .iter()
        .filter(|r| r.val_loss.is_some_and(f64::is_finite))
        .count();
    let train = polyline_points(&svg, "train");
    let val = polyline_points(&svg, "val");
    assert_eq!((train.len(), val.len()), (1, 1), "one polyline each");
    assert_eq!((train[0].len(), val[0].len()), (n_train, n_val));
    assert_eq!((n_train, n_val), (10, 4));

    let left = attr(&svg, "id=\"plot-area\"", "x");
    let right = left + attr(&svg, "id=\"plot-area\"", "width");
    let top = attr(&svg, "id=\"plot-area\"", "y");
    let bottom = top + attr(&svg, "id=\"plot-area\"", "height");
    assert!((train[0][0].0 - left).abs() < 0.01, "first step at the left edge");
    assert!(
        (train[0][n_train - 1].0 - right).abs() < 0.01,
        "last step at the right edge"
    );
    for &(x, y) in train[0].iter().chain(&val[0]) {
        assert!(
            x >= left - 0.01 && x <= right + 0.01 && y >= top - 0.01 && y <= bottom + 0.01,
            "({x}, {y})"
        );
    }
    // Lower loss is drawn higher up (smaller y); train loss falls monotonically here.
    assert!(train[0].windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1));
    assert!(svg.contains("step") && svg.contains("loss (nats)"));
    assert!(svg.contains("train loss") && svg.contains("validation loss"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn svg_title_is_escaped() {
    let dir = temp_dir("escape");
    let mut log = MetricsLog::new(&dir, "run <&> one");
    log.push(Record {
        step: 1,
        train_loss: Some(2.0),
        ..Record::default()
    });
    let svg = log.to_svg();
    assert_well_formed(&svg);
    assert!(svg.contains("run &lt;&amp;&gt; one"), "{svg}");
    assert!(!svg.contains("<&>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn degenerate_logs_still_draw() {
    // Empty: axes plus a note, written to disk as a well-formed file.
    let dir = temp_dir("empty");
    let log = MetricsLog::new(&dir, "empty");
    log.write().unwrap();
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert_well_formed(&svg);
    assert!(svg.contains("no data yet"));
    assert!(!svg.contains("<polyline"));
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.trim_end(),
        "step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // One point, and all-equal values: finite coordinates, no note.
    let mut log = MetricsLog::new(&dir, "flat");
    log.push(Record {
        step: 0,
        train_loss: Some(3.0),
        val_loss: Some(3.0),
        ..Record::default()
    });
    let one = log.to_svg();
    log.push(Record {
        step: 10,
        train_loss: Some(3.0),
        ..Record::default()
    });
    let flat = log.to_svg();
    for svg in [&one, &flat] {
        assert_well_formed(svg);
        assert!(!svg.contains("no data yet") && !svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(polyline_points(svg, "train").len(), 1);
    }
    let flat_train = &polyline_points(&flat, "train")[0];
    assert_eq!(flat_train.len(), 2);
    let top = attr(&flat, "id=\"plot-area\"", "y");
    let bottom = top + attr(&flat, "id=\"plot-area\"", "height");
    assert!(
        flat_train[0].1 > top && flat_train[0].1 < bottom,
        "flat line is padded inside the plot"
    );
}

/// Extra measures: one CSV column each (named in the header, empty where not measured), read
/// back by `resume`, drawn as one series each with a legend entry.
#[test]
fn extra_measures_get_columns_and_series() {
    let dir = temp_dir("extras");
    let mut log = MetricsLog::new(&dir, "bert");
    for i in 0..4usize {
        let validated = i % 2 == 1;
        log.push(Record {
            step: i * 100,
            train_loss: Some(3.0 - 0.5 * i as f64),
            val_loss: validated.then_some(2.9 - 0.5 * i as f64),
            extra: if validated {
                vec![
                    ("nsp_loss".into(), 0.7 - 0.1 * i as f64),
                    ("nsp_accuracy".into(), 0.5 + 0.1 * i as f64),
                ]
            } else {
                Vec::new()
            },
            ..Record::default()
        });
    }
    log.write().unwrap();
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s,nsp_loss,nsp_accuracy"
    );
    assert_eq!(lines.next().unwrap(), "0,3,,,,,,,");
    assert_eq!(lines.next().unwrap(), "100,2.5,2.4,,,,,0.6,0.6");
    let back = MetricsLog::resume(&dir, "bert", 1000).unwrap();
    assert_eq!(back.records(), log.records());
    assert_eq!(back.records()[3].extra("nsp_accuracy"), Some(0.5 + 0.1 * 3.0));
    let svg = log.to_svg();
    assert_well_formed(&svg);
    let extra = polyline_points(&svg, "extra");
    assert_eq!(extra.len(), 2);
    assert!(extra.iter().all(|p| p.len() == 2));
    assert!(svg.contains(">nsp accuracy<") && svg.contains(">nsp loss<"));
    // A header with an unknown prefix is still refused.
    std::fs::write(dir.join("metrics.csv"), "step,loss\n").unwrap();
    assert!(MetricsLog::resume(&dir, "bert", 10).err().unwrap().contains("line 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
