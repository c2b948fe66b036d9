//! The examples' flag reader, and the tokenizer stored in checkpoint metadata.

use microlm::cli::{check, Flags};
use microlm::tokenizer::{BpeTokenizer, CharTokenizer, Tokenizer};

fn parse(args: &[&str]) -> Result<Flags, String> {
    Flags::parse(args.iter().map(|s| s.to_string()))
}

#[test]
fn flags_report_every_mistake_by_name() {
    assert_eq!(parse(&["--steps"]).unwrap_err(), "--steps needs a value");
    assert_eq!(parse(&["--lr", "1", "--lr", "2"]).unwrap_err(), "--lr is given twice");
    let mut f = parse(&["--steps", "ten"]).unwrap();
    let e = f.get("steps", 1usize).unwrap_err();
    assert!(e.starts_with("--steps ten: "), "{e}");
    let mut f = parse(&["--step", "10"]).unwrap();
    assert_eq!(f.get("steps", 1usize).unwrap(), 1);
    let e = f.finish().unwrap_err();
    assert!(e.contains("unknown flag --step") && e.contains("--steps"), "{e}");
    assert_eq!(
        check(false, "lr", -1.0, "must be positive").unwrap_err(),
        "--lr -1: must be positive"
    );
    assert!(parse(&["-h"]).unwrap().wants_help());
}

#[test]
fn tokenizers_round_trip_through_metadata() {
    let text = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    for tok in [
        Tokenizer::Char(CharTokenizer::from_text(text)),
        Tokenizer::Bpe(BpeTokenizer::train(text, 256 + 5 + 12)),
    ] {
        let back = Tokenizer::from_metadata(&tok.to_metadata()).unwrap();
        assert_eq!(back, tok);
        assert_eq!(back.encode("hear me"), tok.encode("hear me"));
        assert_eq!(back.decode(&[back.special("[MASK]")]), "[MASK]");
    }
    let mut bad = Tokenizer::Bpe(BpeTokenizer::train(text, 263)).to_metadata();
    bad.insert("tokenizer.merges".into(), "97 98,999 1".into());
    let e = Tokenizer::from_metadata(&bad).unwrap_err();
    assert!(e.contains("merge 1") && e.contains("999 1"), "{e}");
}

#[test]
fn usage_lists_each_described_flag_with_the_default_in_force() {
    let mut f = parse(&["--lr", "0.5"]).unwrap();
    assert_eq!(f.arg("lr", 1e-3f32, "peak learning rate").unwrap(), 0.5);
    assert_eq!(f.arg("steps", 1300usize, "updates").unwrap(), 1300);
    let usage = f.usage("mlm");
    assert!(
        usage.starts_with("cargo run --release --example mlm -- [flags]"),
        "{usage}"
    );
    assert!(usage.contains("--steps") && usage.contains("updates (1300)"), "{usage}");
    assert!(
        usage.contains("peak learning rate (0.001)"),
        "the default, not the value given: {usage}"
    );
    assert!(!f.help_or_finish("mlm").unwrap(), "no --help: carry on");
    let mut typo = parse(&["--step", "3"]).unwrap();
    typo.arg("steps", 1usize, "updates").unwrap();
    assert!(typo.help_or_finish("mlm").unwrap_err().contains("unknown flag --step"));
    assert!(
        parse(&["--help"]).unwrap().help_or_finish("mlm").unwrap(),
        "--help: stop"
    );
}

#[test]
fn stray_positional_words_are_refused_unless_declared() {
    // A training example declares no positional words: `--steps 3 oops` is an error naming it.
    let mut f = parse(&["--steps", "3", "oops"]).unwrap();
    assert_eq!(f.arg("steps", 1usize, "updates").unwrap(), 3);
    let e = f.finish().unwrap_err();
    assert!(e.contains("\"oops\"") && e.contains("only flags"), "{e}");
    assert!(f.help_or_finish("mlm").is_err());
    // A program that takes exactly one word refuses none and two, and accepts one.
    let one = |args: &[&str]| {
        let mut f = parse(args).unwrap();
        f.takes_positional(1, 1, "a sentence");
        f.finish()
    };
    assert!(one(&["a b"]).is_ok());
    let e = one(&[]).unwrap_err();
    assert!(
        e.contains("expected 1") && e.contains("a sentence") && e.contains("none"),
        "{e}"
    );
    let e = one(&["a", "b"]).unwrap_err();
    assert!(
        e.contains("expected 1") && e.contains("got 2") && e.contains("\"b\""),
        "{e}"
    );
    // Zero or one.
    let mut f = parse(&[]).unwrap();
    f.takes_positional(0, 1, "a prompt");
    assert!(f.finish().is_ok());
}

