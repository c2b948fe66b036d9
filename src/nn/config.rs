//! The configuration shared by the encoder, the decoder-only stack and the encoder-decoder.

use std::collections::BTreeMap;

/// Where each sub-layer's LayerNorm sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormPlacement {
    /// x = LN(x + Sublayer(x)), as in the paper (Vaswani et al., 2017) and BERT.
    Post,
    /// x = x + Sublayer(LN(x)), as in GPT-2; the stack then ends with a final LN.
    Pre,
}

impl NormPlacement {
    /// "pre" or "post", as stored in checkpoints.
    pub fn as_str(self) -> &'static str {
        match self {
            NormPlacement::Pre => "pre",
            NormPlacement::Post => "post",
        }
    }

    /// Parse "pre" or "post".
    pub fn parse(s: &str) -> Option<NormPlacement> {
        match s {
            "pre" => Some(NormPlacement::Pre),
            "post" => Some(NormPlacement::Post),
            _ => None,
        }
    }
}

/// The feed-forward network's nonlinearity (see [`crate::nn::feed_forward`] for the formulas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, x Phi(x) with the normal CDF Phi (BERT; PyTorch's `"gelu"`).
    Gelu,
    /// GELU by its tanh approximation (GPT-2; PyTorch's `gelu(x, approximate="tanh")`).
    GeluTanh,
    /// max(x, 0) (the original Transformer; PyTorch's `TransformerEncoderLayer` default).
    Relu,
}

impl Activation {
    /// "gelu", "gelu_tanh" or "relu", as stored in checkpoints.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Relu => "relu",
        }
    }

    /// Parse "gelu", "gelu_tanh" or "relu".
    pub fn parse(s: &str) -> Option<Activation> {
        match s {
            "gelu" => Some(Activation::Gelu),
            "gelu_tanh" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }
}

/// Upper bounds [`TransformerConfig::validate`] enforces, so that a hostile or mistyped config
/// (from a checkpoint's metadata, say) is an error naming the field rather than an attempt to
/// allocate terabytes. Each is far above anything this CPU-only crate can train.
pub mod limits {
    /// Most token ids: 2^20 (BPE vocabularies of real models are 30k to 260k).
    pub const MAX_VOCAB_SIZE: usize = 1 << 20;
    /// Widest hidden state: 2^14 (GPT-3 175B has 12288).
    pub const MAX_D_MODEL: usize = 1 << 14;
    /// Most attention heads: 2^10.
    pub const MAX_HEADS: usize = 1 << 10;
    /// Most layers per stack: 2^10 (GPT-3 175B has 96).
    pub const MAX_LAYERS: usize = 1 << 10;
    /// Widest feed-forward layer: 2^16.
    pub const MAX_D_FF: usize = 1 << 16;
    /// Longest sequence: 2^16 positions.
    pub const MAX_LEN: usize = 1 << 16;
    /// Most segment ids: 2^10.
    pub const MAX_TYPE_VOCAB_SIZE: usize = 1 << 10;
    /// Most parameters in all (an estimate from the fields): 2^31, 8 GiB of f32.
    pub const MAX_PARAMETERS: u128 = 1 << 31;
}

/// The shape of a Transformer. [`TransformerConfig::toy`] gives the defaults this crate trains on
/// a laptop.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of every hidden state, d_model.
    pub d_model: usize,
    /// Attention heads h; d_model must be divisible by h.
    pub heads: usize,
    /// Number of layers N (per stack).
    pub layers: usize,
    /// Inner width of the feed-forward network, d_ff.
    pub d_ff: usize,
    /// The feed-forward network's nonlinearity.
    pub activation: Activation,
    /// Longest sequence the positional table covers.
    pub max_len: usize,
    /// Dropout probability after attention, inside and after the feed-forward, and on the
    /// embeddings.
    pub dropout: f32,
    /// LayerNorm placement.
    pub norm: NormPlacement,
    /// Whether the output projection to the vocabulary reuses the token embedding matrix (in
    /// the encoder-decoder, one matrix then serves both stacks' inputs and the output).
    pub tie_embeddings: bool,
    /// Number of segment (token type) ids; 0 means no segment embeddings.
    pub type_vocab_size: usize,
    /// Multiply token embeddings by sqrt(d_model) before adding positions, as the paper does
    /// (section 3.4).
    pub scale_embeddings: bool,
    /// Standard deviation of the token embedding's initial values; `None` picks 1/sqrt(d_model)
    /// under the sqrt(d) scale (so the scaled vectors have unit size) and 0.02 (BERT's) without it.
    pub token_init_std: Option<f32>,
    /// A LayerNorm on the embedding sum, before the first layer (BERT's `embeddings.LayerNorm`).
    pub embedding_norm: bool,
    /// A factor on the sinusoidal table: 1 adds the paper's PE; smaller values quieten the
    /// positions relative to the token vectors.
    pub position_scale: f32,
    /// LayerNorm's eps.
    pub layer_norm_eps: f32,
}

