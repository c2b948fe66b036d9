//! The comparison that asks what pretraining buys, on any [`TextTask`]: at each number of
//! labelled examples and for several seeds,
//!
//! - (a) the pretrained encoder, fine-tuned;
//! - (b) the same architecture from random initialisation, fine-tuned;
//! - (c) a linear probe of (a)'s frozen encoder, and the same probe of a random encoder (its
//!   control: what a head can read from states nobody trained);
//! - (d) other pretrained encoders (the `bert` and `simcse` examples'), fine-tuned;
//! - (e) no encoder: a logistic regression on the bag of character pairs of the same labelled
//!   texts ([`bigram_curve`]), what the labels alone teach a linear model of neighbouring
//!   characters;
//!
//! each reported as the mean and the sample standard deviation of the test accuracy over the
//! seeds, beside the majority class. Every run has the budget of [`FinetuneConfig`], (b) its
//! own ([`Plan::random`]: the fair comparison tunes each start on validation); seed s
//! draws the labelled subset, the head, the random encoder, the shuffles and dropout.
//! [`compare`] runs it, [`Comparison::table`] prints it, [`Comparison::svg`] draws the curves.

use super::baselines::bag_of_bigrams_accuracy;
use super::finetune::{classifier, run, subset, FinetuneConfig, Start};
use super::linear_probe::{corruption_shift, probe};
use crate::data::labelled::{LabelledText, TextTask};
use crate::learning_curve::{learning_curve_svg, Series};
use crate::nn::{Encoder, TransformerConfig};
use crate::params::Params;
use crate::tokenizer::Tokenizer;

/// The mean and sample standard deviation of one setting's test accuracies, one per seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedStats {
    /// Test accuracy of each seed, in seed order.
    pub runs: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (divided by n - 1; 0 for one seed).
    pub sd: f64,
}

impl SeedStats {
    /// The statistics of `runs`.
    pub fn of(runs: Vec<f64>) -> SeedStats {
        let n = runs.len();
        let mean = runs.iter().sum::<f64>() / n.max(1) as f64;
        let ss: f64 = runs.iter().map(|a| (a - mean).powi(2)).sum();
        let sd = if n > 1 { (ss / (n - 1) as f64).sqrt() } else { 0.0 };
        SeedStats { runs, mean, sd }
    }
}

/// One way of starting, measured at each label count.
#[derive(Clone, Debug)]
pub struct Curve {
    /// "(a) pretrained, fine-tuned", ...
    pub name: String,
    /// (labelled training examples, statistics over seeds), one per count.
    pub points: Vec<(usize, SeedStats)>,
}

/// Everything [`compare`] measured.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The task's title.
    pub title: String,
    /// What one example is ("lines").
    pub unit: String,
    /// The training split's size (the "all" count).
    pub all: usize,
    /// Seeds per setting.
    pub seeds: u64,
    /// The label counts measured (at most the training split's size).
    pub counts: Vec<usize>,
    /// (a), (b), the two probes (c), then each (d).
    pub curves: Vec<Curve>,
    /// Baselines without an encoder: (name, test accuracy), the majority class first.
    pub baselines: Vec<(String, f64)>,
}

/// The encoders of a comparison: (a)'s, and the others of (d) as (name, encoder, weights).
#[derive(Clone, Copy, Debug)]
pub struct Encoders<'a> {
    /// The pretrained masked LM's encoder and weights.
    pub pretrained: (&'a Encoder, &'a Params),
    /// (d): further pretrained encoders with their names.
    pub others: &'a [(String, Encoder, Params)],
}

/// What [`compare`] runs, and how.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    /// Labelled training examples per run (`usize::MAX` or more than the split: all of them).
    pub counts: &'a [usize],
    /// Seeds 0..`seeds` for every setting.
    pub seeds: u64,
    /// Fine-tuning of the pretrained starts, (a) and (d).
    pub pretrained: &'a FinetuneConfig,
    /// Fine-tuning of (b), from random initialisation: its own settings, chosen on the
    /// validation split as (a)'s were (the fair comparison tunes each start).
    pub random: &'a FinetuneConfig,
    /// (b)'s architecture: the pretrained encoder's for the headline comparison; a smaller
    /// one is named in (b)'s row. (The random encoder of (c) keeps the pretrained shape.)
    pub random_shape: &'a TransformerConfig,
    /// The settings to run, by letter: "abcd" for all.
    pub arms: &'a str,
}

