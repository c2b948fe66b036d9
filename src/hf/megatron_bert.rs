//! microlm's masked LM ([`MaskedLm`]) as `transformers`' `MegatronBertForMaskedLM`, and back.
//!
//! Why Megatron-BERT: of the BERT family's masked LMs it is the one whose encoder is ours
//! exactly. It is pre-LN (a LayerNorm before attention and before the feed-forward in each
//! layer, one after the last layer), it has **no** LayerNorm on the embedding sum (BERT,
//! RoBERTa and RoBERTa-PreLayerNorm have one), and its positions are a plain table indexed from
//! 0 (RoBERTa's, XLM-RoBERTa-XL's and ESM's start at padding_idx + 1). Its head is BERT's:
//! Linear, activation, LayerNorm, then the output matrix and bias; so is every pre-LN candidate's.
//!
//! | microlm (`encoder.*`, `mlm_head.*`) | Megatron-BERT | how |
//! |---|---|---|
//! | `token_embedding.weight` E, times s = sqrt(d) in the forward | `bert.embeddings.word_embeddings.weight` | s E |
//! | the sinusoid times `position_scale` a | `bert.embeddings.position_embeddings.weight` | a PE |
//! | (no segments) | `bert.embeddings.token_type_embeddings.weight` [1, d] | zeros: every token has type 0 |
//! | `layers.i.norm1` | `bert.encoder.layer.i.attention.ln` | same |
//! | `layers.i.self_attn.{q,k,v}_proj` | `...attention.self.{query,key,value}` | same ([out, in] both) |
//! | `layers.i.self_attn.out_proj` | `...attention.output.dense` | same |
//! | `layers.i.norm2` | `...ln` | same |
//! | `layers.i.feed_forward.linear1`, `linear2` | `...intermediate.dense`, `...output.dense` | same |
//! | `final_norm` | `bert.encoder.ln` | same |
//! | `mlm_head.transform`, `mlm_head.norm` | `cls.predictions.transform.dense`, `.LayerNorm` | same |
//! | `mlm_head.output.weight` (E when tied) | `cls.predictions.decoder.weight` | same; tied only when s = 1 |
//! | `mlm_head.output.bias` | `cls.predictions.decoder.bias` (and `cls.predictions.bias`) | same |
//!
//! Refused on export: a head without the transform (`mlm.head_transform = false`, the `mlm`
//! example's default: no class has a plain projection after a pre-LN encoder; train with
//! `--head-transform true`), and an activation other than exact GELU (Megatron's `hidden_act`
//! serves the feed-forward and the head's transform alike, and microlm's transform is always
//! exact GELU).
//!
//! Import folds a trained type-0 segment vector into the token table (every token gets it),
//! needs the position table to be a sinusoid times a factor, and refuses settings microlm lacks.

use super::directory::{refuse_unmapped, HfModel};
use super::json::{number, JsonFile};
use super::tensors::{position_scale_of, put, read_links, scaled, take, write_links, Link};
use crate::nn::{Activation, EncoderLayer, NormPlacement, TransformerConfig};
use crate::objectives::MaskedLm;
use crate::params::Params;
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::collections::BTreeMap;

/// `transformers`' class name for this module's models.
pub const CLASS: &str = "MegatronBertForMaskedLM";

/// The `model_type` in `config.json`.
pub const MODEL_TYPE: &str = "megatron-bert";

/// The one-to-one tensors of layer `i`.
fn layer_links(i: usize, layer: &EncoderLayer) -> Vec<Link> {
    let p = format!("bert.encoder.layer.{i}");
    let attn = &layer.self_attn;
    let linear = |name: String, l: &crate::nn::Linear| {
        let bias = l.bias.expect("microlm's attention and feed-forward have biases");
        [
            Link::same(format!("{name}.weight"), l.weight),
            Link::same(format!("{name}.bias"), bias),
        ]
    };
    let mut links = vec![
        Link::same(format!("{p}.attention.ln.weight"), layer.norm1.weight),
        Link::same(format!("{p}.attention.ln.bias"), layer.norm1.bias),
        Link::same(format!("{p}.ln.weight"), layer.norm2.weight),
        Link::same(format!("{p}.ln.bias"), layer.norm2.bias),
    ];
    links.extend(linear(format!("{p}.attention.self.query"), &attn.q_proj));
    links.extend(linear(format!("{p}.attention.self.key"), &attn.k_proj));
    links.extend(linear(format!("{p}.attention.self.value"), &attn.v_proj));
    links.extend(linear(format!("{p}.attention.output.dense"), &attn.out_proj));
    links.extend(linear(format!("{p}.intermediate.dense"), &layer.feed_forward.linear1));
    links.extend(linear(format!("{p}.output.dense"), &layer.feed_forward.linear2));
    links
}

