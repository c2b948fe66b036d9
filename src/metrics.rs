//! The training log of a run: one [`Record`] per logged step, kept in memory by a [`MetricsLog`]
//! and written to two files in the run's directory.
//!
//! - `metrics.csv`: one row per record, header `step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s`
//!   followed by the names of any extra measures the objective reports (`nsp_loss`, say), an
//!   empty cell where a value was not measured at that step. Floats are printed with Rust's
//!   `{}` formatting, which is the shortest text that parses back to the same `f64`.
//! - `loss.svg`: a self-contained chart of training and validation loss (and the extra
//!   measures) against step that any browser opens. No plotting library: it is a few dozen lines of SVG text.
//!
//! Both files are written atomically (a `.tmp` file beside the target, then a rename), so a run
//! killed mid-write leaves the previous version. A resumed run reads the CSV back with
//! [`MetricsLog::resume`], dropping rows past the checkpoint it restarts from, and keeps
//! appending to the same log.

use crate::svg::{chart_start, format_tick, line, min_max, nice_step, text, ticks, xml_escape};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The CSV header, which is also the order of the fields in each row.
pub const CSV_HEADER: &str = "step,train_loss,val_loss,val_accuracy,lr,tokens_per_s,elapsed_s";

/// What was measured at one step. `None` means "not measured at this step" (validation, say,
/// runs only every few hundred steps).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Record {
    /// The optimiser step this record describes.
    pub step: usize,
    /// Mean cross-entropy on the training batches since the last record, in nats per token.
    pub train_loss: Option<f64>,
    /// Mean cross-entropy on the validation set, in nats per token.
    pub val_loss: Option<f64>,
    /// Fraction of validation tokens whose most likely prediction is correct.
    pub val_accuracy: Option<f64>,
    /// The learning rate at this step.
    pub lr: Option<f64>,
    /// Training throughput, in tokens per second.
    pub tokens_per_s: Option<f64>,
    /// Wall-clock seconds since the run started.
    pub elapsed_s: Option<f64>,
    /// Extra named measures of the validation pass (see
    /// [`Evaluation::extra`](crate::trainer::Evaluation::extra)).
    pub extra: Vec<(String, f64)>,
}

impl Record {
    /// The extra measure called `name`, if this record has it.
    pub fn extra(&self, name: &str) -> Option<f64> {
        self.extra.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

/// The records of a run and where they are written: `dir/metrics.csv` and `dir/loss.svg`.
///
/// ```
/// use microlm::metrics::{MetricsLog, Record};
/// let dir = std::env::temp_dir().join(format!("microlm-doc-metrics-{}", std::process::id()));
/// let mut log = MetricsLog::new(&dir, "tiny run");
/// log.push(Record { step: 0, train_loss: Some(4.2), ..Record::default() });
/// log.push(Record { step: 100, train_loss: Some(2.5), val_loss: Some(2.7), ..Record::default() });
/// log.write().unwrap();
/// let back = MetricsLog::resume(&dir, "tiny run", 100).unwrap();
/// assert_eq!(back.records(), log.records());
/// assert!(log.to_svg().contains("<polyline"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct MetricsLog {
    records: Vec<Record>,
    csv_path: PathBuf,
    svg_path: PathBuf,
    title: String,
}

impl MetricsLog {
    /// An empty log that will write `dir/metrics.csv` and `dir/loss.svg`, with `title` at the
    /// top of the chart. Nothing touches the disk until [`MetricsLog::write`].
    pub fn new(dir: &Path, title: &str) -> MetricsLog {
        MetricsLog {
            records: Vec::new(),
            csv_path: dir.join("metrics.csv"),
            svg_path: dir.join("loss.svg"),
            title: title.to_string(),
        }
    }

    /// Read back `dir/metrics.csv` (starting empty if there is none) and keep the rows with
    /// `step <= up_to_step`: the log of a run resumed from the checkpoint at `up_to_step`.
    /// A wrong header or a malformed row is an error naming the file and the line number.
    pub fn resume(dir: &Path, title: &str, up_to_step: usize) -> Result<MetricsLog, String> {
        let mut log = MetricsLog::new(dir, title);
        let path = log.csv_path.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let mut lines = text.lines().enumerate();
        let header = lines.next().map_or("", |(_, h)| h.trim_end());
        let extras: Vec<&str> = match header.strip_prefix(CSV_HEADER) {
            Some("") => Vec::new(),
            Some(rest) if rest.starts_with(',') => rest[1..].split(',').collect(),
            _ => {
                return Err(format!(
                    "{} line 1: expected header `{CSV_HEADER}` (then any extra measures), found `{header}`",
                    path.display()
                ))
            }
        };
        for (i, line) in lines {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let record = parse_row(line, &extras).map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            if record.step <= up_to_step {
                log.records.push(record);
            }
        }
        Ok(log)
    }

