//! microlm's causal LM ([`CausalLm`]) as `transformers`' `GPT2LMHeadModel`, and back.
//!
//! Both are the same pre-LN decoder: x_0 = tokens + positions, each block
//! x = x + Attn(LN_1(x)); x = x + MLP(LN_2(x)), then LN_f and the projection to the vocabulary.
//! What differs is form, not function:
//!
//! | microlm (`decoder.*`) | GPT-2 | how |
//! |---|---|---|
//! | `token_embedding.weight` E [V, d], times s = sqrt(d) in the forward | `transformer.wte.weight` | s E (s = 1 without `scale_embeddings`) |
//! | the sinusoid PE times `position_scale` a (not a parameter) | `transformer.wpe.weight` [max_len, d] | a PE, a learned table that starts as ours |
//! | `layers.i.norm1`, `norm2` | `transformer.h.i.ln_1`, `ln_2` | same |
//! | `layers.i.self_attn.{q,k,v}_proj`, W `[d, d]`, b `[d]` | `transformer.h.i.attn.c_attn`, W `[d, 3d]`, b `[3d]` | `[W_Q; W_K; W_V]^T` (`Conv1D` is `[in, out]`), `[b_Q; b_K; b_V]` |
//! | `layers.i.self_attn.out_proj` | `transformer.h.i.attn.c_proj` | transposed |
//! | `layers.i.feed_forward.linear1`, `linear2` | `transformer.h.i.mlp.c_fc`, `c_proj` | transposed |
//! | `final_norm` (gamma, beta) | `transformer.ln_f` | gamma; beta + delta (below) |
//! | `lm_head.weight` W (E when tied) | `lm_head.weight` | same; `tie_word_embeddings` only when tied and s = 1 |
//! | `lm_head.bias` b | none | folded into `ln_f.bias` |
//!
//! - **Tied with the sqrt(d) scale**: the input table is s E and the output E, two different
//!   matrices, so the export is untied (`tie_word_embeddings: false`), which GPT-2 honours.
//! - **The output bias**: GPT-2's `lm_head` has none. But the logits are
//!   (gamma n + beta) W^T + b = (gamma n + beta + delta) W^T when W delta = b, and such a delta
//!   exists whenever W's V rows are independent (V <= d; a character vocabulary of 70 against
//!   d = 128). The smallest delta is added to `ln_f.bias`. A BPE vocabulary larger than d has
//!   no such delta: refused, unless the bias is zero.
//! - Activation: exact GELU is `"gelu"`, its tanh form `"gelu_new"`, ReLU `"relu"`. GPT-2's
//!   attention scales by 1/sqrt(d_k) as ours (`scale_attn_weights`).
//! - Dropout: GPT-2 drops after attention's and the MLP's output projections and on the
//!   embeddings (`resid_pdrop`, `embd_pdrop` = ours); ours also drops inside the feed-forward
//!   and never drops attention weights (`attn_pdrop` = 0). Logits in evaluation are the same.
//!
//! Import reads a GPT-2 the same way back, with s = 1 (the table as it is), no output bias, and
//! the position table required to be a sinusoid times a factor (microlm has no learned
//! positions); `transformers` settings that change the function and that microlm lacks are
//! refused, naming the field.

use super::directory::{refuse_unmapped, HfModel};
use super::json::{number, JsonFile};
use super::tensors::{
    bias_as_shift, position_scale_of, put, read_links, scaled, split, stacked, take, transposed, write_links, Link,
};
use crate::nn::{Activation, Decoder, EncoderLayer, NormPlacement, TransformerConfig};
use crate::objectives::CausalLm;
use crate::params::Params;
use crate::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::collections::BTreeMap;

/// The one-to-one tensors of block `i`.
fn block_links(i: usize, layer: &EncoderLayer) -> Vec<Link> {
    let h = format!("transformer.h.{i}");
    let bias = |l: &crate::nn::Linear| l.bias.expect("microlm's attention and feed-forward have biases");
    let (attn, ff) = (&layer.self_attn, &layer.feed_forward);
    vec![
        Link::same(format!("{h}.ln_1.weight"), layer.norm1.weight),
        Link::same(format!("{h}.ln_1.bias"), layer.norm1.bias),
        Link::transposed(format!("{h}.attn.c_proj.weight"), attn.out_proj.weight),
        Link::same(format!("{h}.attn.c_proj.bias"), bias(&attn.out_proj)),
        Link::same(format!("{h}.ln_2.weight"), layer.norm2.weight),
        Link::same(format!("{h}.ln_2.bias"), layer.norm2.bias),
        Link::transposed(format!("{h}.mlp.c_fc.weight"), ff.linear1.weight),
        Link::same(format!("{h}.mlp.c_fc.bias"), bias(&ff.linear1)),
        Link::transposed(format!("{h}.mlp.c_proj.weight"), ff.linear2.weight),
        Link::same(format!("{h}.mlp.c_proj.bias"), bias(&ff.linear2)),
    ]
}