/// Every one-to-one tensor: the layers, the final LayerNorm and the head's transform.
fn links(model: &MaskedLm) -> Vec<Link> {
    let encoder = &model.encoder;
    let mut links: Vec<Link> = encoder
        .layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| layer_links(i, l))
        .collect();
    let final_norm = encoder.final_norm.as_ref().expect("pre-LN has a final LayerNorm");
    links.push(Link::same("bert.encoder.ln.weight", final_norm.weight));
    links.push(Link::same("bert.encoder.ln.bias", final_norm.bias));
    if let Some((dense, norm)) = &model.head.transform {
        let t = "cls.predictions.transform";
        links.push(Link::same(format!("{t}.dense.weight"), dense.weight));
        links.push(Link::same(format!("{t}.dense.bias"), dense.bias.expect("biased")));
        links.push(Link::same(format!("{t}.LayerNorm.weight"), norm.weight));
        links.push(Link::same(format!("{t}.LayerNorm.bias"), norm.bias));
    }
    links
}

/// The masked LM in `params` as a `MegatronBertForMaskedLM`; `pad` is the `[PAD]` id.
/// Refused: no head transform, an activation other than exact GELU, post-LN, a LayerNorm on the
/// embeddings, segments.
pub fn to_megatron_bert(model: &MaskedLm, params: &Params, pad: usize) -> Result<HfModel, String> {
    let c = &model.encoder.config;
    refuse_unmapped(c, CLASS)?;
    if model.head.transform.is_none() {
        return Err(format!(
            "mlm.head_transform = false: {CLASS}'s head (like every pre-LN BERT-family class's) always has \
             BERT's transform, Linear-GELU-LayerNorm, before the output matrix; train with --head-transform true \
             to export (at this size it costs about 0.05 nats, NOTES.md §11.3)"
        ));
    }
    if c.activation != Activation::Gelu {
        return Err(format!(
            "config.activation = {}: Megatron-BERT's hidden_act serves both the feed-forward and the head's \
             transform, which is exact GELU in microlm; train with --activation gelu (the default) to export",
            c.activation.as_str()
        ));
    }
    let embed = &model.encoder.embed;
    let mut tensors = BTreeMap::new();
    let e = "bert.embeddings";
    tensors.insert(
        format!("{e}.word_embeddings.weight"),
        scaled(params.value(embed.token.weight), embed.scale),
    );
    tensors.insert(format!("{e}.position_embeddings.weight"), embed.positions.clone());
    tensors.insert(
        format!("{e}.token_type_embeddings.weight"),
        Tensor::zeros(vec![1, c.d_model]),
    );
    write_links(&links(model), params, &mut tensors);
    let output = &model.head.output;
    tensors.insert(
        "cls.predictions.decoder.weight".into(),
        params.value(output.weight).clone(),
    );
    tensors.insert("cls.predictions.decoder.bias".into(), params.value(output.bias).clone());
    tensors.insert("cls.predictions.bias".into(), params.value(output.bias).clone());
    let tie = c.tie_embeddings && embed.scale == 1.0;
    let mut notes = Vec::new();
    if c.tie_embeddings && !tie {
        notes.push(
            "tied, with the sqrt(d) input scale: exported untied (word_embeddings = sqrt(d) E, decoder = E)".into(),
        );
    }
    let config = json!({
        "architectures": [CLASS],
        "model_type": MODEL_TYPE,
        "vocab_size": c.vocab_size,
        "hidden_size": c.d_model,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "intermediate_size": c.d_ff,
        "hidden_act": "gelu",
        "hidden_dropout_prob": number(c.dropout),
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": c.max_len,
        "type_vocab_size": 1,
        "initializer_range": 0.02,
        "layer_norm_eps": number(c.layer_norm_eps),
        "pad_token_id": pad,
        "is_decoder": false,
        "add_cross_attention": false,
        "tie_word_embeddings": tie,
        "dtype": "float32",
    });
    Ok(HfModel { config, tensors, notes })
}

