//! The Hugging Face export and import (`src/hf/`), without Python: the names, shapes and
//! values of the exported tensors against the classes' layouts worked out by hand here, the
//! `config.json` fields, round trips (microlm -> transformers -> microlm gives the same logits;
//! transformers -> microlm -> transformers the same tensors, bit for bit), the tokenizer files,
//! and every refusal naming its setting. `scripts/check_hf.py` runs the exported models in
//! PyTorch (NOTES.md §15).

mod common;

use common::{fresh_dir, tiny_corpus};
use microlm::checkpoint;
use microlm::hf::json::JsonFile;
use microlm::hf::tensors::{bias_as_shift, position_scale_of};
use microlm::hf::tokenizer_json::{byte_char, read_tokenizer, tokenizer_json};
use microlm::hf::{self, Model};
use microlm::nn::positional::sinusoidal_table;
use microlm::nn::{Activation, NormPlacement, TransformerConfig};
use microlm::objectives::{CausalLm, MaskedLm};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};
use microlm::{Params, Tensor};
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The letters a to s: 24 ids with the specials, fewer than d_model = 32.
fn tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefghijklmnopqrs"))
}

/// d 32, 2 heads, 2 layers, d_ff 48 (not 4d, so n_inner is tested), max_len 16, tanh GELU,
/// untied, positions times 0.5.
fn config() -> TransformerConfig {
    TransformerConfig {
        d_model: 32,
        heads: 2,
        layers: 2,
        d_ff: 48,
        max_len: 16,
        dropout: 0.0,
        tie_embeddings: false,
        activation: Activation::GeluTanh,
        position_scale: 0.5,
        ..TransformerConfig::toy(24)
    }
}

/// 400 letters a to s from a fixed generator: a corpus whose last 10% holds 16 tokens and more.
fn corpus() -> String {
    let mut rng = StdRng::seed_from_u64(3);
    (0..400)
        .map(|_| (b'a' + rand::Rng::random_range(&mut rng, 0..19u8)) as char)
        .collect()
}

/// Every parameter drawn from normal(0, 0.5): biases, LayerNorms and the output bias included,
/// so that no tensor is trivially zero or one.
fn randomize(params: &mut Params, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 0.5).unwrap();
    let ids: Vec<_> = params.ids().collect();
    for id in ids {
        let v = params.value(id).mapv(|_| normal.sample(&mut rng));
        *params.value_mut(id) = v.into_shared();
    }
}

fn save_clm(dir: &Path, config: &TransformerConfig, tokenizer: &Tokenizer) -> PathBuf {
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, config, &mut StdRng::seed_from_u64(0)).unwrap();
    randomize(&mut params, 1);
    let mut meta = model.metadata();
    meta.extend(tokenizer.to_metadata());
    let path = dir.join("clm.safetensors");
    checkpoint::save(&path, &params, &meta).unwrap();
    path
}