/// The number before " GB" in the first place the message gives one.
fn gb_in(message: &str) -> f64 {
    let before = &message[..message.find(" GB").expect("an estimate in GB")];
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_memory_estimate_passes_the_toy_defaults_and_refuses_huge_flags() {
    use microlm::recipe::Recipe;
    let vocab = 70; // Tiny Shakespeare's characters and the 5 specials
    let laptop = Some(8e9);
    assert!(Recipe::default().check_memory(vocab, laptop).is_ok());
    assert!(Recipe::nanogpt_cpu().check_memory(vocab, laptop).is_ok());
    // The clm example's model: 811,334 parameters (what the example prints).
    assert_eq!(Recipe::nanogpt_cpu().parameter_estimate(vocab), 811_334.0);

    let big = Some(64e9);
    // --seq-len 100000: the attention scores alone are batch * heads * seq_len^2 * layers f32s.
    let long = Recipe {
        seq_len: 100_000,
        ..Recipe::default()
    };
    let e = long.check_memory(vocab, big).unwrap_err();
    let scores_gb = 32.0 * 4.0 * 1e10 * 4.0 * 4.0 / 1e9;
    assert!(gb_in(&e) >= scores_gb, "{e}");
    assert!(e.contains("--seq-len 100000") && e.contains("64.0 GB"), "{e}");
    // --batch 1000000: one d_model-wide f32 per token per layer alone is 262 GB.
    let wide = Recipe {
        batch: 1_000_000,
        ..Recipe::default()
    };
    let e = wide.check_memory(vocab, big).unwrap_err();
    assert!(gb_in(&e) >= 1e6 * 128.0 * 128.0 * 4.0 * 4.0 / 1e9, "{e}");
    assert!(e.contains("--batch 1000000"), "{e}");
    // Memory unknown: no check.
    assert!(long.check_memory(vocab, None).is_ok());
}

#[test]
fn prompt_characters_outside_the_vocabulary_are_named() {
    use microlm::inspect::{special_ids, unknown_chars, unknown_chars_warning};
    let tok = Tokenizer::Char(CharTokenizer::from_text("abc de"));
    assert_eq!(unknown_chars(&tok, "bad cab"), Vec::<char>::new());
    assert_eq!(unknown_chars(&tok, "aé z€zé"), vec!['é', 'z', '€']);
    let w = unknown_chars_warning(&tok, "ax", "the prompt").unwrap();
    assert!(
        w.contains("the prompt") && w.contains("'x'") && w.contains("[UNK]"),
        "{w}"
    );
    assert_eq!(unknown_chars_warning(&tok, "cab", "the prompt"), None);
    // Byte-level BPE has a token for every byte: nothing is unknown.
    let bpe = Tokenizer::Bpe(BpeTokenizer::train("abc de", 256 + 5 + 2));
    assert!(unknown_chars(&bpe, "é€").is_empty());
    // The five specials, whatever their ids.
    for t in [&tok, &bpe] {
        let names: Vec<String> = special_ids(t).iter().map(|&id| t.decode(&[id])).collect();
        assert_eq!(names, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    }
}

/// `--embedding-std`: BERT's 0.02 by default, `auto` for the automatic choice, and a clear
/// error naming the flag for anything that is not a positive number.
#[test]
fn embedding_std_flag() {
    use microlm::recipe::Recipe;
    let read = |args: &[&str]| Recipe::read(&mut parse(args).unwrap(), Recipe::default());
    assert_eq!(read(&[]).unwrap().embedding_std, Some(0.02));
    assert_eq!(read(&["--embedding-std", "auto"]).unwrap().embedding_std, None);
    assert_eq!(read(&["--embedding-std", "0.05"]).unwrap().embedding_std, Some(0.05));
    for bad in ["-1", "0", "inf", "wide"] {
        let e = read(&["--embedding-std", bad]).unwrap_err();
        assert!(e.contains("--embedding-std") && e.contains(bad), "{e}");
    }
}

#[test]
fn decoding_flags_are_checked_by_name() {
    use microlm::recipe::{read_decodings, NO_REPEAT_NGRAM};
    let decodings = |args: &[&str]| read_decodings(&mut parse(args).unwrap());
    let d = decodings(&[]).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].1.width, d[0].1.no_repeat_ngram), (4, NO_REPEAT_NGRAM));
    let d = decodings(&["--beam", "4,1", "--no-repeat-ngram", "0"]).unwrap();
    let names: Vec<&str> = d.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["beam 4", "greedy"]);
    for (args, named) in [
        (&["--beam", "0"][..], "--beam 0"),
        (&["--beam", "4,x"][..], "\"x\""),
        (&["--lenpen", "-1"][..], "--lenpen"),
    ] {
        let e = decodings(args).unwrap_err();
        assert!(e.contains(named), "{args:?}: {e}");
    }
}

