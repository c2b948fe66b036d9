//! Attention maps: the pattern masses on hand-made weights whose answer is known, the SVG
//! grid's panels, and the maps of small untrained models (shapes, rows summing to 1, the
//! causal mask).

use microlm::attention_map::{
    attention_grid_svg, clm_attention, mlm_attention, token_labels, HeadPatterns, Looked, PATTERNS,
};
use microlm::nn::TransformerConfig;
use microlm::objectives::{CausalLm, MaskedLm};
use microlm::tensor::Tensor;
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::Params;
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn tokens(s: &str) -> Vec<String> {
    s.chars().map(|c| c.to_string()).collect()
}

/// One layer, one head per entry of `rows`: head h's query i puts all its weight on key
/// `rows[h](i)`, as `[1, H, T, T]`.
fn one_hot_heads(t: usize, rows: &[&dyn Fn(usize) -> usize]) -> Tensor {
    let mut w = Tensor::zeros(IxDyn(&[1, rows.len(), t, t]));
    for (h, f) in rows.iter().enumerate() {
        for i in 0..t {
            w[[0, h, i, f(i)]] = 1.0;
        }
    }
    w
}

fn column(name: &str) -> usize {
    PATTERNS.iter().position(|p| *p == name).unwrap()
}

#[test]
fn pure_patterns_give_mass_one() {
    let tok = tokens("ab, ab cd.");
    let t = tok.len();
    let previous = |i: usize| i.saturating_sub(1);
    let next = |i: usize| (i + 1).min(t - 1);
    let itself = |i: usize| i;
    let boundary = |_: usize| 2; // the comma
    let first = |_: usize| 0;
    let map = one_hot_heads(t, &[&previous, &next, &itself, &boundary, &first]);
    let mut m = HeadPatterns::new(1, 5);
    m.add(&[map], &tok, false);
    let mass = |h: usize, p: &str| m.mean(0, h)[column(p)].unwrap();
    assert_eq!(mass(0, "previous"), 1.0); // measured for i >= 1, where key i - 1 exists
    assert_eq!(mass(1, "next"), 1.0); // measured for i < T - 1
    assert_eq!(mass(2, "self"), 1.0);
    assert_eq!(mass(2, "previous"), 0.0);
    assert_eq!(mass(3, "boundary"), 1.0);
    assert_eq!(mass(4, "first"), 1.0); // measured for i > 0
    let jobs = m.jobs(0.5);
    assert!(
        jobs.iter()
            .any(|j| j.starts_with("layer 0 head 0: previous 1.00 (uniform 0.1")),
        "{jobs:?}"
    );
    assert!(!jobs.iter().any(|j| j.starts_with("layer 0 head 0: next")), "{jobs:?}");
    assert_eq!(m.queries(), t);
    assert!(m.table().lines().count() == 1 + 5 + 1, "{}", m.table());
}

#[test]
fn same_character_elsewhere() {
    // "abab": a at 0 and 2, b at 1 and 3; each query looks at its twin.
    let tok = tokens("abab");
    let twin = |i: usize| (i + 2) % 4;
    let mut m = HeadPatterns::new(1, 1);
    m.add(&[one_hot_heads(4, &[&twin])], &tok, false);
    assert_eq!(m.mean(0, 0)[column("same char")], Some(1.0));
    assert_eq!(m.mean(0, 0)[column("self")], Some(0.0));
    // Uniform attention over 4 keys: one twin of 4, the previous 1 of 4, no boundary.
    let u = m.uniform();
    assert_eq!(u[column("same char")], Some(0.25));
    assert_eq!(u[column("previous")], Some(0.25));
    assert_eq!(u[column("boundary")], None);
}