fn save_mlm(dir: &Path, config: &TransformerConfig, head_transform: bool) -> PathBuf {
    let mut params = Params::new();
    let model = MaskedLm::new(
        &mut params,
        config,
        &tokenizer(),
        head_transform,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    randomize(&mut params, 2);
    let mut meta = model.metadata();
    meta.extend(tokenizer().to_metadata());
    let path = dir.join("mlm.safetensors");
    checkpoint::save(&path, &params, &meta).unwrap();
    path
}

fn tensors(path: &Path) -> BTreeMap<String, Tensor> {
    checkpoint::read(path).unwrap().tensors
}

fn config_json(dir: &Path) -> Value {
    JsonFile::read(dir, "config.json").unwrap().value
}

/// The values of a 2-D tensor's columns lo..hi, transposed: rows of W from a [in, out] matrix.
fn columns_transposed(t: &Tensor, lo: usize, hi: usize) -> Vec<f32> {
    (lo..hi)
        .flat_map(|c| (0..t.shape()[0]).map(move |r| t[[r, c]]))
        .collect()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.iter().copied().collect()
}

/// Largest over positions of |z - z_ref| / |z_ref| (row norms).
fn max_relative_error(a: &Tensor, b: &Tensor) -> f32 {
    a.outer_iter()
        .zip(b.outer_iter())
        .map(|(x, y)| {
            let diff: f32 = x.iter().zip(y.iter()).map(|(p, q)| (p - q) * (p - q)).sum();
            let norm: f32 = y.iter().map(|q| q * q).sum();
            (diff / norm).sqrt()
        })
        .fold(0.0, f32::max)
}

fn logits(path: &Path) -> Tensor {
    let (model, params, tokenizer) = hf::load(path).unwrap();
    hf::reference_logits(&model, &params, &tokenizer, &corpus())
        .unwrap()
        .logits
}

#[test]
fn gpt2_export_names_shapes_config_and_values() {
    let dir = fresh_dir("hf-gpt2");
    let ckpt = save_clm(&dir, &config(), &tokenizer());
    let out = dir.join("hf");
    hf::export(&ckpt, &out).unwrap();
    let ours = tensors(&ckpt);
    let theirs = tensors(&out.join("model.safetensors"));

    // Names and shapes: GPT2LMHeadModel's, [in, out] for every Conv1D.
    let mut want: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (name, shape) in [
        ("transformer.wte.weight", vec![24, 32]),
        ("transformer.wpe.weight", vec![16, 32]),
        ("transformer.ln_f.weight", vec![32]),
        ("transformer.ln_f.bias", vec![32]),
        ("lm_head.weight", vec![24, 32]),
    ] {
        want.insert(name.into(), shape);
    }
    for i in 0..2 {
        for (name, shape) in [
            ("ln_1.weight", vec![32]),
            ("ln_1.bias", vec![32]),
            ("attn.c_attn.weight", vec![32, 96]),
            ("attn.c_attn.bias", vec![96]),
            ("attn.c_proj.weight", vec![32, 32]),
            ("attn.c_proj.bias", vec![32]),
            ("ln_2.weight", vec![32]),
            ("ln_2.bias", vec![32]),
            ("mlp.c_fc.weight", vec![32, 48]),
            ("mlp.c_fc.bias", vec![48]),
            ("mlp.c_proj.weight", vec![48, 32]),
            ("mlp.c_proj.bias", vec![32]),
        ] {
            want.insert(format!("transformer.h.{i}.{name}"), shape);
        }
    }
    let got: BTreeMap<String, Vec<usize>> = theirs.iter().map(|(k, v)| (k.clone(), v.shape().to_vec())).collect();
    assert_eq!(got, want);

    // config.json: the fields GPT2Config reads.
    let c = config_json(&out);
    for (key, value) in [
        ("model_type", Value::from("gpt2")),
        ("vocab_size", 24.into()),
        ("n_embd", 32.into()),
        ("n_layer", 2.into()),
        ("n_head", 2.into()),
        ("n_inner", 48.into()),
        ("n_positions", 16.into()),
        ("activation_function", "gelu_new".into()),
        ("layer_norm_epsilon", 1e-5.into()),
        ("tie_word_embeddings", false.into()),
        ("scale_attn_weights", true.into()),
        ("pad_token_id", 0.into()),
    ] {
        assert_eq!(c[key], value, "config.json {key}");
    }
    assert_eq!(c["architectures"][0], "GPT2LMHeadModel");

    // Values, worked out by hand: wte = sqrt(32) E; c_attn = [W_Q; W_K; W_V]^T; wpe = 0.5 PE.
    let e = &ours["decoder.token_embedding.weight"];
    let s = 32f32.sqrt();
    assert_eq!(
        flat(&theirs["transformer.wte.weight"]),
        e.iter().map(|x| x * s).collect::<Vec<_>>()
    );
    let c_attn = &theirs["transformer.h.1.attn.c_attn.weight"];
    for (k, proj) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
        let w = &ours[&format!("decoder.layers.1.self_attn.{proj}.weight")];
        assert_eq!(columns_transposed(c_attn, 32 * k, 32 * (k + 1)), flat(w), "{proj}");
        let b = &theirs["transformer.h.1.attn.c_attn.bias"];
        assert_eq!(
            b.iter().skip(32 * k).take(32).copied().collect::<Vec<_>>(),
            flat(&ours[&format!("decoder.layers.1.self_attn.{proj}.bias")])
        );
    }
    let c_fc = &theirs["transformer.h.0.mlp.c_fc.weight"];
    assert_eq!(
        columns_transposed(c_fc, 0, 48),
        flat(&ours["decoder.layers.0.feed_forward.linear1.weight"])
    );
    let wpe = &theirs["transformer.wpe.weight"];
    for (pos, j) in [(0, 0), (0, 1), (3, 4), (15, 31)] {
        let angle = pos as f64 / 10000f64.powf((j - j % 2) as f64 / 32.0);
        let pe = if j % 2 == 0 { angle.sin() } else { angle.cos() };
        assert!((wpe[[pos, j]] as f64 - 0.5 * pe).abs() < 1e-6, "wpe[{pos}, {j}]");
    }
    // The output bias lives on in ln_f.bias: W (ln_f.bias - beta) = b.
    let (w, b) = (&ours["decoder.lm_head.weight"], &ours["decoder.lm_head.bias"]);
    let delta: Vec<f32> = theirs["transformer.ln_f.bias"]
        .iter()
        .zip(ours["decoder.final_norm.bias"].iter())
        .map(|(x, y)| x - y)
        .collect();
    for v in 0..24 {
        let wd: f32 = (0..32).map(|j| w[[v, j]] * delta[j]).sum();
        assert!((wd - b[[v]]).abs() < 1e-4, "row {v}: W delta = {wd}, b = {}", b[[v]]);
    }
    assert_eq!(flat(&theirs["lm_head.weight"]), flat(w));
    // transformers refuses a safetensors file without {"format": "pt"}.
    let raw = std::fs::read(out.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&raw[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["format"], "pt");
}

#[test]
fn megatron_export_names_shapes_config_and_values() {
    let dir = fresh_dir("hf-megatron");
    let tied = TransformerConfig {
        tie_embeddings: true,
        activation: Activation::Gelu,
        ..config()
    };
    let ckpt = save_mlm(&dir, &tied, true);
    let out = dir.join("hf");
    hf::export(&ckpt, &out).unwrap();
    let ours = tensors(&ckpt);
    let theirs = tensors(&out.join("model.safetensors"));
    let l = "bert.encoder.layer.1";
    for (name, shape) in [
        ("bert.embeddings.word_embeddings.weight", vec![24, 32]),
        ("bert.embeddings.position_embeddings.weight", vec![16, 32]),
        ("bert.embeddings.token_type_embeddings.weight", vec![1, 32]),
        (&format!("{l}.attention.ln.weight"), vec![32]),
        (&format!("{l}.attention.self.query.weight"), vec![32, 32]),
        (&format!("{l}.attention.output.dense.bias"), vec![32]),
        (&format!("{l}.ln.bias"), vec![32]),
        (&format!("{l}.intermediate.dense.weight"), vec![48, 32]),
        (&format!("{l}.output.dense.weight"), vec![32, 48]),
        ("bert.encoder.ln.weight", vec![32]),
        ("cls.predictions.transform.dense.weight", vec![32, 32]),
        ("cls.predictions.transform.LayerNorm.bias", vec![32]),
        ("cls.predictions.decoder.weight", vec![24, 32]),
        ("cls.predictions.decoder.bias", vec![24]),
        ("cls.predictions.bias", vec![24]),
    ] {
        assert_eq!(theirs[name].shape(), shape.as_slice(), "{name}");
    }
    assert_eq!(
        theirs.len(),
        3 + 2 * 16 + 2 + 4 + 3,
        "embeddings, 16 per layer, final LN, transform, output"
    );
    let c = config_json(&out);
    for (key, value) in [
        ("model_type", Value::from("megatron-bert")),
        ("hidden_size", 32.into()),
        ("num_hidden_layers", 2.into()),
        ("num_attention_heads", 2.into()),
        ("intermediate_size", 48.into()),
        ("max_position_embeddings", 16.into()),
        ("hidden_act", "gelu".into()),
        ("type_vocab_size", 1.into()),
        ("layer_norm_eps", 1e-5.into()),
        ("tie_word_embeddings", false.into()), // tied with the sqrt(d) scale: two matrices
    ] {
        assert_eq!(c[key], value, "config.json {key}");
    }
    // Tied with the scale: the input table is sqrt(d) E, the output E itself.
    let e = &ours["encoder.token_embedding.weight"];
    let s = 32f32.sqrt();
    assert_eq!(
        flat(&theirs["bert.embeddings.word_embeddings.weight"]),
        e.iter().map(|x| x * s).collect::<Vec<_>>()
    );
    assert_eq!(flat(&theirs["cls.predictions.decoder.weight"]), flat(e));
    assert!(theirs["bert.embeddings.token_type_embeddings.weight"]
        .iter()
        .all(|&x| x == 0.0));
    let b = flat(&ours["mlm_head.output.bias"]);
    assert_eq!(flat(&theirs["cls.predictions.decoder.bias"]), b);
    assert_eq!(flat(&theirs["cls.predictions.bias"]), b);
    assert_eq!(
        flat(&theirs[&format!("{l}.attention.self.key.weight")]),
        flat(&ours["encoder.layers.1.self_attn.k_proj.weight"])
    );
}

/// microlm -> transformers -> microlm gives the same logits; transformers -> microlm ->
/// transformers the same tensors.
fn round_trip(ckpt: &Path, dir: &Path) {
    let first = dir.join("hf1");
    hf::export(ckpt, &first).unwrap();
    let back = dir.join("back.safetensors");
    hf::import(&first, &back).unwrap();
    let err = max_relative_error(&logits(&back), &logits(ckpt));
    assert!(err < 1e-5, "logits after the round trip differ by {err:e}");
    let second = dir.join("hf2");
    hf::export(&back, &second).unwrap();
    let (a, b) = (
        tensors(&first.join("model.safetensors")),
        tensors(&second.join("model.safetensors")),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert_eq!(flat(t), flat(&b[name]), "tensor {name} changed on the way back");
    }
    assert_eq!(config_json(&first), config_json(&second));
}

#[test]
fn round_trips_keep_the_logits_and_the_tensors() {
    let dir = fresh_dir("hf-round-trip");
    round_trip(&save_clm(&dir, &config(), &tokenizer()), &dir.join("untied"));
    let tied = TransformerConfig {
        tie_embeddings: true,
        scale_embeddings: false,
        ..config()
    };
    round_trip(&save_clm(&dir, &tied, &tokenizer()), &dir.join("tied"));
    let mlm = TransformerConfig {
        activation: Activation::Gelu,
        ..config()
    };
    round_trip(&save_mlm(&dir, &mlm, true), &dir);
}

#[test]
fn neither_way_writes_over_saved_work() {
    let dir = fresh_dir("hf-no-overwrite");
    let ckpt = save_clm(&dir, &config(), &tokenizer());
    let out = dir.join("hf");
    hf::export(&ckpt, &out).unwrap();
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let e = hf::export(&ckpt, &out).unwrap_err();
    assert!(e.contains("already holds a model"), "{e}");
    let e = hf::import(&out, &ckpt).unwrap_err();
    assert!(e.contains("exists") && e.contains("never writes over"), "{e}");
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), before);
    // A checkpoint in a folder that does not exist yet: the folder is made.
    hf::import(&out, &dir.join("new/back.safetensors")).unwrap();
}