/// Run (a), (b), (c) and (d) of the module doc (those of `plan.arms`) on `task` at each count,
/// for each seed of `plan`, fine-tuning with (a)'s or (b)'s settings and probing with [`probe`].
/// Prints one line per run.
pub fn compare(task: &TextTask, tokenizer: &Tokenizer, encoders: Encoders, plan: Plan) -> Result<Comparison, String> {
    let (encoder, params) = encoders.pretrained;
    let (pretrained, random) = (Start::Pretrained(encoder, params), Start::Random(&encoder.config));
    let (tuned, tuned_random) = (Some(plan.pretrained), Some(plan.random));
    let b = plan.random_shape;
    let b_name = match b == &encoder.config {
        true => "(b) random init, fine-tuned".to_string(),
        false => format!(
            "(b) random init, {} layer{}, d_model {}, fine-tuned",
            b.layers,
            if b.layers == 1 { "" } else { "s" },
            b.d_model
        ),
    };
    let mut settings = vec![
        ("(a) pretrained, fine-tuned".to_string(), pretrained, tuned),
        (b_name, Start::Random(b), tuned_random),
        ("(c) linear probe of (a)'s encoder".to_string(), pretrained, None),
        ("(c) linear probe of a random encoder".to_string(), random, None),
    ];
    for (name, enc, p) in encoders.others {
        settings.push((format!("(d) {name}, fine-tuned"), Start::Pretrained(enc, p), tuned));
    }
    settings.retain(|(name, _, _)| plan.arms.contains(&name[1..2]));
    let (counts, seeds, config) = (plan.counts, plan.seeds, plan.pretrained);
    let mut counts: Vec<usize> = counts.iter().map(|&n| n.min(task.train.len())).collect();
    counts.dedup();
    let mut curves = Vec::new();
    if settings.iter().any(|(_, _, tuned)| tuned.is_some()) {
        println!(
            "(each fine-tuning run: the validation accuracy before the first update and at every \
             evaluation, with (L ...) the mean training loss since the previous one)"
        );
    }
    for (name, start, tuned) in settings {
        let mut points = Vec::new();
        for &n in &counts {
            let mut runs = Vec::new();
            for seed in 0..seeds {
                print!("{name}, {n} {}, seed {seed}:", task.unit);
                let _ = std::io::Write::flush(&mut std::io::stdout());
                let test = if let Some(tuned) = tuned {
                    let r = run(start, task, tokenizer, n, &FinetuneConfig { seed, ..tuned.clone() })?;
                    print!(
                        " best after {} updates (validation {:.3}),",
                        r.best_update, r.val_accuracy
                    );
                    r.test_accuracy
                } else {
                    let (model, params) = classifier(start, task.names.len(), seed)?; // a random encoder from seed
                    let test: Vec<&LabelledText> = task.test.iter().collect();
                    probe(
                        &model,
                        &params,
                        &subset(&task.train, n, seed),
                        &test,
                        tokenizer,
                        config.max_len,
                    )
                };
                println!(" test {test:.3}");
                runs.push(test);
            }
            points.push((n, SeedStats::of(runs)));
        }
        curves.push(Curve { name, points });
    }
    Ok(Comparison {
        title: task.title.clone(),
        unit: task.unit.clone(),
        all: task.train.len(),
        seeds,
        counts,
        curves,
        baselines: vec![("majority class".into(), task.majority_baseline(&task.test))],
    })
}

/// (e): a logistic regression on the bag of character pairs ([`bag_of_bigrams_accuracy`]) of
/// the same labelled subsets as [`compare`]'s (seed s draws subset s), at each of `counts`
/// (already cut to the training split): what the labelled texts alone teach a linear model
/// of neighbouring characters, with no encoder.
pub fn bigram_curve(task: &TextTask, counts: &[usize], seeds: u64) -> Curve {
    let points = counts
        .iter()
        .map(|&n| {
            let runs = (0..seeds)
                .map(|seed| bag_of_bigrams_accuracy(&subset(&task.train, n, seed), &task.test, task.names.len()))
                .collect();
            (n, SeedStats::of(runs))
        })
        .collect();
    Curve {
        name: "(e) bag of character pairs, logistic regression".into(),
        points,
    }
}

/// 1234 -> "1,234".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Comparison {
    /// The markdown table: test accuracy "mean ± sd" per setting and label count, then the
    /// baselines.
    pub fn table(&self) -> String {
        let counts = self.counts.clone();
        let header: Vec<String> = counts
            .iter()
            .map(|&n| match n == self.all {
                true => format!("{} (all)", thousands(n)),
                false => thousands(n),
            })
            .collect();
        let mut t = format!(
            "{}: test accuracy, mean ± sd over {} seeds, by labelled training {}\n\n| start | {} |\n|---|{}\n",
            self.title,
            self.seeds,
            self.unit,
            header.join(" | "),
            "---|".repeat(counts.len())
        );
        for c in &self.curves {
            let cells: Vec<String> = c
                .points
                .iter()
                .map(|(_, s)| format!("{:.3} ± {:.3}", s.mean, s.sd))
                .collect();
            t += &format!("| {} | {} |\n", c.name, cells.join(" | "));
        }
        for (name, acc) in &self.baselines {
            t += &format!("| {name} | {} |\n", vec![format!("{acc:.3}"); counts.len()].join(" | "));
        }
        t
    }

    /// The mean of `curve` (its name begins with it, "(a)") at `n` labels.
    pub fn mean(&self, curve: &str, n: usize) -> Option<&SeedStats> {
        let c = self.curves.iter().find(|c| c.name.starts_with(curve))?;
        c.points.iter().find(|p| p.0 == n).map(|p| &p.1)
    }

    /// The learning curves of (a), (b), (c) and (d) with one standard deviation as error bars,
    /// and the majority class dashed.
    pub fn svg(&self) -> String {
        let series: Vec<Series> = self
            .curves
            .iter()
            .map(|c| Series {
                name: c.name.clone(),
                points: c.points.iter().map(|(n, s)| (*n as f64, s.mean, s.sd)).collect(),
            })
            .collect();
        let baseline = self.baselines.first().map(|(n, a)| (n.as_str(), *a));
        learning_curve_svg(&self.title, &self.unit, &series, baseline)
    }
}

