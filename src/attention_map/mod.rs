//! Looking at attention: what each head of a trained model reads, drawn and measured.
//!
//! - [`mlm_attention`] and [`clm_attention`]: every layer's attention weights for one
//!   sequence, from a masked LM (bidirectional) or a causal LM (each position sees itself and
//!   the positions before it), through the model's own embedding and layers in evaluation mode;
//!   [`Looked`] holds either kind, loaded from its checkpoint.
//! - [`attention_grid_svg`]: the weights as heatmaps, one panel per layer (rows) and head
//!   (columns), queries down and keys across, darker for more weight.
//! - [`HeadPatterns`]: for each head, the mean attention mass on a few recognisable patterns
//!   ([`PATTERNS`]), averaged over many query positions, beside what uniform attention would
//!   give. A head whose mass on one pattern is far above the uniform baseline has a job.
//!
//! The patterns are meant for character tokens and unpadded sequences.

use crate::checkpoint::{check_compatible, load_checked, Feeds};
use crate::data::Batch;
use crate::nn::encoder::attention_maps;
use crate::nn::{attention_mask, Encoder, TransformerConfig};
use crate::objectives::{CausalLm, MaskedLm};
use crate::params::Params;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use ndarray::{ArrayView3, Axis, Ix3};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;

mod grid;
pub use grid::attention_grid_svg;

/// Every layer's attention weights `[1, H, T, T]` for the sequence `ids` under the masked LM:
/// every position attends to every position.
pub fn mlm_attention(model: &MaskedLm, params: &Params, ids: &[usize]) -> Vec<Tensor> {
    stack_attention(&model.encoder, params, ids, false)
}

/// Every layer's attention weights `[1, H, T, T]` for `ids` under the causal LM: query t
/// attends to keys 0..=t only (the decoder runs the encoder's stack with the causal mask).
pub fn clm_attention(model: &CausalLm, params: &Params, ids: &[usize]) -> Vec<Tensor> {
    stack_attention(&model.decoder.stack, params, ids, true)
}

/// The stack's own embedding x_0 of `ids` (one sequence, positions from 0), then
/// [`attention_maps`] under the bidirectional or causal mask. Evaluation mode: no dropout.
pub fn stack_attention(stack: &Encoder, params: &Params, ids: &[usize], causal: bool) -> Vec<Tensor> {
    let batch = Batch::new(ids.to_vec(), 1, ids.len());
    let mut tape = Tape::no_grad();
    let x0 = stack
        .embed
        .forward(&mut tape, params, &batch, 0, &mut StdRng::seed_from_u64(0));
    let x0 = tape.value(x0).clone();
    attention_maps(&stack.layers, params, &x0, &attention_mask(&batch, causal))
}

/// A trained model to look at: the `mlm` example's masked LM or the `clm` example's causal LM,
/// with its parameters and tokenizer.
pub struct Looked {
    /// The stack whose attention is read: the encoder, or the decoder's causal stack.
    pub stack: Encoder,
    /// True for the causal LM.
    pub causal: bool,
    /// The trained parameters.
    pub params: Params,
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
}

impl Looked {
    /// Check, without loading it, that the checkpoint at `path` is of `kind` ("mlm" or "clm",
    /// given with `--mlm` or `--clm`): [`check_compatible`], the error naming the flag, the
    /// file and the example that makes one.
    pub fn check(kind: &str, path: &Path) -> Result<(), String> {
        let objectives = [kind];
        let feeds = Feeds {
            flag: kind,
            objectives: &objectives,
            ..Feeds::default()
        };
        check_compatible(path, &feeds)
            .map(|_| ())
            .map_err(|e| format!("{e}\n(make it with: cargo run --release --example {kind})"))
    }

