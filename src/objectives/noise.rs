//! Which corruption a denoiser learns to undo, and how a checkpoint records it: BART's noise
//! functions (`data/bart_noise.rs`) or T5's span corruption (`data/span_corruption.rs`).

use crate::data::bart_noise::{BartNoise, Masking};
use crate::data::span_corruption::SpanCorruption;
use std::collections::BTreeMap;

/// BART's noise or T5's span corruption, with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Noise {
    /// BART's noise functions; the target is the whole document.
    Bart(BartNoise),
    /// T5's span corruption; the target is the dropped spans.
    T5(SpanCorruption),
}

/// The names `--noise` takes, in the order of the per-noise table: each BART noise alone at
/// BART's rate, BART-large's mix, T5's span corruption.
pub const NOISE_NAMES: [&str; 7] = ["mask", "delete", "infill", "permute", "rotate", "bart", "t5"];

impl Noise {
    /// The noise a name of [`NOISE_NAMES`] stands for:
    /// - `mask`, `delete`, `infill`: token masking, token deletion, or text infilling (spans of
    ///   Poisson(3) tokens) of p = 0.3 of the body, BART-large's rate, and nothing else;
    /// - `permute`: every sentence shuffled, nothing else;
    /// - `rotate`: every document rotated, nothing else (fairseq's task rotates half of them by
    ///   default; here all, so that each scored document tests the noise);
    /// - `bart`: BART-large's mix ([`BartNoise::default`]); `t5`: T5's span corruption.
    pub fn named(name: &str) -> Result<Noise, String> {
        let alone = BartNoise {
            masking: Masking::Off,
            permute: 0.0,
            ..BartNoise::default()
        };
        let spans = BartNoise::default().masking;
        let noise = match name {
            "mask" => Noise::Bart(BartNoise {
                masking: Masking::Tokens,
                ..alone
            }),
            "delete" => Noise::Bart(BartNoise {
                masking: Masking::Delete,
                ..alone
            }),
            "infill" => Noise::Bart(BartNoise {
                masking: spans,
                ..alone
            }),
            "permute" => Noise::Bart(BartNoise { permute: 1.0, ..alone }),
            "rotate" => Noise::Bart(BartNoise { rotate: 1.0, ..alone }),
            "bart" => Noise::Bart(BartNoise::default()),
            "t5" => Noise::T5(SpanCorruption::default()),
            other => return Err(format!("--noise {other:?}: expected one of {}", NOISE_NAMES.join(", "))),
        };
        Ok(noise)
    }

    /// The name of [`NOISE_NAMES`] whose noise this is, or `custom`.
    pub fn short_name(&self) -> &'static str {
        NOISE_NAMES
            .iter()
            .find(|name| Noise::named(name).as_ref() == Ok(self))
            .copied()
            .unwrap_or("custom")
    }

    /// Check the settings; the error names the one out of range.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Noise::Bart(n) => n.validate(),
            Noise::T5(n) => n.validate(),
        }
    }

    /// One line for people: "BART: span infilling p = 0.3 (Poisson 3), permute 1, ...".
    pub fn describe(&self) -> String {
        match self {
            Noise::Bart(n) => {
                let masking = match n.masking {
                    Masking::Off => "no masking".to_string(),
                    Masking::Tokens => format!("token masking p = {}", n.p),
                    Masking::Delete => format!("token deletion p = {}", n.p),
                    Masking::Spans { lambda, keep_length } => format!(
                        "text infilling p = {} (span lengths ~ Poisson({lambda}){})",
                        n.p,
                        if keep_length { ", one mask per token" } else { "" }
                    ),
                    Masking::Words { lambda, keep_length } => format!(
                        "whole-word text infilling p = {} of the words (span lengths ~ Poisson({lambda}) words{})",
                        n.p,
                        if keep_length { ", one mask per token" } else { "" }
                    ),
                };
                format!(
                    "BART: {masking}, random share {}, sentences permuted {}, insertion {}, rotation {}",
                    n.mask_random, n.permute, n.insert, n.rotate
                )
            }
            Noise::T5(n) => format!(
                "T5 span corruption: noise density {}, mean span {}",
                n.noise_density, n.mean_span
            ),
        }
    }

    /// The settings as checkpoint metadata (`denoise.*`), so a resume with other noise is
    /// refused and a loaded model knows its noise.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let fields: Vec<(&str, String)> = match self {
            Noise::Bart(n) => {
                let (masking, lambda, keep_length) = match n.masking {
                    Masking::Off => ("off", 0.0, false),
                    Masking::Tokens => ("tokens", 0.0, false),
                    Masking::Delete => ("delete", 0.0, false),
                    Masking::Spans { lambda, keep_length } => ("spans", lambda, keep_length),
                    Masking::Words { lambda, keep_length } => ("words", lambda, keep_length),
                };
                vec![
                    ("noise", "bart".into()),
                    ("p", n.p.to_string()),
                    ("masking", masking.into()),
                    ("lambda", lambda.to_string()),
                    ("keep_length", keep_length.to_string()),
                    ("mask_random", n.mask_random.to_string()),
                    ("permute", n.permute.to_string()),
                    ("insert", n.insert.to_string()),
                    ("rotate", n.rotate.to_string()),
                ]
            }
            Noise::T5(n) => vec![
                ("noise", "t5".into()),
                ("noise_density", n.noise_density.to_string()),
                ("mean_span", n.mean_span.to_string()),
            ],
        };
        fields.into_iter().map(|(k, v)| (format!("denoise.{k}"), v)).collect()
    }

    /// Read back what [`Noise::to_metadata`] wrote; the error names the missing or bad key.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Noise, String> {
        fn get<T: std::str::FromStr>(m: &BTreeMap<String, String>, field: &str) -> Result<T, String> {
            let key = format!("denoise.{field}");
            let raw = m.get(&key).ok_or_else(|| format!("metadata lacks '{key}'"))?;
            raw.parse()
                .map_err(|_| format!("metadata '{key}' = {raw:?} is not valid"))
        }
        let noise = match get::<String>(m, "noise")?.as_str() {
            "bart" => Noise::Bart(BartNoise {
                p: get(m, "p")?,
                masking: match get::<String>(m, "masking")?.as_str() {
                    "off" => Masking::Off,
                    "tokens" => Masking::Tokens,
                    "delete" => Masking::Delete,
                    "spans" => Masking::Spans {
                        lambda: get(m, "lambda")?,
                        keep_length: get(m, "keep_length")?,
                    },
                    "words" => Masking::Words {
                        lambda: get(m, "lambda")?,
                        keep_length: get(m, "keep_length")?,
                    },
                    other => return Err(format!("metadata 'denoise.masking' = {other:?} is not known")),
                },
                mask_random: get(m, "mask_random")?,
                permute: get(m, "permute")?,
                insert: get(m, "insert")?,
                rotate: get(m, "rotate")?,
            }),
            "t5" => Noise::T5(SpanCorruption {
                noise_density: get(m, "noise_density")?,
                mean_span: get(m, "mean_span")?,
            }),
            other => return Err(format!("metadata 'denoise.noise' = {other:?} is neither bart nor t5")),
        };
        noise.validate()?;
        Ok(noise)
    }
}