/// For a task of (text, corrupted copy) pairs (acceptability): print how far a corruption moves
/// each encoder's pooled state on the validation pairs, as a share of the distance between two
/// lines ([`corruption_shift`]): (a)'s, a random encoder's (seed 0), and each of (d).
pub fn print_corruption_shift(task: &TextTask, tokenizer: &Tokenizer, encoders: Encoders) -> Result<(), String> {
    let (encoder, params) = encoders.pretrained;
    let mut starts = vec![
        ("(a)'s encoder".to_string(), Start::Pretrained(encoder, params)),
        ("a random encoder".to_string(), Start::Random(&encoder.config)),
    ];
    for (name, enc, p) in encoders.others {
        starts.push((name.clone(), Start::Pretrained(enc, p)));
    }
    let val: Vec<&LabelledText> = task.val.iter().collect();
    let mut shifts = Vec::new();
    for (name, start) in starts {
        let (model, params) = classifier(start, task.names.len(), 0)?;
        let shift = corruption_shift(&model, &params, &val, tokenizer, encoder.config.max_len);
        shifts.push(format!("{name} {shift:.3}"));
    }
    println!(
        "How far a corruption moves the mean-pooled state, as a share of the distance between two \
         lines (validation): {}",
        shifts.join(", ")
    );
    Ok(())
}

/// Print the task: its classes with their counts per split, and the majority class on test.
pub fn describe(task: &TextTask) {
    let counts = [&task.train, &task.val, &task.test].map(|s| task.class_counts(s));
    println!(
        "{}: {} classes; {} train / validation / test",
        task.title,
        task.names.len(),
        task.unit
    );
    for (c, name) in task.names.iter().enumerate() {
        println!(
            "  {c}: {name:<18} {:>5} {:>5} {:>5}",
            counts[0][c], counts[1][c], counts[2][c]
        );
    }
    println!(
        "  total              {:>5} {:>5} {:>5}; majority class on test: {:.3}",
        task.train.len(),
        task.val.len(),
        task.test.len(),
        task.majority_baseline(&task.test)
    );
}

impl Comparison {
    /// A sentence on what the table shows: pretraining's gain (a) - (b) and the probes' gap at
    /// the fewest and the most labels, and whether both fine-tuned starts beat the majority
    /// class everywhere.
    pub fn summary(&self) -> String {
        let counts = self.counts.clone();
        let (Some(&lo), Some(&hi)) = (counts.first(), counts.last()) else {
            return String::new();
        };
        // Each sentence only if its curves were run (`--arms`).
        let gaps = |a: &str, b: &str| match [lo, hi].map(|n| self.mean(a, n).zip(self.mean(b, n))) {
            [Some((a_lo, b_lo)), Some((a_hi, b_hi))] => {
                Some((100.0 * (a_lo.mean - b_lo.mean), 100.0 * (a_hi.mean - b_hi.mean)))
            }
            _ => None,
        };
        let unit = &self.unit;
        let mut out = Vec::new();
        if let Some((l, h)) = gaps("(a)", "(b)") {
            out.push(format!(
                "Pretraining adds {l:+.1} points at {lo} {unit} and {h:+.1} at {hi}."
            ));
            let majority = self.baselines.first().map_or(0.0, |b| b.1);
            let above = ["(a)", "(b)"].iter().all(|c| {
                counts
                    .iter()
                    .all(|&n| self.mean(c, n).is_some_and(|s| s.mean > majority))
            });
            let verb = if above { "beat" } else { "do not all beat" };
            out.push(format!(
                "Both fine-tuned starts {verb} the majority class ({majority:.3}) at every count."
            ));
        }
        if let Some((l, h)) = gaps("(c) linear probe of (a)", "(c) linear probe of a random") {
            out.push(format!(
                "The probe of the pretrained states is {l:+.1} points from the random encoder's \
                 at {lo} {unit} and {h:+.1} at {hi}."
            ));
        }
        out.join(" ")
    }
}