    /// Load a checkpoint of `kind` "mlm" ([`MaskedLm::load`]) or "clm" ([`CausalLm::load`]);
    /// the error names the example that makes one.
    pub fn load(kind: &str, path: &Path) -> Result<Looked, String> {
        let (stack, params, tokenizer) = match kind {
            "mlm" => load_checked(path, kind, kind, MaskedLm::load).map(|(model, p, t)| (model.encoder, p, t)),
            "clm" => load_checked(path, kind, kind, CausalLm::load).map(|(model, p, t)| (model.decoder.stack, p, t)),
            other => return Err(format!("Looked::load: kind {other:?} is not mlm or clm")),
        }?;
        let causal = kind == "clm";
        Ok(Looked {
            stack,
            causal,
            params,
            tokenizer,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &TransformerConfig {
        &self.stack.config
    }

    /// Every layer's weights `[1, H, T, T]` for `ids`, under the model's own mask.
    pub fn maps(&self, ids: &[usize]) -> Vec<Tensor> {
        stack_attention(&self.stack, &self.params, ids, self.causal)
    }

    /// [`HeadPatterns`] over `windows` evenly spaced windows of `max_len` tokens of `ids` (a
    /// validation split, say): every position of each.
    pub fn patterns(&self, ids: &[usize], windows: usize) -> HeadPatterns {
        let c = self.config();
        let mut patterns = HeadPatterns::new(c.layers, c.heads);
        for k in 0..windows {
            let start = k * ids.len().saturating_sub(c.max_len) / windows;
            let window = &ids[start..(start + c.max_len).min(ids.len())];
            patterns.add(&self.maps(window), &token_labels(&self.tokenizer, window), self.causal);
        }
        patterns
    }
}

/// Each id as text, for labels: a space shown as "␣", a newline as "⏎".
pub fn token_labels(tokenizer: &Tokenizer, ids: &[usize]) -> Vec<String> {
    ids.iter()
        .map(|&id| tokenizer.decode(&[id]).replace(' ', "␣").replace('\n', "⏎"))
        .collect()
}

/// One layer's weights as `[H, T, T]`: `[H, T, T]` as it is, `[1, H, T, T]` without the batch.
fn heads_of(map: &Tensor) -> ArrayView3<'_, f32> {
    let shape = map.shape();
    let view = match map.ndim() {
        4 if shape[0] == 1 => map.index_axis(Axis(0), 0),
        3 => map.view(),
        _ => panic!("attention map: expected [H, T, T] or [1, H, T, T], got {shape:?}"),
    };
    view.into_dimensionality::<Ix3>().expect("three axes")
}

/// The patterns [`HeadPatterns`] measures, in its column order. For query i, the keys are:
/// - "previous": i - 1;
/// - "next": i + 1 (never visible under the causal mask, so never measured there);
/// - "self": i itself;
/// - "same char": every other position j != i holding the same token as i;
/// - "same word": every other position of the word i is in (a run of tokens that are not
///   boundaries; nothing when i is a boundary);
/// - "boundary": every position holding a space, newline or punctuation (i too, if it is one);
/// - "first": position 0, for i > 0 (where heads with nothing to do often park their weight).
///
/// The patterns overlap (the previous token may be a space), so the masses need not sum to 1.
pub const PATTERNS: [&str; 7] = [
    "previous",
    "next",
    "self",
    "same char",
    "same word",
    "boundary",
    "first",
];

/// How many patterns there are.
const P: usize = PATTERNS.len();

/// True for a token made only of whitespace and punctuation.
fn is_boundary(token: &str) -> bool {
    let visible = token.replace('␣', " ").replace('⏎', "\n");
    !visible.is_empty() && visible.chars().all(|c| c.is_whitespace() || c.is_ascii_punctuation())
}

/// For query i of `tokens`: which of [`PATTERNS`] key j belongs to. `word[k]` numbers the
/// word token k is in (`None` for a boundary).
fn pattern_of(tokens: &[String], word: &[Option<usize>], i: usize, j: usize) -> [bool; P] {
    [
        j + 1 == i,
        j == i + 1,
        j == i,
        j != i && tokens[j] == tokens[i],
        j != i && word[i].is_some() && word[j] == word[i],
        is_boundary(&tokens[j]),
        j == 0 && i > 0,
    ]
}

/// For each token, the number of the word it is in (counting runs of non-boundary tokens),
/// or `None` for a boundary.
fn words(tokens: &[String]) -> Vec<Option<usize>> {
    let mut count = 0;
    let starts = |k: usize| !is_boundary(&tokens[k]) && (k == 0 || is_boundary(&tokens[k - 1]));
    (0..tokens.len())
        .map(|k| {
            count += starts(k) as usize;
            (!is_boundary(&tokens[k])).then_some(count)
        })
        .collect()
}

/// Mean attention mass per layer, head and pattern, accumulated over query positions of one
/// or more sequences ([`HeadPatterns::add`]). A pattern counts for query i only if some key
/// it may attend to belongs to the pattern.
#[derive(Clone, Debug)]
pub struct HeadPatterns {
    /// Layers.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// Sum of the mass on each pattern, per layer * heads + head.
    sums: Vec<[f64; P]>,
    /// Queries where each pattern was measured (the same for every head).
    counts: [usize; P],
    /// Sum of the mass uniform attention over the visible keys would give.
    uniform: [f64; P],
}

impl HeadPatterns {
    /// Nothing measured yet.
    pub fn new(layers: usize, heads: usize) -> HeadPatterns {
        HeadPatterns {
            layers,
            heads,
            sums: vec![[0.0; P]; layers * heads],
            counts: [0; P],
            uniform: [0.0; P],
        }
    }

    /// Add every query of one sequence: `maps` one per layer (`[H, T, T]` or `[1, H, T, T]`),
    /// `tokens` its T tokens (as [`token_labels`] gives them), `causal` whether query i saw
    /// only keys 0..=i.
    pub fn add(&mut self, maps: &[Tensor], tokens: &[String], causal: bool) {
        assert_eq!(maps.len(), self.layers, "HeadPatterns::add: layers");
        let (t, word) = (tokens.len(), words(tokens));
        for i in 0..t {
            let visible = if causal { i + 1 } else { t };
            let mut members = [0usize; P];
            let keys: Vec<[bool; P]> = (0..visible).map(|j| pattern_of(tokens, &word, i, j)).collect();
            for k in &keys {
                for p in 0..P {
                    members[p] += k[p] as usize;
                }
            }
            for p in (0..P).filter(|&p| members[p] > 0) {
                self.counts[p] += 1;
                self.uniform[p] += members[p] as f64 / visible as f64;
            }
            for (l, map) in maps.iter().enumerate() {
                let w = heads_of(map);
                assert_eq!(w.shape(), [self.heads, t, t], "HeadPatterns::add: layer {l}");
                for h in 0..self.heads {
                    let sums = &mut self.sums[l * self.heads + h];
                    for (j, k) in keys.iter().enumerate() {
                        for p in (0..P).filter(|&p| k[p]) {
                            sums[p] += w[[h, i, j]] as f64;
                        }
                    }
                }
            }
        }
    }

    /// Mean mass of `layer`, `head` on each of [`PATTERNS`]; `None` where never measured.
    pub fn mean(&self, layer: usize, head: usize) -> [Option<f64>; P] {
        let sums = &self.sums[layer * self.heads + head];
        std::array::from_fn(|p| (self.counts[p] > 0).then(|| sums[p] / self.counts[p] as f64))
    }

    /// What uniform attention over the visible keys would put on each pattern, on average.
    pub fn uniform(&self) -> [Option<f64>; P] {
        std::array::from_fn(|p| (self.counts[p] > 0).then(|| self.uniform[p] / self.counts[p] as f64))
    }

    /// Queries measured ("self" is measured on every one).
    pub fn queries(&self) -> usize {
        self.counts[2]
    }

    /// The table: a row per head, a column per pattern ("-" where never measured), and the
    /// uniform baseline last.
    pub fn table(&self) -> String {
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut out = format!("{:<14}", "layer head");
        for p in PATTERNS {
            out += &format!("{p:>10}");
        }
        let mut row = |name: String, values: [Option<f64>; P]| {
            out += &format!("\n{name:<14}");
            for v in values {
                out += &format!("{:>10}", cell(v));
            }
        };
        for l in 0..self.layers {
            for h in 0..self.heads {
                row(format!("{l:>5} {h:>4}"), self.mean(l, h));
            }
        }
        row("uniform".into(), self.uniform());
        out
    }

    /// "layer 0 head 2: previous 0.83 (uniform 0.02)" for every head and pattern with a mean
    /// mass above `threshold`, largest first: the heads with a recognisable job.
    pub fn jobs(&self, threshold: f64) -> Vec<String> {
        let uniform = self.uniform();
        let mut found = Vec::new();
        for l in 0..self.layers {
            for h in 0..self.heads {
                for (p, mass) in self.mean(l, h).into_iter().enumerate() {
                    if let Some(m) = mass.filter(|&m| m > threshold) {
                        let (name, u) = (PATTERNS[p], uniform[p].unwrap_or(0.0));
                        found.push((m, format!("layer {l} head {h}: {name} {m:.2} (uniform {u:.2})")));
                    }
                }
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.into_iter().map(|(_, job)| job).collect()
    }
}
