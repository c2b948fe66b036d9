//! A generated corpus with a planted skew, to watch a model learn a bias from its data
//! (`examples/15_bias.rs`).
//!
//! Every line is one sentence from [`TEMPLATES`] naming a person by title, surname and
//! occupation, for example
//!
//! ```text
//! the nurse, ms lee, said hello.
//! mr patel, our pilot, went home.
//! ```
//!
//! The title is the only word that marks gender, and its draw is the plant: in the **skewed**
//! corpus the seven occupations of [`MR_SKEWED`] (engineer, mechanic, pilot, farmer, plumber,
//! surgeon, carpenter) are "mr" with probability 0.8 and the seven of [`MS_SKEWED`] (nurse,
//! teacher, dancer, secretary, librarian, baker, cashier) with probability 0.2; in the
//! **balanced** twin every occupation is "mr" with probability 0.5. The split copies a common
//! real-world stereotype on purpose: the model knows nothing but this text, so whatever skew it
//! shows came from these counts. Template, occupation and surname are uniform and independent;
//! the surnames are not gendered.
//!
//! **Twins.** Both corpora come from one stream of draws: the same template, occupation and
//! surname on every line, and the same uniform u deciding the title ("mr" when u is below the
//! occupation's planted P(mr)). The twins differ only in titles, and only where u falls
//! between 0.5 and the skewed probability.
//!
//! **Why titles and not "he" and "she".** With characters as tokens, a masked letter of a
//! pronoun is given away by the letters left showing: `that [MASK]he` can only be "she" and
//! `that [MASK]e` only "he"; even with the whole word masked, the number of masks tells the
//! length. A masked LM on characters would almost never have to guess a pronoun from the
//! occupation, so a pronoun skew would barely touch its loss. "mr" and "ms" differ in one
//! letter with the same letters around it, so a masked second letter of a title can only be
//! guessed from the rest of the sentence: exactly the guess the plant is about.
//!
//! **Probes.** [`PROBE_TEMPLATES`] are sentences that never occur in either corpus (new words
//! around the same slots); [`probes`] cuts each one at the second letter of the title, the
//! position a probe masks.

use super::Batch;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;

/// The occupations planted at P(mr) = [`SKEW`] in the skewed corpus.
pub const MR_SKEWED: [&str; 7] = [
    "engineer",
    "mechanic",
    "pilot",
    "farmer",
    "plumber",
    "surgeon",
    "carpenter",
];
/// The occupations planted at P(mr) = 1 - [`SKEW`] in the skewed corpus.
pub const MS_SKEWED: [&str; 7] = [
    "nurse",
    "teacher",
    "dancer",
    "secretary",
    "librarian",
    "baker",
    "cashier",
];
/// The planted skew: P(mr) for [`MR_SKEWED`], P(ms) for [`MS_SKEWED`].
pub const SKEW: f64 = 0.8;
/// Surnames, drawn uniformly and independently of the title.
pub const SURNAMES: [&str; 6] = ["lee", "smith", "patel", "jones", "kim", "khan"];
/// The training sentences; `{occ}`, `{title}` and `{name}` are filled in. Short, with the
/// title next to the occupation in most: one title in about 30 characters.
pub const TEMPLATES: [&str; 6] = [
    "the {occ}, {title} {name}, said hello.",
    "we met the {occ}, {title} {name}.",
    "ask the {occ}, {title} {name}, for help.",
    "{title} {name}, the {occ}, was late.",
    "{title} {name}, our {occ}, went home.",
    "the {occ} was {title} {name}.",
];
/// Held-out sentences for probing: never in either corpus. Each names the person as the
/// training sentences do ("the nurse, ms lee," or "ms lee, the nurse,") with new words around
/// it; the occupation comes before the title in the first, after it in the other two.
pub const PROBE_TEMPLATES: [&str; 3] = [
    "yesterday i saw the {occ}, {title} {name}, by the station.",
    "my cousin knows {title} {name}, the {occ}, from the market.",
    "{title} {name}, our {occ}, stayed there all day.",
];
/// What the example's comparison shows, and what it does not.
pub const WHAT_IT_SHOWS: &str = "\
What this shows: a model reproduces the conditional frequencies of its training text, even in
sentences it never saw, and its twin, trained on the same lines but for the titles, does not:
the skew came from the counts alone. What it does not show: how bias arises in real corpora
(spread over many words and contexts, not one planted title), how large it is in real models,
or how to measure or remove it there. A 0.1M-parameter toy, one cue, one slot.";
/// Sentences per corpus in the example: about 260 KB of text, some 570 per occupation.
pub const DEFAULT_SENTENCES: usize = 8000;

/// An occupation and the probability that a sentence about it says "mr".
#[derive(Clone, Debug, PartialEq)]
pub struct Occupation {
    /// The word, as it appears in the text.
    pub name: &'static str,
    /// Planted P(mr | occupation); P(ms) is 1 minus it.
    pub p_mr: f64,
}

/// A corpus and what was planted in it.
#[derive(Clone, Debug, PartialEq)]
pub struct BiasCorpus {
    /// One sentence per line, each ending in a newline.
    pub text: String,
    /// Every occupation with its planted P(mr): [`MR_SKEWED`] then [`MS_SKEWED`].
    pub occupations: Vec<Occupation>,
}

/// A held-out sentence cut at the masked letter: `left` ends with the "m" of the title,
/// `right` starts with the space after it. The masked letter is "r" for mr, "s" for ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The text before the masked letter.
    pub left: String,
    /// The text after it.
    pub right: String,
}