/// A `MegatronBertForMaskedLM` (its `config.json`, tensors and tokenizer) as microlm's masked LM
/// with BERT's head. Every tensor must find its place (the `position_ids` buffer of old files is
/// skipped).
pub fn from_megatron_bert(
    file: &JsonFile,
    tensors: &BTreeMap<String, Tensor>,
    tokenizer: &Tokenizer,
) -> Result<(MaskedLm, Params), String> {
    let why = "microlm's masked LM has no such setting";
    file.require(
        "hidden_act",
        json!("gelu"),
        json!("gelu"),
        "the head's transform is exact GELU in microlm",
    )?;
    file.require("is_decoder", json!(false), json!(false), why)?;
    file.require("add_cross_attention", json!(false), json!(false), why)?;
    file.require("position_embedding_type", json!("absolute"), json!("absolute"), why)?;
    file.require(
        "type_vocab_size",
        json!(2),
        json!(1),
        "microlm's masked LM reads no segment ids",
    )?;
    let (v, d, n) = (
        file.usize("vocab_size")?,
        file.usize("hidden_size")?,
        file.usize("max_position_embeddings")?,
    );
    let e = "bert.embeddings";
    let positions = take(tensors, &format!("{e}.position_embeddings.weight"), &[n, d])?;
    let segment = take(tensors, &format!("{e}.token_type_embeddings.weight"), &[1, d])?;
    let words = take(tensors, &format!("{e}.word_embeddings.weight"), &[v, d])?;
    let tied = file.bool_or("tie_word_embeddings", true)?;
    let segment_is_zero = segment.iter().all(|&x| x == 0.0);
    let config = TransformerConfig {
        vocab_size: v,
        d_model: d,
        heads: file.usize("num_attention_heads")?,
        layers: file.usize("num_hidden_layers")?,
        d_ff: file.usize("intermediate_size")?,
        activation: Activation::Gelu,
        max_len: n,
        dropout: file.f32_or("hidden_dropout_prob", 0.1)?,
        norm: NormPlacement::Pre,
        tie_embeddings: tied && segment_is_zero, // a trained type-0 vector parts input from output
        type_vocab_size: 0,
        scale_embeddings: false,
        token_init_std: None,
        embedding_norm: false,
        position_scale: position_scale_of(&positions, &format!("{e}.position_embeddings.weight"))?,
        layer_norm_eps: file.f32_or("layer_norm_eps", 1e-12)?,
    };
    config.validate().map_err(|err| format!("{}: {err}", file.name))?;
    let mut params = Params::new();
    let model = MaskedLm::new(&mut params, &config, tokenizer, true, &mut StdRng::seed_from_u64(0))?;
    // x_0 = W[id] + T[0] + P: the type-0 vector joins every token's row.
    let token_rows = (&words + &segment.index_axis(ndarray::Axis(0), 0)).into_shared();
    put(
        &mut params,
        model.encoder.embed.token.weight,
        token_rows,
        &format!("{e}.word_embeddings.weight"),
    )?;
    let mut used: Vec<String> = ["word_embeddings", "position_embeddings", "token_type_embeddings"]
        .iter()
        .map(|t| format!("{e}.{t}.weight"))
        .collect();
    read_links(&links(&model), tensors, &mut params, &mut used)?;
    let output = &model.head.output;
    if !config.tie_embeddings {
        let w = if tied {
            words
        } else {
            take(tensors, "cls.predictions.decoder.weight", &[v, d])?
        };
        put(&mut params, output.weight, w, "cls.predictions.decoder.weight")?;
    }
    // The bias the forward adds: the decoder's own, or (tied, saved once) cls.predictions.bias.
    let bias_name = match tensors.contains_key("cls.predictions.decoder.bias") {
        true => "cls.predictions.decoder.bias",
        false => "cls.predictions.bias",
    };
    put(&mut params, output.bias, take(tensors, bias_name, &[v])?, bias_name)?;
    used.extend(
        [
            "cls.predictions.decoder.weight",
            "cls.predictions.decoder.bias",
            "cls.predictions.bias",
        ]
        .map(String::from),
    );
    if let Some(extra) = tensors
        .keys()
        .find(|k| !used.contains(k) && !k.ends_with("position_ids"))
    {
        return Err(format!(
            "model.safetensors: tensor '{extra}' has no place in microlm's masked LM"
        ));
    }
    Ok((model, params))
}
