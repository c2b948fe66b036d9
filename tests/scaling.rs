//! The scaling module: the power-law fit recovers a known law exactly and reports a worse fit
//! for noisy data, refuses bad input; 6ND by hand; Kaplan's N of a real model; the frontier,
//! the training-split fraction and the `--sizes` parser; and the log-log chart's structure.

use microlm::data::Corpus;
use microlm::nn::TransformerConfig;
use microlm::objectives::MaskedLm;
use microlm::scaling::{
    compute_frontier, data_svg, data_table, fit_power_law, fit_sizes, loglog_svg, non_embedding_parameters,
    parse_denominators, size_svg, size_table, train_fraction, training_flops, PowerLaw, Run, Shape,
};
use microlm::tokenizer::{CharTokenizer, Tokenizer};
use microlm::{Params, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

const XS: [f64; 6] = [1.0, 2.0, 5.0, 10.0, 100.0, 1000.0];

/// y = 3 x^-0.5 at `XS`, computed here.
fn noiseless() -> Vec<f64> {
    XS.iter().map(|x| 3.0 / x.sqrt()).collect()
}

#[test]
fn fit_recovers_a_noiseless_power_law_exactly() {
    let law = fit_power_law(&XS, &noiseless()).unwrap();
    assert!((law.a - 3.0).abs() < 1e-12, "a = {}", law.a);
    assert!((law.alpha - 0.5).abs() < 1e-12, "alpha = {}", law.alpha);
    assert!((law.r2 - 1.0).abs() < 1e-12, "r2 = {}", law.r2);
    assert!((law.predict(4.0) - 1.5).abs() < 1e-12);
}

#[test]
fn noise_lowers_r2_but_keeps_the_exponent_close() {
    let factors = [1.05, 0.96, 1.03, 0.94, 1.06, 0.98];
    let ys: Vec<f64> = noiseless().iter().zip(factors).map(|(y, f)| y * f).collect();
    let law = fit_power_law(&XS, &ys).unwrap();
    assert!(law.r2 < 1.0 && law.r2 > 0.9, "r2 = {}", law.r2);
    assert!((law.alpha - 0.5).abs() < 0.05, "alpha = {}", law.alpha);
}

#[test]
fn a_flat_law_fits_with_alpha_zero() {
    let law = fit_power_law(&[1.0, 10.0], &[2.0, 2.0]).unwrap();
    assert_eq!((law.alpha, law.r2), (0.0, 1.0));
    assert!((law.a - 2.0).abs() < 1e-12);
}

#[test]
fn fit_refuses_bad_input() {
    let cases: [(&[f64], &[f64], &str); 7] = [
        (&[], &[], "2 or more"),
        (&[1.0], &[1.0], "2 or more"),
        (&[1.0, 2.0], &[1.0], "2 or more"),
        (&[0.0, 2.0], &[1.0, 1.0], "not positive"),
        (&[1.0, 2.0], &[1.0, -1.0], "not positive"),
        (&[1.0, f64::NAN], &[1.0, 1.0], "not positive"),
        (&[3.0, 3.0], &[1.0, 2.0], "same"),
    ];
    for (xs, ys, why) in cases {
        let e = fit_power_law(xs, ys).unwrap_err();
        assert!(e.contains(why), "{xs:?} {ys:?}: {e}");
    }
}

#[test]
fn six_n_d_by_hand() {
    // 100,000 non-embedding parameters, 400 updates of 16 x 128 tokens = 819,200 tokens:
    // 6 x 100,000 x 819,200 = 491,520,000,000.
    assert_eq!(training_flops(100_000, 400 * 16 * 128), 491_520_000_000.0);
    assert_eq!(training_flops(0, 1_000), 0.0);
}

#[test]
fn non_embedding_parameters_leave_out_the_vocabulary_tables() {
    let mut params = Params::new();
    params.add("encoder.embed.token_embedding.weight", Tensor::zeros(vec![70, 8]));
    params.add("encoder.layers.0.self_attn.q_proj.weight", Tensor::zeros(vec![8, 8]));
    params.add("encoder.layers.0.self_attn.q_proj.bias", Tensor::zeros(vec![8]));
    params.add("mlm_head.output.weight", Tensor::zeros(vec![70, 8]));
    params.add("decoder.lm_head.bias", Tensor::zeros(vec![70]));
    assert_eq!(non_embedding_parameters(&params), 64 + 8);

    // The masked LM of the example: per layer 12 d^2 + 13 d, and the final LayerNorm's 2 d.
    let tokenizer = Tokenizer::Char(CharTokenizer::from_text("to be or not to be"));
    let config = TransformerConfig {
        layers: 2,
        heads: 2,
        tie_embeddings: false,
        ..TransformerConfig::toy(tokenizer.vocab_size()).with_d_model(32)
    };
    let mut params = Params::new();
    MaskedLm::new(&mut params, &config, &tokenizer, false, &mut StdRng::seed_from_u64(0)).unwrap();
    let (d, v) = (32, tokenizer.vocab_size());
    assert_eq!(non_embedding_parameters(&params), 2 * (12 * d * d + 13 * d) + 2 * d);
    assert_eq!(params.num_elements() - non_embedding_parameters(&params), 2 * v * d + v);
}

#[test]
fn the_frontier_keeps_each_new_lowest_loss() {
    let points = [(4.0, 3.0), (1.0, 5.0), (3.0, 4.5), (2.0, 4.0), (5.0, 3.0)];
    assert_eq!(compute_frontier(&points), vec![(1.0, 5.0), (2.0, 4.0), (4.0, 3.0)]);
    assert!(compute_frontier(&[]).is_empty());
}

#[test]
fn train_fraction_keeps_the_first_part() {
    let corpus = Corpus {
        tokenizer: Tokenizer::Char(CharTokenizer::from_text("ab")),
        train: (0..1000).collect(),
        val: (0..100).collect(),
        fingerprint: String::new(),
        name: "test".into(),
        seq_len: 16,
    };
    assert_eq!(train_fraction(&corpus, 0.25).unwrap(), &corpus.train[..250]);
    assert_eq!(train_fraction(&corpus, 1.0).unwrap().len(), 1000);
    for bad in [0.0, -0.5, 1.5, f64::NAN, 0.001] {
        assert!(train_fraction(&corpus, bad).is_err(), "{bad}");
    }
}

#[test]
fn shapes_parse_with_32_wide_heads_by_default() {
    let shapes = Shape::parse_list("32x1, 64x2,128x3x8").unwrap();
    let got: Vec<_> = shapes.iter().map(|s| (s.d_model, s.layers, s.heads)).collect();
    assert_eq!(got, vec![(32, 1, 1), (64, 2, 2), (128, 3, 8)]);
    assert_eq!(shapes[2].label(), "d128 L3");
    for bad in ["", "32", "32x", "ax1", "32x1x2x3", "32x1,"] {
        assert!(Shape::parse_list(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn fractions_parse_as_denominators() {
    assert_eq!(parse_denominators("32, 8,1").unwrap(), vec![32, 8, 1]);
    for bad in ["", "0", "1/2", "2,", "-1"] {
        assert!(parse_denominators(bad).is_err(), "{bad:?}");
    }
}

/// A run of a size sweep whose loss follows 3 N^-0.1 exactly.
fn synthetic_run(d: usize) -> Run {
    let n = 12 * d * d;
    let loss = |fraction: f64| 3.0 * (n as f64).powf(-0.1) / fraction.powf(0.05);
    Run {
        label: format!("d{d}"),
        parameters: n + 2 * 70 * d,
        non_embedding: n,
        tokens_per_step: 2048,
        steps: 400,
        unique_tokens: 409_600,
        val_loss: loss(1.0),
        seconds: 1.0,
        curve: vec![(0, 4.4), (200, loss(0.5)), (400, loss(1.0))],
    }
}

#[test]
fn runs_measure_tokens_flops_epochs_and_fit() {
    let runs: Vec<Run> = [32, 64, 128].into_iter().map(synthetic_run).collect();
    let r = &runs[0];
    assert_eq!(r.tokens(), 819_200);
    assert_eq!(r.flops(), 6.0 * 12_288.0 * 819_200.0);
    assert_eq!(r.epochs(400), 2.0);
    assert_eq!(r.best(), (400, r.val_loss));
    assert_eq!(r.curve_vs_flops().len(), 2); // step 0 is left out
    let fits = fit_sizes(&runs).unwrap();
    assert!((fits.parameters.alpha - 0.1).abs() < 1e-12 && fits.falls_with_size);
    assert!(size_table(&runs).lines().count() == 4 && size_table(&runs).contains("d128"));
    assert!(data_table(&runs).contains("still falling at the end"));
    let rising = Run {
        curve: vec![(0, 4.0), (200, 2.0), (400, 2.1)],
        val_loss: 2.1,
        ..runs[0].clone()
    };
    assert!(data_table(&[rising]).contains("2.0000 at 1.0 epochs, then +0.1000"));
}

/// Every element opened is closed, in order (a small XML well-formedness check).
fn assert_balanced(svg: &str) {
    let mut open: Vec<String> = Vec::new();
    for tag in svg
        .split('<')
        .skip(1)
        .map(|t| &t[..t.find('>').expect("tag closed with >")])
    {
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop().as_deref(), Some(name), "unbalanced </{name}>");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
}

#[test]
fn loglog_chart_has_one_dot_per_point_and_valid_structure() {
    let series = vec![
        ("a".to_string(), vec![(1e4, 3.0), (1e5, 2.5), (1e6, 2.0)]),
        ("b".to_string(), vec![(2e4, 2.8), (0.0, 1.0), (3e5, -1.0), (4e5, 2.2)]), // 2 not drawable
    ];
    let law = PowerLaw {
        a: 6.0,
        alpha: 0.08,
        r2: 0.99,
    };
    let svg = loglog_svg(&series, "N", "loss <nats>", "a & b", Some(&law));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.ends_with("</svg>\n"));
    assert_eq!(svg.matches("<circle").count(), 5);
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert_eq!(svg.matches("stroke-dasharray=\"6 4\"").count(), 2); // the fit and its legend
    assert!(svg.contains("10⁴") && svg.contains("10⁶") && svg.contains("fit: 6.000 x^-0.0800"));
    assert!(svg.contains("loss &lt;nats&gt;") && svg.contains("a &amp; b"));
    assert_balanced(&svg);

    let plain = loglog_svg(&series, "N", "loss", "", None);
    assert!(!plain.contains("stroke-dasharray=\"6 4\""));
    let empty = loglog_svg(&[], "x", "y", "nothing", None);
    assert!(empty.contains("no data") && !empty.contains("<circle"));
    assert_balanced(&empty);
}

#[test]
fn size_and_data_charts_are_well_formed() {
    let runs: Vec<Run> = [32, 64, 128].into_iter().map(synthetic_run).collect();
    let svg = size_svg(&runs, &fit_sizes(&runs).unwrap());
    assert_eq!(svg.matches("<svg").count(), 3); // two charts in one document
    assert_eq!(svg.matches("<circle").count(), 3 + 3 * 2);
    assert_balanced(&svg);
    let svg = data_svg(&runs);
    assert_eq!(svg.matches("<circle").count(), 3);
    assert_balanced(&svg);
}
