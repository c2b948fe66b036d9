//! Scaling laws at toy scale: "bigger is better" and "data hungry" as numbers and a picture.
//!
//! Kaplan et al. (2020, "Scaling Laws for Neural Language Models") found that a language
//! model's test loss falls as a power of its size when nothing else holds it back:
//!
//! ```text
//! L(N) = (N_c / N)^alpha_N        alpha_N ~ 0.076, N = non-embedding parameters
//! L(C) = (C_c / C)^alpha_C        alpha_C ~ 0.050 on the compute-efficient frontier
//! C    ~ 6 N D                    training FLOPs, D = training tokens
//! ```
//!
//! A power law is a straight line on log-log axes, so [`fit_power_law`] fits one by least
//! squares on the logarithms and [`loglog_svg`] draws points and fit. Muennighoff et al.
//! (2023, "Scaling Data-Constrained Language Models") measured the data side: repeating the
//! same tokens for up to about 4 epochs is nearly as good as fresh tokens, and further
//! repetition is worth less and less; [`train_fraction`] keeps the first part of a training
//! split, so that a fixed number of updates repeats it.
//!
//! Besides: [`non_embedding_parameters`] (Kaplan's N), [`training_flops`] (C), [`Run`] (one
//! run's measurements, its validation curve read back from `metrics.csv`),
//! [`compute_frontier`], the tables of `examples/14_scaling.rs`, and [`Shape`] for its
//! `--sizes` flag. The laws and their fit are in `law.rs`; the example's charts, [`size_svg`]
//! and [`data_svg`], are drawn in `chart.rs`.

mod chart;
mod law;

pub use chart::{data_svg, loglog_svg, size_svg};
pub use law::{compute_frontier, fit_power_law, is_embedding, non_embedding_parameters, training_flops, PowerLaw};

use crate::data::Corpus;
use crate::metrics::MetricsLog;
use crate::params::Params;
use crate::recipe::Recipe;
use crate::trainer::TrainReport;
use std::fmt::Write as _;

/// The first `fraction` of `data`'s training ids (rounded to a whole token): a fixed number of
/// updates drawing windows from them repeats a smaller set of unique tokens. `fraction` must
/// be in (0, 1] and the part at least one sequence long.
pub fn train_fraction(data: &Corpus, fraction: f64) -> Result<&[usize], String> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(format!("train fraction {fraction} is not in (0, 1]"));
    }
    let n = (data.train.len() as f64 * fraction).round() as usize;
    if n < data.seq_len {
        return Err(format!(
            "{n} training tokens are fewer than one sequence of {}",
            data.seq_len
        ));
    }
    Ok(&data.train[..n])
}

/// The example's settings: the mlm example's recipe (peak learning rate 1e-3 after 100 warmup
/// updates) at 800 updates of 16 x 64 tokens (0.82M tokens, 0.8 epochs of Tiny Shakespeare's
/// training split), validated every 100 on 40 batches; 3 layers for the data part; written
/// under `runs/scaling`. The masked LM sits on a plateau near the unigram loss (about 3 nats)
/// for its first 200-300 updates, so the same tokens go into many short updates rather than
/// fewer long ones: 400 updates of 16 x 128 end with every size still close to the plateau
/// (2.8 to 3.2 nats). A peak of 2e-3 after 50 warmup updates helps the three smaller sizes
/// (0.1 to 0.36 nats lower) but keeps d_model 256 on the plateau for all 800 updates (3.03
/// nats, against 2.14 here), so the size sweep stops falling. The whole example runs in about
/// ten minutes on two cores.
pub fn sweep_recipe() -> Recipe {
    Recipe {
        steps: 800,
        seq_len: 64,
        batch: 16,
        layers: 3,
        eval_every: 100,
        eval_batches: 40,
        out: "runs/scaling".into(),
        ..Recipe::default()
    }
}

/// Parse `"256,16,1"`: the data part's fractions of the training split, as denominators.
pub fn parse_denominators(text: &str) -> Result<Vec<usize>, String> {
    let parse = |item: &str| item.trim().parse().ok().filter(|&d: &usize| d > 0);
    let fail = |item: &str| format!("--fractions: `{item}` is not a whole number above 0");
    text.split(',')
        .map(|item| parse(item).ok_or_else(|| fail(item)))
        .collect()
}