#[test]
fn tokenizer_json_reads_back_and_spells_bytes_as_gpt2_does() {
    // GPT-2's byte-to-unicode table: space is U+0120 "Ġ", newline U+010A "Ċ", letters themselves.
    assert_eq!(
        (byte_char(b' '), byte_char(b'\n'), byte_char(b'a')),
        ('\u{120}', '\u{10a}', 'a')
    );
    let dir = fresh_dir("hf-tokenizer");
    let bpe = Tokenizer::Bpe(BpeTokenizer::train(tiny_corpus(), 256 + 30 + 5));
    for tokenizer in [
        tokenizer(),
        Tokenizer::Char(CharTokenizer::from_text(tiny_corpus())),
        bpe,
    ] {
        let doc = tokenizer_json(&tokenizer).unwrap();
        let vocab = doc["model"]["vocab"].as_object().unwrap();
        assert_eq!(vocab.len(), tokenizer.vocab_size());
        assert_eq!(vocab["[MASK]"], tokenizer.special("[MASK]"));
        microlm::hf::json::write(&dir, "tokenizer.json", &doc).unwrap();
        assert_eq!(
            read_tokenizer(&JsonFile::read(&dir, "tokenizer.json").unwrap()).unwrap(),
            tokenizer
        );
    }
    // A vocabulary microlm did not write is refused, naming where it differs.
    let mut doc = tokenizer_json(&tokenizer()).unwrap();
    doc["model"]["vocab"]["b"] = 99.into();
    microlm::hf::json::write(&dir, "tokenizer.json", &doc).unwrap();
    let e = read_tokenizer(&JsonFile::read(&dir, "tokenizer.json").unwrap()).unwrap_err();
    assert!(e.contains("tokenizer.json") && e.contains("model.vocab"), "{e}");
}