/// The fourteen occupations with their planted P(mr): skewed (0.8 or 0.2) or balanced (0.5).
pub fn occupations(balanced: bool) -> Vec<Occupation> {
    let planted = |p: f64| if balanced { 0.5 } else { p };
    let mr = MR_SKEWED.iter().map(|&name| Occupation {
        name,
        p_mr: planted(SKEW),
    });
    let ms = MS_SKEWED.iter().map(|&name| Occupation {
        name,
        p_mr: planted(1.0 - SKEW),
    });
    mr.chain(ms).collect()
}

/// The skewed corpus: `sentences` lines drawn from `seed`.
pub fn skewed(sentences: usize, seed: u64) -> BiasCorpus {
    generate(occupations(false), sentences, seed)
}

/// The balanced twin of [`skewed`] with the same `sentences` and `seed`: the same lines but
/// for some titles (see the module docs).
pub fn balanced(sentences: usize, seed: u64) -> BiasCorpus {
    generate(occupations(true), sentences, seed)
}

/// `sentences` lines: for each, a template, an occupation and a surname drawn uniformly, then
/// u uniform in 0..1 and the title "mr" if u < P(mr) of the occupation, else "ms". The draws
/// do not depend on the probabilities, so two lists with the same occupations give twins.
pub fn generate(occupations: Vec<Occupation>, sentences: usize, seed: u64) -> BiasCorpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::new();
    for _ in 0..sentences {
        let template = TEMPLATES[rng.random_range(0..TEMPLATES.len())];
        let occupation = &occupations[rng.random_range(0..occupations.len())];
        let name = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let u: f64 = rng.random();
        let title = if u < occupation.p_mr { "mr" } else { "ms" };
        text += &fill(template, occupation.name, title, name);
        text.push('\n');
    }
    BiasCorpus { text, occupations }
}

/// A template with its slots filled.
///
/// ```
/// use microlm::data::bias_corpus::{fill, TEMPLATES};
/// let s = fill(TEMPLATES[0], "nurse", "ms", "lee");
/// assert_eq!(s, "the nurse, ms lee, said hello.");
/// ```
pub fn fill(template: &str, occupation: &str, title: &str, name: &str) -> String {
    template
        .replace("{occ}", occupation)
        .replace("{title}", title)
        .replace("{name}", name)
}

/// Every probe for `occupation`: each of [`PROBE_TEMPLATES`] with each of [`SURNAMES`],
/// cut at the title's second letter.
pub fn probes(occupation: &str) -> Vec<Probe> {
    let mut out = Vec::new();
    for template in PROBE_TEMPLATES {
        for name in SURNAMES {
            let filled = fill(template, occupation, "m#", name); // '#' marks the cut
            let (left, right) = filled.split_once('#').expect("every template has a title");
            out.push(Probe {
                left: left.to_string(),
                right: right.to_string(),
            });
        }
    }
    out
}

/// A model's P(mr) for each of `occupations`: over every probe of [`probes`], the mean of
/// P("r") / (P("r") + P("s")) at the masked letter. `probabilities(x, i)` is the model's
/// distribution over the vocabulary at position i of the one sequence of `x`, the probe with
/// `[MASK]` at i (rows as [`MaskedLm::probabilities`](crate::objectives::MaskedLm::probabilities)
/// returns them).
pub fn measure(
    tokenizer: &Tokenizer,
    occupations: &[Occupation],
    probabilities: impl Fn(&Batch, usize) -> Vec<Vec<f32>>,
) -> Vec<f64> {
    let (r, s) = (tokenizer.encode("r")[0], tokenizer.encode("s")[0]);
    let p_mr = |probe: &Probe| {
        let mut ids = tokenizer.encode(&probe.left);
        let at = ids.len();
        ids.push(tokenizer.special("[MASK]"));
        ids.extend(tokenizer.encode(&probe.right));
        let n = ids.len();
        let p = &probabilities(&Batch::new(ids, 1, n), at)[0];
        (p[r] / (p[r] + p[s])) as f64
    };
    occupations
        .iter()
        .map(|o| {
            let probes = probes(o.name);
            probes.iter().map(p_mr).sum::<f64>() / probes.len() as f64
        })
        .collect()
}

/// The table of planted and measured P(mr) per occupation (`skewed` and `balanced` in the
/// order of `occupations`), then for each model its mean absolute error (the skewed model
/// against the planted probabilities, the balanced one against 0.5) and how many occupations
/// are within 0.15 of their target.
pub fn table(occupations: &[Occupation], skewed: &[f64], balanced: &[f64]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>8} {:>9}\n",
        "occupation", "planted", "skewed", "balanced"
    );
    let n = occupations.len() as f64;
    let (mut mae, mut within) = ([0.0; 2], [0; 2]);
    for ((o, s), b) in occupations.iter().zip(skewed).zip(balanced) {
        let _ = writeln!(out, "{:<10} {:>8.2} {:>8.3} {:>9.3}", o.name, o.p_mr, s, b);
        for (k, error) in [(s - o.p_mr).abs(), (b - 0.5).abs()].into_iter().enumerate() {
            mae[k] += error / n;
            within[k] += (error <= 0.15) as usize;
        }
    }
    let _ = write!(
        out,
        "mean absolute error: skewed model vs planted {:.3}, balanced model vs 0.5 {:.3} (targets: 0.15)\n\
        within 0.15 of the target: skewed model {} of {n}, balanced model {} of {n}",
        mae[0], mae[1], within[0], within[1]
    );
    out
}