impl TransformerConfig {
    /// The toy defaults: d_model 128, 4 heads, 4 layers, d_ff 512, exact GELU, max_len 128,
    /// dropout 0.1, pre-LN, tied output embedding, no segments, embeddings scaled by sqrt(d_model).
    pub fn toy(vocab_size: usize) -> TransformerConfig {
        TransformerConfig {
            vocab_size,
            d_model: 128,
            heads: 4,
            layers: 4,
            d_ff: 512,
            activation: Activation::Gelu,
            max_len: 128,
            dropout: 0.1,
            norm: NormPlacement::Pre,
            tie_embeddings: true,
            type_vocab_size: 0,
            scale_embeddings: true,
            token_init_std: None,
            embedding_norm: false,
            position_scale: 1.0,
            layer_norm_eps: 1e-5,
        }
    }

    /// d_ff = 4 d_model, the paper's ratio.
    pub fn with_d_model(mut self, d_model: usize) -> TransformerConfig {
        self.d_model = d_model;
        self.d_ff = 4 * d_model;
        self
    }

    /// Check every field against its bounds (at least 1, at most the maximum in [`limits`]), then
    /// the estimated parameter count; the error names the field and says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |field: &str, why: String| Err(format!("invalid TransformerConfig: {field}: {why}"));
        self.check_maxima()?;
        if self.vocab_size == 0 {
            return fail("vocab_size", "must be at least 1".into());
        }
        if self.d_model == 0 {
            return fail("d_model", "must be at least 1".into());
        }
        if self.heads == 0 {
            return fail("heads", "must be at least 1".into());
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return fail(
                "d_model",
                format!("{} is not divisible by heads = {}", self.d_model, self.heads),
            );
        }
        if self.layers == 0 {
            return fail("layers", "must be at least 1".into());
        }
        if self.d_ff == 0 {
            return fail("d_ff", "must be at least 1".into());
        }
        if self.max_len == 0 {
            return fail("max_len", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail("dropout", format!("{} is not in [0, 1)", self.dropout));
        }
        if let Some(std) = self.token_init_std {
            if !(std > 0.0 && std.is_finite()) {
                return fail("token_init_std", format!("{std} must be positive and finite"));
            }
        }
        if !(self.position_scale >= 0.0 && self.position_scale.is_finite()) {
            return fail(
                "position_scale",
                format!("{} must be finite and not negative", self.position_scale),
            );
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return fail(
                "layer_norm_eps",
                format!("{} must be positive and finite", self.layer_norm_eps),
            );
        }
        let n = self.estimated_parameters();
        if n > limits::MAX_PARAMETERS {
            return fail(
                "layers",
                format!(
                    "about {n} parameters in all, more than the maximum {}",
                    limits::MAX_PARAMETERS
                ),
            );
        }
        Ok(())
    }

    /// Every size field at most its maximum in [`limits`]; the error names the field.
    fn check_maxima(&self) -> Result<(), String> {
        use limits::*;
        for (field, value, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB_SIZE),
            ("d_model", self.d_model, MAX_D_MODEL),
            ("heads", self.heads, MAX_HEADS),
            ("layers", self.layers, MAX_LAYERS),
            ("d_ff", self.d_ff, MAX_D_FF),
            ("max_len", self.max_len, MAX_LEN),
            ("type_vocab_size", self.type_vocab_size, MAX_TYPE_VOCAB_SIZE),
        ] {
            if value > max {
                return Err(format!(
                    "invalid TransformerConfig: {field}: {value} is more than the maximum {max}"
                ));
            }
        }
        Ok(())
    }

    /// Roughly how many parameters one stack of this shape has (embeddings, positions, and per
    /// layer 4 d^2 for attention plus 2 d d_ff for the feed-forward network), in u128 so that
    /// no product overflows.
    pub fn estimated_parameters(&self) -> u128 {
        let [v, d, l, f, t, s] = [
            self.vocab_size,
            self.d_model,
            self.layers,
            self.d_ff,
            self.max_len,
            self.type_vocab_size,
        ]
        .map(|x| x as u128);
        (v + t + s) * d + l * (4 * d * d + 2 * d * f)
    }
}