fn export_error(ckpt: &Path, dir: &Path) -> String {
    match hf::export(ckpt, &dir.join("refused")) {
        Ok(_) => panic!("the export of {} should be refused", ckpt.display()),
        Err(e) => e,
    }
}

#[test]
fn settings_without_a_counterpart_are_refused_naming_the_setting_and_flag() {
    let dir = fresh_dir("hf-refusals");
    let gelu = TransformerConfig {
        activation: Activation::Gelu,
        ..config()
    };
    let e = export_error(&save_mlm(&dir, &gelu, false), &dir);
    assert!(
        e.contains("mlm.head_transform = false") && e.contains("--head-transform true"),
        "{e}"
    );
    let relu = TransformerConfig {
        activation: Activation::Relu,
        ..config()
    };
    let e = export_error(&save_mlm(&dir, &relu, true), &dir);
    assert!(
        e.contains("config.activation = relu") && e.contains("--activation gelu"),
        "{e}"
    );
    let post = TransformerConfig {
        norm: NormPlacement::Post,
        ..config()
    };
    let e = export_error(&save_clm(&dir, &post, &tokenizer()), &dir);
    assert!(e.contains("config.norm = post"), "{e}");
    let normed = TransformerConfig {
        embedding_norm: true,
        ..config()
    };
    let e = export_error(&save_clm(&dir, &normed, &tokenizer()), &dir);
    assert!(e.contains("--embedding-norm false"), "{e}");
    // 24 ids against d_model 8: the output bias has no place in ln_f.bias.
    let narrow = TransformerConfig { d_model: 8, ..config() };
    let e = export_error(&save_clm(&dir, &narrow, &tokenizer()), &dir);
    assert!(e.contains("decoder.lm_head.bias") && e.contains("--d-model"), "{e}");
    assert!(!dir.join("refused").exists(), "a refused export writes nothing");
    // Another objective's checkpoint.
    let ckpt = save_clm(&dir, &config(), &tokenizer());
    let mut c = checkpoint::read(&ckpt).unwrap();
    c.metadata.insert("denoise.noise".into(), "bart".into());
    checkpoint::save_named(&ckpt, c.tensors.iter().map(|(k, v)| (k.as_str(), v)), &c.metadata).unwrap();
    assert!(export_error(&ckpt, &dir).contains("trained as denoise"));
}