#[test]
fn noise_flags_are_checked_by_name() {
    use microlm::objectives::Noise;
    use microlm::recipe::read_noise;
    let noise = |args: &[&str]| read_noise(&mut parse(args).unwrap());
    assert!(matches!(noise(&[]).unwrap(), Noise::Bart(b) if b.p == 0.3 && b.permute == 1.0));
    assert!(matches!(noise(&["--noise", "t5"]).unwrap(), Noise::T5(t) if t.noise_density == 0.15));
    // A named noise sets the defaults of the other flags, which still override them.
    assert_eq!(noise(&["--noise", "infill"]).unwrap(), Noise::named("infill").unwrap());
    let infill = noise(&["--noise", "infill", "--permute", "0.5"]).unwrap();
    assert!(matches!(infill, Noise::Bart(b) if b.permute == 0.5 && b.p == 0.3));
    assert_eq!(noise(&["--noise", "rotate"]).unwrap().short_name(), "rotate");
    let words = noise(&["--masking", "words", "--span-lambda", "1"]).unwrap();
    let want = microlm::data::bart_noise::Masking::Words {
        lambda: 1.0,
        keep_length: false,
    };
    assert!(
        matches!(words, Noise::Bart(b) if b.masking == want),
        "--masking words: whole-word spans"
    );
    for (args, named) in [
        (&["--noise", "bert"][..], "--noise \"bert\""),
        (&["--mask-ratio", "1.5"][..], "--mask-ratio 1.5"),
        (&["--permute", "-0.1"][..], "--permute -0.1"),
        (&["--span-lambda", "0"][..], "--span-lambda 0"),
        (&["--noise-density", "2"][..], "--noise-density 2"),
        (&["--mean-span", "0"][..], "--mean-span 0"),
        (&["--masking", "letters"][..], "--masking \"letters\""),
    ] {
        let e = noise(args).unwrap_err();
        assert!(e.contains(named), "{args:?}: {e}");
    }
}

/// Every numeric flag reads with its allowed range: a value outside it is an error naming the
/// flag and the range, and `--help` shows the range.
#[test]
fn numbers_outside_a_flags_domain_are_refused_naming_the_flag_and_the_range() {
    use microlm::cli::Domain;
    let read_f32 = |v: &str, d: Domain<f32>| parse(&["--rate", v]).unwrap().arg_in("rate", 1.0f32, d, "a rate");
    for bad in ["nan", "NaN", "inf", "-inf", "0", "-1"] {
        let e = read_f32(bad, Domain::above(0.0)).unwrap_err();
        assert!(e.starts_with("--rate ") && e.contains("above 0"), "{bad}: {e}");
    }
    assert_eq!(read_f32("0.5", Domain::above(0.0)).unwrap(), 0.5);
    assert_eq!(read_f32("0", Domain::below(0.0, 1.0)).unwrap(), 0.0);
    let e = read_f32("1", Domain::below(0.0, 1.0)).unwrap_err();
    assert!(e.contains("at least 0 and below 1"), "{e}");
    assert_eq!(read_f32("1", Domain::between(0.0, 1.0)).unwrap(), 1.0);
    let e = read_f32("1.5", Domain::between(0.0, 1.0)).unwrap_err();
    assert!(e.contains("at most 1"), "{e}");
    let mut f = parse(&["--seeds", "0"]).unwrap();
    assert_eq!(
        f.arg_in("seeds", 2u64, Domain::at_least(1), "seeds").unwrap_err(),
        "--seeds 0: must be at least 1"
    );
    assert!(f.usage("x").contains("seeds; at least 1 (2)"), "{}", f.usage("x"));
    let mut f = parse(&["--n", "3"]).unwrap();
    assert_eq!(
        f.arg_opt_in::<usize>("n", Domain::at_least(4), "n").unwrap_err(),
        "--n 3: must be at least 4"
    );
    let mut f = parse(&[]).unwrap();
    assert_eq!(f.arg_opt_in::<usize>("n", Domain::at_least(4), "n").unwrap(), None);
    let mut f = parse(&["--kind", "wordpiece"]).unwrap();
    let e = f.arg_choice("kind", "char", &["char", "bpe"], "tokenizer").unwrap_err();
    assert_eq!(e, "--kind wordpiece: expected one of char, bpe");
}