impl TransformerConfig {
    /// The config as checkpoint metadata: one `config.<field>` entry per field.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let fields = [
            ("vocab_size", self.vocab_size.to_string()),
            ("d_model", self.d_model.to_string()),
            ("heads", self.heads.to_string()),
            ("layers", self.layers.to_string()),
            ("d_ff", self.d_ff.to_string()),
            ("activation", self.activation.as_str().to_string()),
            ("max_len", self.max_len.to_string()),
            ("dropout", self.dropout.to_string()),
            ("norm", self.norm.as_str().to_string()),
            ("tie_embeddings", self.tie_embeddings.to_string()),
            ("type_vocab_size", self.type_vocab_size.to_string()),
            ("scale_embeddings", self.scale_embeddings.to_string()),
            (
                "token_init_std",
                self.token_init_std.map_or("auto".into(), |s| s.to_string()),
            ),
            ("embedding_norm", self.embedding_norm.to_string()),
            ("position_scale", self.position_scale.to_string()),
            ("layer_norm_eps", self.layer_norm_eps.to_string()),
        ];
        fields.into_iter().map(|(k, v)| (format!("config.{k}"), v)).collect()
    }

    /// Read a config back from checkpoint metadata; the error names the missing or malformed
    /// field. The result is validated.
    ///
    /// `config.activation` may be missing: checkpoints written before it existed all used exact
    /// GELU, so a missing key reads as [`Activation::Gelu`]. Likewise a missing
    /// `config.token_init_std` reads as automatic, `config.embedding_norm` as false and
    /// `config.position_scale` as 1.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<TransformerConfig, String> {
        fn get<T: std::str::FromStr>(m: &BTreeMap<String, String>, field: &str) -> Result<T, String> {
            let key = format!("config.{field}");
            let raw = m
                .get(&key)
                .ok_or_else(|| format!("checkpoint metadata lacks '{key}'"))?;
            raw.parse()
                .map_err(|_| format!("checkpoint metadata '{key}' = {raw:?} is not a valid value"))
        }
        fn get_or<T: std::str::FromStr>(m: &BTreeMap<String, String>, field: &str, default: T) -> Result<T, String> {
            match m.contains_key(&format!("config.{field}")) {
                true => get(m, field),
                false => Ok(default),
            }
        }
        let norm: String = get(m, "norm")?;
        let activation = match m.get("config.activation") {
            None => Activation::Gelu,
            Some(a) => Activation::parse(a).ok_or_else(|| {
                format!("checkpoint metadata 'config.activation' = {a:?} is not gelu, gelu_tanh or relu")
            })?,
        };
        let token_init_std = match m.get("config.token_init_std").map(String::as_str) {
            None | Some("auto") => None,
            Some(_) => Some(get(m, "token_init_std")?),
        };
        let config = TransformerConfig {
            vocab_size: get(m, "vocab_size")?,
            d_model: get(m, "d_model")?,
            heads: get(m, "heads")?,
            layers: get(m, "layers")?,
            d_ff: get(m, "d_ff")?,
            activation,
            max_len: get(m, "max_len")?,
            dropout: get(m, "dropout")?,
            norm: NormPlacement::parse(&norm)
                .ok_or_else(|| format!("checkpoint metadata 'config.norm' = {norm:?} is not pre or post"))?,
            tie_embeddings: get(m, "tie_embeddings")?,
            type_vocab_size: get(m, "type_vocab_size")?,
            scale_embeddings: get(m, "scale_embeddings")?,
            token_init_std,
            embedding_norm: get_or(m, "embedding_norm", false)?,
            position_scale: get_or(m, "position_scale", 1.0)?,
            layer_norm_eps: get(m, "layer_norm_eps")?,
        };
        config.validate()?;
        Ok(config)
    }
}