    /// The names of the extra measures, in order of first appearance.
    pub fn extra_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (name, _) in self.records.iter().flat_map(|r| &r.extra) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Append one record.
    pub fn push(&mut self, r: Record) {
        self.records.push(r);
    }

    /// Every record so far, in the order they were pushed.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The latest record, to fill in something measured later at the same step (validation, say,
    /// after that step's training loss was pushed).
    pub fn last_mut(&mut self) -> Option<&mut Record> {
        self.records.last_mut()
    }

    /// The whole log as CSV text: the header, then one row per record.
    pub fn to_csv(&self) -> String {
        let extras = self.extra_names();
        let mut out = CSV_HEADER.to_string();
        for name in &extras {
            let _ = write!(out, ",{name}");
        }
        out.push('\n');
        for r in &self.records {
            let cells = [
                r.train_loss,
                r.val_loss,
                r.val_accuracy,
                r.lr,
                r.tokens_per_s,
                r.elapsed_s,
            ];
            let extra = extras.iter().map(|name| r.extra(name));
            let _ = write!(out, "{}", r.step);
            for cell in cells.into_iter().chain(extra) {
                match cell {
                    Some(v) => _ = write!(out, ",{v}"),
                    None => out.push(','),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Write `metrics.csv` and `loss.svg` (creating the directory if needed), each atomically.
    pub fn write(&self) -> Result<(), String> {
        if let Some(dir) = self.csv_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create directory: {e}", dir.display()))?;
        }
        write_atomic(&self.csv_path, &self.to_csv())?;
        write_atomic(&self.svg_path, &self.to_svg())
    }

    /// The loss chart as a self-contained SVG document: training loss as a line, validation
    /// loss and each extra measure as a line with dots, against step. Non-finite values are
    /// skipped; with nothing to draw, the axes carry the note "no data yet".
    pub fn to_svg(&self) -> String {
        let train = series(&self.records, |r| r.train_loss);
        let val = series(&self.records, |r| r.val_loss);
        let extras: Vec<(String, Vec<(f64, f64)>)> = self
            .extra_names()
            .into_iter()
            .map(|name| {
                let pts = series(&self.records, |r| r.extra(&name));
                (name, pts)
            })
            .collect();
        let all = || train.iter().chain(val.iter()).chain(extras.iter().flat_map(|(_, p)| p));

        // Data ranges. x spans exactly the plotted steps, so the first and last points sit on the
        // plot's edges; y is widened to round tick values. Degenerate ranges get padding.
        let (mut x_lo, mut x_hi) = min_max(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
        if x_lo == x_hi {
            x_lo = (x_lo - 1.0).max(0.0);
            x_hi = x_lo + 2.0;
        }
        let (mut y_lo, mut y_hi) = min_max(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
        if y_lo == y_hi {
            let pad = (y_lo.abs() * 0.05).max(0.1);
            (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
        }
        let y_step = nice_step(y_hi - y_lo, 5);
        let (y_lo, y_hi) = ((y_lo / y_step).floor() * y_step, (y_hi / y_step).ceil() * y_step);
        let x_step = nice_step(x_hi - x_lo, 6).max(1.0); // steps are whole numbers

        let (left, right, top, bottom) = (PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM);
        let (mid_x, mid_y) = ((left + right) / 2.0, (top + bottom) / 2.0);
        let px = |x: f64| left + (x - x_lo) / (x_hi - x_lo) * (right - left);
        let py = |y: f64| bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top);

        let mut s = chart_start(WIDTH, HEIGHT, &self.title);
        // Grid lines and tick labels; the lowest y grid line doubles as the x axis.
        for (i, y) in ticks(y_lo, y_hi, y_step).into_iter().enumerate() {
            let stroke = if i == 0 { "black" } else { "#ddd" };
            line(&mut s, (left, py(y)), (right, py(y)), stroke, 1.0);
            text(&mut s, (left - 6.0, py(y) + 4.0), "end", "", &format_tick(y, y_step));
        }
        for x in ticks(x_lo, x_hi, x_step) {
            line(&mut s, (px(x), top), (px(x), bottom), "#eee", 1.0);
            text(&mut s, (px(x), bottom + 18.0), "middle", "", &format_tick(x, x_step));
        }
        let (w, h) = (right - left, bottom - top);
        let _ = writeln!(
            s,
            r#"<rect id="plot-area" x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="black"/>"#
        );
        text(&mut s, (mid_x, HEIGHT - 8.0), "middle", "", "step");
        let rotate = format!("transform=\"rotate(-90 18 {mid_y})\"");
        let y_label = if extras.is_empty() {
            "loss (nats)"
        } else {
            "loss (nats), accuracy"
        };
        text(&mut s, (18.0, mid_y), "middle", &rotate, y_label);
        // The series: validation is measured rarely, so its points (and the extras') get dots; a
        // lone training point gets one too, since a one-point polyline draws nothing.
        let mut legend = vec![
            ("train loss".to_string(), TRAIN_COLOUR),
            ("validation loss".to_string(), VAL_COLOUR),
        ];
        let mut all_series = vec![(&train, "train", TRAIN_COLOUR), (&val, "val", VAL_COLOUR)];
        for (k, (name, pts)) in extras.iter().enumerate() {
            let colour = EXTRA_COLOURS[k % EXTRA_COLOURS.len()];
            legend.push((name.replace('_', " "), colour));
            all_series.push((pts, "extra", colour));
        }
        for (pts, class, colour) in all_series {
            if pts.is_empty() {
                continue;
            }
            let p: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.2},{:.2}", px(x), py(y))).collect();
            let p = p.join(" ");
            let _ = writeln!(
                s,
                r#"<polyline class="{class}" points="{p}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#
            );
            if class != "train" || pts.len() == 1 {
                for &(x, y) in pts.iter() {
                    let (cx, cy) = (px(x), py(y));
                    let _ = writeln!(s, r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="3" fill="{colour}"/>"#);
                }
            }
        }
        if all().next().is_none() {
            text(&mut s, (mid_x, mid_y), "middle", "fill=\"#888\"", "no data yet");
        }
        // Legend, top right inside the plot.
        for (i, (name, colour)) in legend.iter().enumerate() {
            let (x, y) = (right - 130.0, top + 16.0 + 18.0 * i as f64);
            line(&mut s, (x, y), (x + 20.0, y), colour, 2.0);
            text(&mut s, (x + 26.0, y + 4.0), "start", "", &xml_escape(name));
        }
        s.push_str("</svg>\n");
        s
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_RIGHT: f64 = 700.0;
const PLOT_TOP: f64 = 40.0;
const PLOT_BOTTOM: f64 = 370.0;
const TRAIN_COLOUR: &str = "#1f77b4";
const VAL_COLOUR: &str = "#d62728";
const EXTRA_COLOURS: [&str; 4] = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// The finite `(step, value)` points of one field of the records.
fn series(records: &[Record], field: impl Fn(&Record) -> Option<f64>) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| field(r).filter(|v| v.is_finite()).map(|v| (r.step as f64, v)))
        .collect()
}

/// One CSV row (without its line ending) as a record; the error says which cell is wrong.
fn parse_row(line: &str, extras: &[&str]) -> Result<Record, String> {
    let cells: Vec<&str> = line.split(',').collect();
    let n = 7 + extras.len();
    if cells.len() != n {
        return Err(format!("expected {n} cells, found {} in `{line}`", cells.len()));
    }
    let step = cells[0].trim();
    let step = step
        .parse::<usize>()
        .map_err(|_| format!("step `{step}` is not a whole number"))?;
    // Cell `i` as a number; an empty cell is `None`.
    let num = |i: usize| -> Result<Option<f64>, String> {
        let name = CSV_HEADER
            .split(',')
            .chain(extras.iter().copied())
            .nth(i)
            .unwrap_or("?");
        let cell = cells[i].trim();
        if cell.is_empty() {
            return Ok(None);
        }
        cell.parse()
            .map(Some)
            .map_err(|_| format!("{name} `{cell}` is not a number"))
    };
    Ok(Record {
        step,
        train_loss: num(1)?,
        val_loss: num(2)?,
        val_accuracy: num(3)?,
        lr: num(4)?,
        tokens_per_s: num(5)?,
        elapsed_s: num(6)?,
        extra: (0..extras.len())
            .filter_map(|k| num(7 + k).transpose().map(|v| v.map(|v| (extras[k].to_string(), v))))
            .collect::<Result<_, _>>()?,
    })
}

/// Write `text` to `path.tmp`, then rename it over `path`.
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: cannot rename from {}: {e}", path.display(), tmp.display()))
}