/// Export a model, let `edit` change the directory, and return the import's error.
fn import_error(mlm: bool, edit: impl FnOnce(&mut Value, &mut BTreeMap<String, Tensor>)) -> String {
    let dir = fresh_dir(if mlm { "hf-import-mlm" } else { "hf-import-clm" });
    let ckpt = match mlm {
        true => save_mlm(
            &dir,
            &TransformerConfig {
                activation: Activation::Gelu,
                ..config()
            },
            true,
        ),
        false => save_clm(&dir, &config(), &tokenizer()),
    };
    let out = dir.join("hf");
    hf::export(&ckpt, &out).unwrap();
    let (mut c, mut t) = (config_json(&out), tensors(&out.join("model.safetensors")));
    edit(&mut c, &mut t);
    microlm::hf::json::write(&out, "config.json", &c).unwrap();
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    checkpoint::save_named(
        &out.join("model.safetensors"),
        t.iter().map(|(k, v)| (k.as_str(), v)),
        &meta,
    )
    .unwrap();
    hf::import(&out, &dir.join("back.safetensors")).unwrap_err()
}

#[test]
fn imports_microlm_cannot_represent_are_refused_naming_the_field() {
    let e = import_error(false, |c, _| c["scale_attn_by_inverse_layer_idx"] = true.into());
    assert!(e.contains("scale_attn_by_inverse_layer_idx = true"), "{e}");
    let e = import_error(false, |c, _| c["activation_function"] = "silu".into());
    assert!(e.contains("activation_function = \"silu\""), "{e}");
    let e = import_error(false, |_, t| {
        let mut wpe = t["transformer.wpe.weight"].to_owned();
        wpe[[5, 7]] += 0.01; // a trained position table
        t.insert("transformer.wpe.weight".into(), wpe.into_shared());
    });
    assert!(
        e.contains("transformer.wpe.weight") && e.contains("position 5, column 7"),
        "{e}"
    );
    let e = import_error(false, |_, t| {
        t.insert("transformer.h.0.attn.extra".into(), Tensor::zeros(IxDyn(&[2])));
    });
    assert!(e.contains("'transformer.h.0.attn.extra' has no place"), "{e}");
    let e = import_error(false, |_, t| {
        t.remove("transformer.h.1.mlp.c_fc.bias");
    });
    assert!(e.contains("no tensor 'transformer.h.1.mlp.c_fc.bias'"), "{e}");
    let e = import_error(false, |c, _| c["model_type"] = "llama".into());
    assert!(e.contains("model_type = \"llama\""), "{e}");
    let e = import_error(true, |c, _| c["hidden_act"] = "relu".into());
    assert!(e.contains("hidden_act = \"relu\""), "{e}");
    let e = import_error(true, |c, _| c["type_vocab_size"] = 2.into());
    assert!(e.contains("type_vocab_size = 2"), "{e}");
}