/// `base` for the data part's run on 1/`denominator` of the training split: `steps` updates,
/// 8 validations, written to `base.out/data_1of8` (for 8).
pub fn data_recipe(base: &Recipe, steps: usize, denominator: usize) -> Recipe {
    Recipe {
        steps,
        eval_every: (steps / 8).max(1),
        out: base.out.join(format!("data_1of{denominator}")),
        ..base.clone()
    }
}

/// A model's shape in a size sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Width.
    pub d_model: usize,
    /// Layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

impl Shape {
    /// Parse `"32x1,64x2,128x3x4"`: `d_model x layers`, optionally `x heads`; without heads,
    /// one head per 32 dimensions (at least one), so heads are 32 wide as in the mlm example.
    pub fn parse_list(text: &str) -> Result<Vec<Shape>, String> {
        let parse = |item: &str| -> Option<Shape> {
            let n: Vec<usize> = item.trim().split('x').map(|s| s.parse().ok()).collect::<Option<_>>()?;
            let (d_model, layers) = (*n.first()?, *n.get(1)?);
            let heads = if n.len() == 3 { n[2] } else { (d_model / 32).max(1) };
            (n.len() <= 3).then_some(Shape { d_model, layers, heads })
        };
        let fail = |item: &str| format!("--sizes: `{item}` is not d_model x layers (e.g. 64x2)");
        text.split(',')
            .map(|item| parse(item).ok_or_else(|| fail(item)))
            .collect()
    }

    /// "d128 L3".
    pub fn label(&self) -> String {
        format!("d{} L{}", self.d_model, self.layers)
    }

    /// `base` at this shape, writing to `base.out/d128_l3`.
    pub fn recipe(&self, base: &Recipe) -> Recipe {
        Recipe {
            d_model: self.d_model,
            layers: self.layers,
            heads: self.heads,
            out: base.out.join(format!("d{}_l{}", self.d_model, self.layers)),
            ..base.clone()
        }
    }
}

/// One training run's measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// What it was ("d128 L3", "1/8").
    pub label: String,
    /// Every parameter.
    pub parameters: usize,
    /// Kaplan's N, see [`non_embedding_parameters`].
    pub non_embedding: usize,
    /// Training tokens one update reads.
    pub tokens_per_step: usize,
    /// Updates.
    pub steps: usize,
    /// How many distinct training tokens the windows were drawn from.
    pub unique_tokens: usize,
    /// The final validation loss, in nats.
    pub val_loss: f64,
    /// Wall time of the training loop (validations included), in seconds.
    pub seconds: f64,
    /// (step, validation loss) at every validation, from the run's `metrics.csv`.
    pub curve: Vec<(usize, f64)>,
}

impl Run {
    /// The measurements of a finished run of `recipe` that trained `params` on windows of
    /// `unique` training tokens; the curve is read back from `recipe.out/metrics.csv`.
    pub fn of(
        label: &str,
        recipe: &Recipe,
        params: &Params,
        report: &TrainReport,
        unique: usize,
    ) -> Result<Run, String> {
        let eval = report.last_eval.as_ref().ok_or("the run ended without a validation")?;
        let log = MetricsLog::resume(&recipe.out, "", report.step)?;
        let curve = log.records().iter().filter_map(|r| r.val_loss.map(|v| (r.step, v)));
        Ok(Run {
            label: label.to_string(),
            parameters: params.num_elements(),
            non_embedding: non_embedding_parameters(params),
            tokens_per_step: recipe.batch * recipe.seq_len,
            steps: report.step,
            unique_tokens: unique,
            val_loss: eval.loss,
            seconds: report.elapsed_s,
            curve: curve.collect(),
        })
    }

    /// D, training tokens read in all.
    pub fn tokens(&self) -> usize {
        self.steps * self.tokens_per_step
    }

    /// C = 6 N D, see [`training_flops`].
    pub fn flops(&self) -> f64 {
        training_flops(self.non_embedding, self.tokens())
    }

    /// Passes over the unique tokens after `step` updates.
    pub fn epochs(&self, step: usize) -> f64 {
        (step * self.tokens_per_step) as f64 / self.unique_tokens as f64
    }