/// GPT-2's name for an activation.
fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
        Activation::Relu => "relu",
    }
}

/// The causal LM in `params` as a `GPT2LMHeadModel`; `pad` is the tokenizer's `[PAD]` id.
/// Refused: post-LN, a LayerNorm on the embeddings, segments, and an output bias that no shift
/// of `ln_f.bias` reproduces (see the module docs).
pub fn to_gpt2(model: &CausalLm, params: &Params, pad: usize) -> Result<HfModel, String> {
    let decoder: &Decoder = &model.decoder;
    let c = &decoder.config;
    refuse_unmapped(c, "GPT2LMHeadModel")?;
    let embed = &decoder.stack.embed;
    let value = |id| params.value(id);
    let mut tensors = BTreeMap::new();
    let mut notes = Vec::new();
    tensors.insert(
        "transformer.wte.weight".into(),
        scaled(value(embed.token.weight), embed.scale),
    );
    tensors.insert("transformer.wpe.weight".into(), embed.positions.clone());
    for (i, layer) in decoder.stack.layers.iter().enumerate() {
        write_links(&block_links(i, layer), params, &mut tensors);
        let attn = &layer.self_attn;
        let [q, k, v] = [&attn.q_proj, &attn.k_proj, &attn.v_proj];
        let w = stacked(&[value(q.weight), value(k.weight), value(v.weight)]); // [3d, d]
        tensors.insert(format!("transformer.h.{i}.attn.c_attn.weight"), transposed(&w));
        let b: Vec<&Tensor> = [q, k, v].iter().map(|l| value(l.bias.expect("biased"))).collect();
        tensors.insert(format!("transformer.h.{i}.attn.c_attn.bias"), stacked(&b));
    }
    let final_norm = decoder.stack.final_norm.as_ref().expect("pre-LN has a final LayerNorm");
    tensors.insert("transformer.ln_f.weight".into(), value(final_norm.weight).clone());
    let (w, b) = (value(decoder.lm_head.weight), value(decoder.lm_head.bias));
    let mut beta = value(final_norm.bias).clone();
    if b.iter().any(|&x| x != 0.0) {
        let largest = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        match bias_as_shift(w, b) {
            Some((delta, residual)) if residual <= 1e-5 * largest.max(1.0) => {
                beta = (&beta + &delta).into_shared();
                notes.push(format!(
                    "the output bias b (GPT-2 has none) moved into transformer.ln_f.bias as delta with W delta = b \
                     (|delta| = {:.4}, largest |W delta - b| = {residual:.1e})",
                    delta.iter().map(|x| x * x).sum::<f32>().sqrt()
                ));
            }
            _ => {
                return Err(format!(
                    "decoder.lm_head.bias: GPT-2's lm_head has no bias, and this one cannot be moved into ln_f.bias: \
                     that needs the output matrix's {} rows to be independent, at most d_model = {} of them. Train \
                     with a vocabulary no larger than --d-model (the char tokenizer has 70 ids) to export",
                    c.vocab_size, c.d_model
                ));
            }
        }
    }
    tensors.insert("transformer.ln_f.bias".into(), beta);
    tensors.insert("lm_head.weight".into(), w.clone());
    let tie = c.tie_embeddings && embed.scale == 1.0;
    if c.tie_embeddings && !tie {
        notes.push("tied, with the sqrt(d) input scale: exported untied (wte = sqrt(d) E, lm_head = E)".into());
    }
    let config = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.max_len,
        "n_embd": c.d_model,
        "n_layer": c.layers,
        "n_head": c.heads,
        "n_inner": c.d_ff,
        "activation_function": activation_name(c.activation),
        "resid_pdrop": number(c.dropout),
        "embd_pdrop": number(c.dropout),
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": number(c.layer_norm_eps),
        "initializer_range": 0.02,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "add_cross_attention": false,
        "tie_word_embeddings": tie,
        "bos_token_id": null,
        "eos_token_id": null,
        "pad_token_id": pad,
        "use_cache": true,
        "dtype": "float32",
    });
    Ok(HfModel { config, tensors, notes })
}