#[test]
fn a_trained_type_zero_vector_is_folded_into_the_token_table() {
    // transformers trains token_type_embeddings[0] along with the rest; it is added to every
    // token, so the import folds it into E and the logits stay the same.
    let dir = fresh_dir("hf-segment");
    let ckpt = save_mlm(
        &dir,
        &TransformerConfig {
            activation: Activation::Gelu,
            ..config()
        },
        true,
    );
    let out = dir.join("hf");
    hf::export(&ckpt, &out).unwrap();
    let mut t = tensors(&out.join("model.safetensors"));
    let segment: Vec<f32> = (0..32).map(|j| 0.01 * j as f32).collect();
    let segment = Tensor::from_shape_vec(IxDyn(&[1, 32]), segment.clone()).unwrap();
    let words = t["bert.embeddings.word_embeddings.weight"].clone();
    // The same function: subtract the vector from the word table, put it in the type table.
    t.insert(
        "bert.embeddings.word_embeddings.weight".into(),
        (&words - &segment).into_shared(),
    );
    t.insert("bert.embeddings.token_type_embeddings.weight".into(), segment);
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    checkpoint::save_named(
        &out.join("model.safetensors"),
        t.iter().map(|(k, v)| (k.as_str(), v)),
        &meta,
    )
    .unwrap();
    let back = dir.join("back.safetensors");
    hf::import(&out, &back).unwrap();
    let err = max_relative_error(&logits(&back), &logits(&ckpt));
    assert!(err < 1e-5, "{err:e}");
    let (model, _, _) = hf::load(&back).unwrap();
    assert!(matches!(model, Model::Masked(_)));
}

#[test]
fn the_output_bias_becomes_a_shift_and_positions_give_back_their_factor() {
    // W = [[1, 0, 1], [0, 2, 0]], b = [2, 4]: delta must satisfy delta_0 + delta_2 = 2 and
    // 2 delta_1 = 4; the smallest such delta is [1, 2, 1].
    let w = Tensor::from_shape_vec(IxDyn(&[2, 3]), vec![1., 0., 1., 0., 2., 0.]).unwrap();
    let b = Tensor::from_shape_vec(IxDyn(&[2]), vec![2., 4.]).unwrap();
    let (delta, residual) = bias_as_shift(&w, &b).unwrap();
    assert_eq!(flat(&delta), vec![1.0, 2.0, 1.0]);
    assert!(residual < 1e-6);
    // Two equal rows: W W^T is singular, and b = [1, 2] is out of reach.
    let w = Tensor::from_shape_vec(IxDyn(&[2, 2]), vec![1., 1., 1., 1.]).unwrap();
    let b = Tensor::from_shape_vec(IxDyn(&[2]), vec![1., 2.]).unwrap();
    assert!(bias_as_shift(&w, &b).is_none());
    let table = (sinusoidal_table(5, 4) * 0.5f32).into_shared();
    assert_eq!(position_scale_of(&table, "wpe").unwrap(), 0.5);
}
