//! Checkpoints: round trip, strict loading, hostile files, atomic saves.

mod common;

use common::{fresh_dir, no_eval, rewrite_checkpoint, short_run_config, tiny_encoder_config};
use microlm::checkpoint::{self, Checkpoint};
use microlm::nn::{Encoder, TransformerConfig};
use microlm::objectives::{CausalLm, MaskedLm};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::{Params, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;

fn tiny_config() -> TransformerConfig {
    TransformerConfig {
        layers: 2,
        dropout: 0.1,
        ..tiny_encoder_config(13)
    }
}

fn model(seed: u64, config: &TransformerConfig) -> Params {
    let mut params = Params::new();
    Encoder::new(&mut params, "encoder", config, &mut StdRng::seed_from_u64(seed)).unwrap();
    params
}

fn load_err(path: &Path, params: &mut Params) -> String {
    checkpoint::load_into(path, params).unwrap_err().to_string()
}

#[test]
fn save_then_load_restores_every_parameter_and_the_config() {
    let dir = fresh_dir("roundtrip");
    let path = dir.join("model.safetensors");
    let config = tiny_config();
    let saved = model(1, &config);
    checkpoint::save(&path, &saved, &config.to_metadata()).unwrap();

    let metadata = checkpoint::read(&path).unwrap().metadata;
    let config_back = TransformerConfig::from_metadata(&metadata).unwrap();
    assert_eq!(config_back, config);
    let mut loaded = model(2, &config_back); // different random init
    assert_ne!(
        loaded.value(loaded.ids().next().unwrap()),
        saved.value(saved.ids().next().unwrap())
    );
    checkpoint::load_into(&path, &mut loaded).unwrap();
    for id in saved.ids() {
        assert_eq!(saved.name(id), loaded.name(id));
        assert_eq!(saved.value(id), loaded.value(id), "{}", saved.name(id));
    }
    // Names are the documented ones.
    let names: Vec<&str> = saved.ids().map(|id| saved.name(id)).collect();
    assert!(names.contains(&"encoder.layers.0.self_attn.q_proj.weight"));
    assert!(names.contains(&"encoder.layers.1.feed_forward.linear2.bias"));
    assert!(names.contains(&"encoder.final_norm.weight"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn loading_checks_names_and_shapes_and_names_the_tensor() {
    let dir = fresh_dir("strict");
    let path = dir.join("model.safetensors");
    let config = tiny_config();
    checkpoint::save(&path, &model(1, &config), &config.to_metadata()).unwrap();

    // A model with d_ff 32 expects other shapes.
    let mut wider = model(
        1,
        &TransformerConfig {
            d_ff: 32,
            ..config.clone()
        },
    );
    let before = wider.clone();
    let e = load_err(&path, &mut wider);
    assert!(
        e.contains("encoder.layers.0.feed_forward.linear1.weight") && e.contains("[16, 8]") && e.contains("[32, 8]"),
        "{e}"
    );
    assert_eq!(
        wider.value(wider.ids().next().unwrap()),
        before.value(before.ids().next().unwrap()),
        "unchanged on error"
    );

    // A model with three layers finds tensors missing.
    let mut deeper = model(
        1,
        &TransformerConfig {
            layers: 3,
            ..config.clone()
        },
    );
    let e = load_err(&path, &mut deeper);
    assert!(e.contains("'encoder.layers.2.") && e.contains("missing"), "{e}");

    // A model with one layer finds tensors it does not have.
    let mut shallower = model(
        1,
        &TransformerConfig {
            layers: 1,
            ..config.clone()
        },
    );
    let e = load_err(&path, &mut shallower);
    assert!(e.contains("'encoder.layers.1.") && e.contains("not a parameter"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncated_corrupt_and_hostile_files_are_errors_not_panics() {
    let dir = fresh_dir("hostile");
    let good = dir.join("good.safetensors");
    let config = tiny_config();
    checkpoint::save(&good, &model(1, &config), &config.to_metadata()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("shorter than the length prefix", bytes[..5].to_vec()),
        ("truncated header", bytes[..8 + header_len / 2].to_vec()),
        ("truncated data", bytes[..bytes.len() - 7].to_vec()),
        ("garbage", b"this is not a checkpoint at all, just some text".to_vec()),
    ];
    // A header length of 2^64 - 1.
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("absurd header length", huge));
    // Header JSON replaced by something that is not JSON, same length.
    let mut not_json = bytes.clone();
    not_json[8..8 + header_len].fill(b'!');
    cases.push(("header not JSON", not_json));
    // A tensor whose byte range points past the end of the file.
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let data_len = bytes.len() - 8 - header_len;
    let far = header.replacen(&format!("{data_len}]"), &format!("{}]", data_len * 1000), 1);
    let mut past_end = (far.len() as u64).to_le_bytes().to_vec();
    past_end.extend(far.as_bytes());
    past_end.extend(&bytes[8 + header_len..]);
    cases.push(("offsets past the end", past_end));

    for (what, data) in cases {
        let path = dir.join("bad.safetensors");
        std::fs::write(&path, &data).unwrap();
        let mut params = model(1, &config);
        let e = checkpoint::load_into(&path, &mut params);
        assert!(e.is_err(), "{what}: loaded without error");
        assert!(
            e.unwrap_err().to_string().contains("bad.safetensors"),
            "{what}: error does not name the file"
        );
    }
    let e = load_err(&dir.join("missing.safetensors"), &mut model(1, &config));
    assert!(e.contains("cannot read"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_tensor_of_another_dtype_is_refused_by_name() {
    let dir = fresh_dir("dtype");
    let path = dir.join("f64.safetensors");
    let data = vec![0u8; 8 * 4];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![4], &data).unwrap();
    std::fs::write(&path, safetensors::serialize([("w", view)], None).unwrap()).unwrap();
    let e = checkpoint::read(&path).unwrap_err().to_string();
    assert!(e.contains("'w'") && e.contains("F64"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint_intact() {
    let dir = fresh_dir("atomic");
    let path = dir.join("model.safetensors");
    let mut params = Params::new();
    let w = params.add("w", Tensor::from_elem(vec![3], 1.0));
    checkpoint::save(&path, &params, &Default::default()).unwrap();
    // Block the temporary file's name with a directory, so the next save cannot write it.
    let tmp = dir.join(format!(".model.safetensors.tmp{}", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    *params.value_mut(w) = Tensor::from_elem(vec![3], 2.0);
    let e = checkpoint::save(&path, &params, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("cannot write"), "{e}");
    let Checkpoint { tensors, .. } = checkpoint::read(&path).unwrap();
    assert_eq!(
        tensors["w"].as_slice().unwrap(),
        &[1.0, 1.0, 1.0],
        "the old checkpoint survived"
    );
    // With the obstacle gone, the save goes through and leaves no temporary file behind.
    std::fs::remove_dir(&tmp).unwrap();
    checkpoint::save(&path, &params, &Default::default()).unwrap();
    assert_eq!(
        checkpoint::read(&path).unwrap().tensors["w"].as_slice().unwrap(),
        &[2.0, 2.0, 2.0]
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_metadata_errors_name_the_field() {
    let mut m = tiny_config().to_metadata();
    m.remove("config.heads");
    assert!(TransformerConfig::from_metadata(&m)
        .unwrap_err()
        .contains("config.heads"));
    let mut m = tiny_config().to_metadata();
    m.insert("config.norm".into(), "sideways".into());
    assert!(TransformerConfig::from_metadata(&m)
        .unwrap_err()
        .contains("config.norm"));
    let mut m = tiny_config().to_metadata();
    m.insert("config.d_model".into(), "9".into()); // not divisible by 2 heads
    assert!(TransformerConfig::from_metadata(&m).unwrap_err().contains("d_model"));
}

/// 8 characters + 5 specials = 13 ids, the vocabulary of `tiny_config`.
fn tiny_tokenizer() -> Tokenizer {
    Tokenizer::Char(CharTokenizer::from_text("abcdefgh"))
}

/// Save a freshly built MaskedLm of `tiny_config` with its metadata, as an inference checkpoint.
fn save_masked_lm(path: &Path) {
    let mut params = Params::new();
    let model = MaskedLm::new(
        &mut params,
        &tiny_config(),
        &tiny_tokenizer(),
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let mut meta = model.metadata();
    meta.extend(tiny_tokenizer().to_metadata());
    checkpoint::save(path, &params, &meta).unwrap();
}

/// Set the first element of tensor `name` to `x`.
fn poison(ckpt: &mut Checkpoint, name: &str, x: f32) {
    let t = ckpt.tensors.get_mut(name).unwrap();
    *t.iter_mut().next().unwrap() = x;
}

#[test]
fn config_fields_beyond_their_maximum_are_refused_naming_the_field() {
    for (field, value) in [
        ("layers", "1000000000"),
        ("max_len", "1000000000000"),
        ("vocab_size", "1000000000"),
        ("d_model", "1048576"),
        ("d_ff", "1000000000"),
        ("heads", "1048576"),
        ("type_vocab_size", "1000000000"),
    ] {
        let mut m = tiny_config().to_metadata();
        m.insert(format!("config.{field}"), value.into());
        let e = TransformerConfig::from_metadata(&m).unwrap_err();
        assert!(e.contains(field) && e.contains("maximum"), "{field}: {e}");
    }
    // Each field within its bound, but 2^20 x 2^14 embedding entries (64 GiB) in all.
    let mut m = tiny_config().to_metadata();
    m.insert("config.vocab_size".into(), (1usize << 20).to_string());
    m.insert("config.d_model".into(), (1usize << 14).to_string());
    let e = TransformerConfig::from_metadata(&m).unwrap_err();
    assert!(e.contains("parameters"), "{e}");
}

#[test]
fn load_model_refuses_a_nan_or_infinite_model_tensor_naming_it() {
    let dir = fresh_dir("nan_model");
    let path = dir.join("model.safetensors");
    for (name, x) in [
        ("encoder.layers.0.self_attn.q_proj.weight", f32::NAN),
        ("encoder.token_embedding.weight", f32::INFINITY),
    ] {
        save_masked_lm(&path);
        rewrite_checkpoint(&path, |c| poison(c, name, x));
        let e = MaskedLm::load(&path).expect_err("a non-finite tensor must be refused");
        assert!(e.contains(name) && e.contains(&x.to_string()), "{e}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_model_refuses_a_config_that_disagrees_with_the_tensors_naming_both() {
    let dir = fresh_dir("config_vs_tensors");
    let path = dir.join("model.safetensors");
    save_masked_lm(&path);
    rewrite_checkpoint(&path, |c| {
        c.metadata.insert("config.d_model".into(), "16".into());
    });
    let e = MaskedLm::load(&path).err().unwrap();
    assert!(
        e.contains("config.d_model = 16") && e.contains("'encoder.token_embedding.weight' has shape [13, 8]"),
        "{e}"
    );
    save_masked_lm(&path);
    rewrite_checkpoint(&path, |c| {
        c.metadata.insert("config.layers".into(), "1".into());
    });
    let e = MaskedLm::load(&path).err().unwrap();
    assert!(
        e.contains("config.layers = 1") && e.contains("'encoder.layers.{i}.*' hold layers 0, 1"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_tokenizer_with_more_ids_than_the_vocabulary_is_refused_on_load() {
    let dir = fresh_dir("tokenizer_vocab");
    let path = dir.join("model.safetensors");
    let mut params = Params::new();
    let model = CausalLm::new(&mut params, &tiny_config(), &mut StdRng::seed_from_u64(0)).unwrap();
    let mut meta = model.metadata();
    // 12 characters + 5 specials = 17 ids, but config.vocab_size is 13.
    meta.extend(Tokenizer::Char(CharTokenizer::from_text("abcdefghijkl")).to_metadata());
    checkpoint::save(&path, &params, &meta).unwrap();
    let e = CausalLm::load(&path).expect_err("17 ids for 13 embeddings must be refused");
    assert!(e.contains("17 ids") && e.contains("config.vocab_size is 13"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_model_refuses_a_tensor_that_is_neither_parameter_nor_optimizer_state() {
    let dir = fresh_dir("extra_tensor");
    let path = dir.join("model.safetensors");
    save_masked_lm(&path);
    // Optimizer state is allowed (and skipped).
    rewrite_checkpoint(&path, |c| {
        let t = c.tensors["encoder.final_norm.weight"].clone();
        c.tensors.insert("adamw.m.encoder.final_norm.weight".into(), t);
    });
    MaskedLm::load(&path).unwrap();
    rewrite_checkpoint(&path, |c| {
        c.tensors
            .insert("evil.extra.weight".into(), Tensor::from_elem(vec![2], 1.0));
    });
    let e = MaskedLm::load(&path).expect_err("an unknown tensor must be refused");
    assert!(e.contains("'evil.extra.weight'"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_save_removes_stale_temporaries_of_the_same_target_only() {
    let dir = fresh_dir("stale_tmp");
    let path = dir.join("model.safetensors");
    // What killed saves left behind: two of this target (other pids), one of another target.
    let stale = [".model.safetensors.tmp4242", ".model.safetensors.tmp7"];
    for name in stale {
        std::fs::write(dir.join(name), b"half a file").unwrap();
    }
    let other = dir.join(".other.safetensors.tmp4242");
    std::fs::write(&other, b"not ours").unwrap();
    let mut params = Params::new();
    params.add("w", Tensor::from_elem(vec![3], 1.0));
    checkpoint::save(&path, &params, &Default::default()).unwrap();
    for name in stale {
        assert!(!dir.join(name).exists(), "{name} was left behind");
    }
    assert!(other.exists(), "another target's temporary file must stay");
    assert!(path.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two identical seeded training runs (a tiny masked LM, three AdamW updates, the trainer's own
/// saves with the run's metadata) write files that are equal byte for byte, as `sha256sum`
/// would see them. The header once followed a `HashMap`'s order, different in every map.
#[test]
fn two_identical_runs_write_byte_identical_checkpoints() {
    use microlm::data::Batch;
    use microlm::optim::{AdamW, Optimizer};
    use microlm::trainer::{train, TrainConfig};
    let run = |name: &str| -> Vec<u8> {
        let dir = fresh_dir(name);
        let tok = tiny_tokenizer();
        let mut params = Params::new();
        let model = MaskedLm::new(&mut params, &tiny_config(), &tok, true, &mut StdRng::seed_from_u64(3)).unwrap();
        let mut optimizer = Optimizer::AdamW(AdamW::new(&params, 1e-3));
        let mut meta = model.metadata();
        meta.extend(tok.to_metadata());
        let config = TrainConfig {
            seed: 5,
            ..short_run_config(3, dir.clone(), 32)
        };
        let x = Batch::new((0..32).map(|i| 5 + i % 8).collect(), 2, 16);
        train(
            &config,
            &mut params,
            &mut optimizer,
            &meta,
            |tape, p, rng| model.loss(tape, p, &x, rng),
            no_eval,
        )
        .unwrap();
        let bytes = std::fs::read(config.checkpoint_path()).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        bytes
    };
    let (a, b) = (run("bytes-a"), run("bytes-b"));
    assert!(a.len() > 1000);
    let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
    assert_eq!(first_difference, None, "the files differ at byte {first_difference:?}");
    assert_eq!(a.len(), b.len());
}

/// The header lists `__metadata__` first with its keys in sorted order, then the tensors by
/// name; metadata values with quotes, backslashes, newlines and other control characters
/// survive the round trip through the `safetensors` crate's reader.
#[test]
fn the_header_is_in_sorted_order_and_escapes_every_metadata_string() {
    let dir = fresh_dir("header-order");
    let path = dir.join("model.safetensors");
    let mut params = Params::new();
    for name in ["zeta", "alpha", "mid.weight"] {
        params.add(name.to_string(), Tensor::zeros(ndarray::IxDyn(&[2, 3])));
    }
    let mut meta: std::collections::BTreeMap<String, String> = (0..20)
        .map(|i| (format!("key{:02}", 19 - i), format!("value {i}")))
        .collect();
    let awkward = "a \"quoted\" \\ back\nslash\ttab \u{1} \u{1f} é 字";
    meta.insert("tokenizer.chars".into(), awkward.into());
    checkpoint::save(&path, &params, &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "the header is padded to 8 bytes");
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at = |key: &str| {
        header
            .find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("{key} in {header}"))
    };
    let mut keys: Vec<String> = meta.keys().cloned().collect();
    keys.sort();
    let order: Vec<usize> = std::iter::once("__metadata__".to_string())
        .chain(keys)
        .chain(["alpha", "mid.weight", "zeta"].map(String::from))
        .map(|k| at(&k))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{header}");
    let back = checkpoint::read(&path).unwrap();
    assert_eq!(back.metadata, meta);
    assert_eq!(back.tensors.len(), 3);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `check_compatible`: a checkpoint is checked against what a program will feed it before any
/// work, and each mismatch names the flag, the file and both sides: another tokenizer (a BPE
/// encoder fed character ids once scored the majority class in silence), a vocabulary of
/// another size (once a panic in the embedding after three finished runs), fewer positions than
/// the program feeds (once "positions 0..128 exceed max_len 32"), another objective.
#[test]
fn a_checkpoint_is_checked_against_what_the_program_feeds_it() {
    use microlm::checkpoint::{check_compatible, objective_of, Feeds};
    use microlm::tokenizer::BpeTokenizer;
    let dir = fresh_dir("compatible");
    let path = dir.join("mlm.safetensors");
    save_masked_lm(&path); // char tokenizer of 13 ids, max_len 16, a masked LM
    let ours = tiny_tokenizer();
    fn feeds<'a>(tokenizer: &'a Tokenizer, positions: usize, objectives: &'a [&'a str]) -> Feeds<'a> {
        Feeds {
            flag: "init",
            tokenizer: Some((tokenizer, "--corpus text.txt".to_string())),
            positions: Some((positions, "--seq-len".to_string())),
            objectives,
        }
    }
    let meta = check_compatible(&path, &feeds(&ours, 16, &["mlm"])).unwrap();
    assert_eq!(objective_of(&meta), "mlm");
    // Each objective's own metadata, as its example writes it, names it.
    use microlm::data::pairs::PairTask;
    use microlm::objectives::Bert;
    let rng = &mut StdRng::seed_from_u64(0);
    let pairs = TransformerConfig {
        type_vocab_size: 2,
        ..tiny_config()
    };
    for task in [PairTask::Nsp, PairTask::Sop] {
        let bert = Bert::new(&mut Params::new(), &pairs, &ours, true, task, true, rng).unwrap();
        assert_eq!(objective_of(&bert.metadata()), "bert", "{task:?}");
    }
    let clm = CausalLm::new(&mut Params::new(), &tiny_config(), rng).unwrap();
    assert_eq!(objective_of(&clm.metadata()), "clm");

    let bpe = Tokenizer::Bpe(BpeTokenizer::train("abcdefgh abcdefgh", 256 + 5 + 3));
    let e = check_compatible(&path, &feeds(&bpe, 16, &[])).unwrap_err();
    assert!(e.starts_with(&format!("--init {}", path.display())), "{e}");
    assert!(
        e.contains("a char tokenizer of 13 ids") && e.contains("a bpe tokenizer of 264 ids"),
        "{e}"
    );

    let bigger = Tokenizer::Char(CharTokenizer::from_text("abcdefghi"));
    let e = check_compatible(&path, &feeds(&bigger, 16, &[])).unwrap_err();
    assert!(e.contains("13 ids") && e.contains("14 ids"), "{e}");
    let other = Tokenizer::Char(CharTokenizer::from_text("abcdefgz"));
    let e = check_compatible(&path, &feeds(&other, 16, &[])).unwrap_err();
    assert!(e.contains("other tokens"), "{e}");

    let e = check_compatible(&path, &feeds(&ours, 128, &[])).unwrap_err();
    assert!(
        e.contains("at most 16 positions") && e.contains("up to 128 (--seq-len)"),
        "{e}"
    );

    let e = check_compatible(&path, &feeds(&ours, 16, &["bert", "simcse"])).unwrap_err();
    assert!(e.contains("trained as mlm") && e.contains("bert or simcse"), "{e}");

    let missing = dir.join("none.safetensors");
    let e = check_compatible(&missing, &feeds(&ours, 16, &[])).unwrap_err();
    assert!(e.starts_with("--init") && e.contains("none.safetensors"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