    /// The (step, loss) of the lowest validation loss (the last of equals).
    pub fn best(&self) -> (usize, f64) {
        let lower = |best: (usize, f64), p: &(usize, f64)| if p.1 <= best.1 { *p } else { best };
        self.curve.iter().fold((self.steps, self.val_loss), lower)
    }

    /// The validation curve against training FLOPs so far (step 0, at zero FLOPs, left out).
    pub fn curve_vs_flops(&self) -> Vec<(f64, f64)> {
        let c = |step: usize| training_flops(self.non_embedding, step * self.tokens_per_step);
        self.curve.iter().filter(|p| p.0 > 0).map(|&(s, l)| (c(s), l)).collect()
    }
}

/// The size sweep's table: one row per run, parameters, N, FLOPs, loss and time.
pub fn size_table(runs: &[Run]) -> String {
    let mut s = "model       parameters  non-embedding      FLOPs  val loss   time\n".to_string();
    for r in runs {
        let (p, n, c, l, t) = (r.parameters, r.non_embedding, r.flops(), r.val_loss, r.seconds);
        let _ = writeln!(s, "{:<10} {p:>11} {n:>14} {c:>10.2e} {l:>9.4} {t:>5.0}s", r.label);
    }
    s
}

/// The data part's table: unique tokens, epochs, the final loss and what the repetition cost
/// against the run with the most unique tokens, and where repetition stopped helping (the
/// lowest validation loss, and what the rest of the run added to it).
pub fn data_table(runs: &[Run]) -> String {
    let most = runs
        .iter()
        .max_by_key(|r| r.unique_tokens)
        .map_or(f64::NAN, |r| r.val_loss);
    let mut s = "data   unique tokens  epochs  val loss  vs most data   lowest validation loss\n".to_string();
    for r in runs {
        let (step, best) = r.best();
        let (e, gap) = (r.epochs(step), r.val_loss - best);
        let verdict = if step == r.steps {
            "still falling at the end".to_string()
        } else {
            format!("{best:.4} at {e:.1} epochs, then {gap:+.4} by the end")
        };
        let (u, e, l, cost) = (r.unique_tokens, r.epochs(r.steps), r.val_loss, r.val_loss - most);
        let _ = writeln!(s, "{:<6} {u:>13} {e:>7.2} {l:>9.4} {cost:>+13.4}   {verdict}", r.label);
    }
    s
}

/// The size sweep's fits: L = a N^-alpha over the runs' final losses, and L = a C^-alpha
/// over the [`compute_frontier`] of all their validation points.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeFits {
    /// Against non-embedding parameters.
    pub parameters: PowerLaw,
    /// Against training FLOPs, on the frontier.
    pub compute: PowerLaw,
    /// The frontier's points.
    pub frontier: Vec<(f64, f64)>,
    /// True if the final validation loss falls at every step up in size (in the runs' order).
    pub falls_with_size: bool,
}

/// Fit both laws of [`SizeFits`] to the runs of a size sweep.
pub fn fit_sizes(runs: &[Run]) -> Result<SizeFits, String> {
    let (n, loss): (Vec<f64>, Vec<f64>) = runs.iter().map(|r| (r.non_embedding as f64, r.val_loss)).unzip();
    let frontier = compute_frontier(&runs.iter().flat_map(Run::curve_vs_flops).collect::<Vec<_>>());
    let (c, l): (Vec<f64>, Vec<f64>) = frontier.iter().copied().unzip();
    let (parameters, compute) = (fit_power_law(&n, &loss)?, fit_power_law(&c, &l)?);
    let falls_with_size = loss.windows(2).all(|w| w[1] < w[0]);
    Ok(SizeFits {
        parameters,
        compute,
        frontier,
        falls_with_size,
    })
}

impl std::fmt::Display for SizeFits {
    /// Both fits beside Kaplan et al.'s exponents, and whether the loss falls with size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, c, k) = (&self.parameters, &self.compute, self.frontier.len());
        writeln!(f, "L = {p} for x = N (Kaplan et al. 2020: alpha_N ~ 0.076)")?;
        writeln!(f, "L = {c} for x = C, on {k} frontier points (Kaplan: alpha_C ~ 0.050)")?;
        let yes = if self.falls_with_size { "yes" } else { "NO" };
        writeln!(f, "validation loss falls at every step up in size: {yes}")
    }
}