#[test]
fn causal_maps_measure_only_visible_keys() {
    // Query i looks at the keys 0..=i; uniform over them.
    let tok = tokens("abcd");
    let mut w = Tensor::zeros(IxDyn(&[1, 4, 4]));
    for i in 0..4 {
        for j in 0..=i {
            w[[0, i, j]] = 1.0 / (i + 1) as f32;
        }
    }
    let mut m = HeadPatterns::new(1, 1);
    m.add(&[w], &tok, true);
    let mean = m.mean(0, 0);
    assert_eq!(mean[column("next")], None, "the next token is never visible");
    // Self: (1 + 1/2 + 1/3 + 1/4) / 4, and the uniform baseline is the same head.
    let expected = (1.0 + 0.5 + 1.0 / 3.0 + 0.25) / 4.0;
    assert!((mean[column("self")].unwrap() - expected).abs() < 1e-6);
    for (a, b) in mean.iter().zip(m.uniform()) {
        assert_eq!(a.is_some(), b.is_some());
        assert!((a.unwrap_or(0.0) - b.unwrap_or(0.0)).abs() < 1e-6);
    }
}

#[test]
fn svg_has_a_panel_per_layer_and_head() {
    let tok = tokens("to be, or <not>");
    let t = tok.len();
    let itself = |i: usize| i;
    let layer_a = one_hot_heads(t, &[&itself, &itself, &itself]); // [1, 3, T, T]
    let layer_b = one_hot_heads(t, &[&itself, &itself, &itself])
        .index_axis(ndarray::Axis(0), 0)
        .to_owned()
        .into_shared(); // [3, T, T]
    let svg = attention_grid_svg(&tok, &[layer_a, layer_b], "a <test> & more");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g id=\"layer").count(), 2 * 3);
    assert!(svg.contains("<g id=\"layer1-head2\">"));
    assert!(svg.contains("a &lt;test&gt; &amp; more"));
    assert!(svg.contains(">&lt;<"), "the token < is escaped");
    // One cell per query in each panel (weight 1 on itself), none under 0.01.
    assert_eq!(svg.matches("fill-opacity=\"1.00\"").count(), 6 * t);
}

#[test]
fn maps_of_small_models() {
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text("hello world"));
    let config = TransformerConfig {
        layers: 2,
        heads: 2,
        max_len: 16,
        ..TransformerConfig::toy(tokenizer.vocab_size()).with_d_model(16)
    };
    let ids = tokenizer.encode("hello world");
    let mut rng = StdRng::seed_from_u64(0);
    let mut params = Params::new();
    let mlm = MaskedLm::new(&mut params, &config, &tokenizer, false, &mut rng).unwrap();
    let mut cparams = Params::new();
    let clm = CausalLm::new(&mut cparams, &config, &mut rng).unwrap();
    for (maps, causal) in [
        (mlm_attention(&mlm, &params, &ids), false),
        (clm_attention(&clm, &cparams, &ids), true),
    ] {
        assert_eq!(maps.len(), 2);
        for w in &maps {
            assert_eq!(w.shape(), &[1, 2, 11, 11]);
            for h in 0..2 {
                for i in 0..11 {
                    let row: f32 = (0..11).map(|j| w[[0, h, i, j]]).sum();
                    assert!((row - 1.0).abs() < 1e-5);
                    let future: f32 = (i + 1..11).map(|j| w[[0, h, i, j]]).sum();
                    assert_eq!(future == 0.0, causal || i == 10, "query {i}");
                }
            }
        }
        let labels = token_labels(&tokenizer, &ids);
        assert_eq!(labels[5], "␣");
        let mut m = HeadPatterns::new(2, 2);
        m.add(&maps, &labels, causal);
        assert_eq!(m.queries(), 11);
    }
}

#[test]
fn a_missing_checkpoint_says_how_to_make_one() {
    for kind in ["mlm", "clm"] {
        let Err(e) = Looked::load(kind, std::path::Path::new("no/such/checkpoint.safetensors")) else {
            panic!("loaded a missing file")
        };
        assert!(e.contains("no/such/checkpoint.safetensors"), "{e}");
        assert!(e.contains(&format!("cargo run --release --example {kind}")), "{e}");
    }
}