/// Each shared recipe flag refuses the values outside its domain by name, whatever the example.
#[test]
fn every_recipe_flag_refuses_values_outside_its_domain() {
    use microlm::recipe::Recipe;
    for (flag, bad) in [
        ("steps", "0"),
        ("batch", "0"),
        ("d-model", "0"),
        ("layers", "0"),
        ("heads", "0"),
        ("seq-len", "1"),
        ("bpe-vocab", "261"),
        ("dropout", "1"),
        ("dropout", "nan"),
        ("position-scale", "-1"),
        ("position-scale", "inf"),
        ("lr", "nan"),
        ("lr", "0"),
        ("min-lr", "-1"),
        ("weight-decay", "nan"),
        ("beta2", "1"),
        ("grad-clip", "0"),
        ("eval-every", "0"),
        ("eval-batches", "0"),
        ("tokenizer", "word"),
        ("activation", "tanh"),
        ("steps", "-3"),
        ("seed", "-1"),
        ("seed", "18446744073709551616"),
        ("warmup", "-1"),
        ("warmup", "1301"),
    ] {
        let e = Recipe::read(&mut parse(&[&format!("--{flag}"), bad]).unwrap(), Recipe::default()).unwrap_err();
        assert!(e.starts_with(&format!("--{flag} ")), "--{flag} {bad}: {e}");
    }
    // The seed's error states its range; a warmup longer than the run is refused against
    // --steps, while the default warmup (100) may outlast a short --steps.
    let read = |args: &[&str]| Recipe::read(&mut parse(args).unwrap(), Recipe::default());
    let e = read(&["--seed", "-1"]).unwrap_err();
    assert!(
        e.ends_with("must be at least 0 and at most 18446744073709551615"),
        "{e}"
    );
    let e = read(&["--steps", "20", "--warmup", "21"]).unwrap_err();
    assert_eq!(e, "--warmup 21: must be at most --steps (20)");
    assert_eq!(read(&["--steps", "20", "--warmup", "20"]).unwrap().warmup, 20);
    assert_eq!(read(&["--steps", "20"]).unwrap().warmup, 100);
}

/// `Recipe::read_without`: the flags an example does not use are not in its `--help`, and
/// giving one is an unknown flag (mmlm and clip once accepted `--seq-len` and `--corpus` and
/// ignored them).
#[test]
fn flags_an_example_does_not_use_are_refused_and_left_out_of_help() {
    use microlm::recipe::{Recipe, SHAPES_UNUSED};
    let mut f = parse(&["--corpus", "/nonexistent"]).unwrap();
    Recipe::read_without(&mut f, Recipe::default(), SHAPES_UNUSED).unwrap();
    assert!(f.finish().unwrap_err().contains("unknown flag --corpus"));
    let mut f = parse(&["--seq-len", "32"]).unwrap();
    Recipe::read_without(&mut f, Recipe::default(), SHAPES_UNUSED).unwrap();
    assert!(f.finish().unwrap_err().contains("unknown flag --seq-len"));
    let usage = f.usage("mmlm");
    for gone in SHAPES_UNUSED {
        assert!(!usage.contains(&format!("--{gone} ")), "{gone} in {usage}");
    }
    assert!(usage.contains("--d-model") && usage.contains("--activation"), "{usage}");
}

/// The shapes world's models (mmlm, clip) estimate their memory before they are built:
/// `--batch 1000000` and a CLIP projection of 10^9 dimensions are refused with the estimate.
#[test]
fn the_shapes_models_estimate_their_memory_before_building() {
    use microlm::recipe::{Recipe, ShapesWorld};
    let mut f = parse(&[]).unwrap();
    let world = ShapesWorld::read(&mut f).unwrap();
    let small = Recipe {
        d_model: 64,
        batch: 64,
        ..Recipe::default()
    };
    assert!(small.shapes_config(&world, 2, 0.0).is_ok());
    let huge_batch = Recipe {
        batch: 1_000_000,
        ..small.clone()
    };
    let e = huge_batch.shapes_config(&world, 2, 0.0).unwrap_err();
    assert!(
        e.contains("GB") && e.contains("--batch 1000000") && e.contains("--text-len 16"),
        "{e}"
    );
    // CLIP's two projections d_model x embed_dim: 2 * 64 * 10^9 parameters, 16 bytes each.
    let e = small.shapes_config(&world, 0, 2.0 * 64.0 * 1e9).unwrap_err();
    assert!(gb_in(&e) >= 2.0 * 64.0 * 1e9 * 16.0 / 1e9, "{e}");
}