/// A `GPT2LMHeadModel`'s config as microlm's, with the position factor `position_scale`.
fn config_from(file: &JsonFile, position_scale: f32) -> Result<TransformerConfig, String> {
    let why = "it changes what the model computes, and microlm's decoder has no such setting";
    file.require("scale_attn_weights", json!(true), json!(true), why)?;
    file.require("scale_attn_by_inverse_layer_idx", json!(false), json!(false), why)?;
    file.require("add_cross_attention", json!(false), json!(false), why)?;
    let d_model = file.usize("n_embd")?;
    let activation = match file.str_or("activation_function", "gelu_new")? {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => {
            return Err(format!(
                "{}: activation_function = {other:?}: microlm has gelu, gelu_new (tanh GELU) and relu",
                file.name
            ))
        }
    };
    let config = TransformerConfig {
        vocab_size: file.usize("vocab_size")?,
        d_model,
        heads: file.usize("n_head")?,
        layers: file.usize("n_layer")?,
        d_ff: match file.get("n_inner") {
            None => 4 * d_model,
            Some(_) => file.usize("n_inner")?,
        },
        activation,
        max_len: file.usize("n_positions")?,
        dropout: file.f32_or("resid_pdrop", 0.1)?,
        norm: NormPlacement::Pre,
        tie_embeddings: file.bool_or("tie_word_embeddings", true)?,
        type_vocab_size: 0,
        scale_embeddings: false,
        token_init_std: None,
        embedding_norm: false,
        position_scale,
        layer_norm_eps: file.f32_or("layer_norm_epsilon", 1e-5)?,
    };
    config.validate().map_err(|e| format!("{}: {e}", file.name))?;
    Ok(config)
}

/// A `GPT2LMHeadModel` (its `config.json` and tensors) as microlm's causal LM. Every tensor must
/// find its place; old files' attention-mask buffers (`attn.bias`, `attn.masked_bias`) are skipped.
pub fn from_gpt2(file: &JsonFile, tensors: &BTreeMap<String, Tensor>) -> Result<(CausalLm, Params), String> {
    let (n, d) = (file.usize("n_positions")?, file.usize("n_embd")?);
    let wpe = take(tensors, "transformer.wpe.weight", &[n, d])?;
    let config = config_from(file, position_scale_of(&wpe, "transformer.wpe.weight")?)?;
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &config, &mut StdRng::seed_from_u64(0))?;
    let decoder = &model.decoder;
    let mut used = vec!["transformer.wpe.weight".to_string()];
    let (v, d, layers) = (config.vocab_size, config.d_model, &decoder.stack.layers);
    put(
        &mut params,
        decoder.stack.embed.token.weight,
        take(tensors, "transformer.wte.weight", &[v, d])?,
        "transformer.wte.weight",
    )?;
    used.push("transformer.wte.weight".into());
    for (i, layer) in layers.iter().enumerate() {
        read_links(&block_links(i, layer), tensors, &mut params, &mut used)?;
        let attn = &layer.self_attn;
        let (w_name, b_name) = (
            format!("transformer.h.{i}.attn.c_attn.weight"),
            format!("transformer.h.{i}.attn.c_attn.bias"),
        );
        let w = split(&transposed(&take(tensors, &w_name, &[d, 3 * d])?), 3); // W_Q, W_K, W_V [d, d]
        let b = split(&take(tensors, &b_name, &[3 * d])?, 3);
        for (k, proj) in [&attn.q_proj, &attn.k_proj, &attn.v_proj].into_iter().enumerate() {
            put(&mut params, proj.weight, w[k].clone(), &w_name)?;
            put(&mut params, proj.bias.expect("biased"), b[k].clone(), &b_name)?;
        }
        used.extend([w_name, b_name]);
    }
    let final_norm = decoder.stack.final_norm.as_ref().expect("pre-LN");
    let ln_f = [
        Link::same("transformer.ln_f.weight", final_norm.weight),
        Link::same("transformer.ln_f.bias", final_norm.bias),
    ];
    read_links(&ln_f, tensors, &mut params, &mut used)?;
    if !config.tie_embeddings {
        read_links(
            &[Link::same("lm_head.weight", decoder.lm_head.weight)],
            tensors,
            &mut params,
            &mut used,
        )?;
    }
    used.push("lm_head.weight".into()); // tied: the same matrix as wte
    let skipped = |name: &str| name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
    if let Some(extra) = tensors.keys().find(|k| !used.contains(k) && !skipped(k)) {
        return Err(format!(
            "model.safetensors: tensor '{extra}' has no place in microlm's causal LM"
        ));
    }
    Ok((model, params))
}

/// `transformers`' class name for this module's models.
pub const CLASS: &str = "GPT2LMHeadModel";

/// The `model_type` in `config.json`.
pub const MODEL_TYPE: &str = "gpt2";
