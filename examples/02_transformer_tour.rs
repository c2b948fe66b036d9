//! # 2. The Transformer
//!
//! A tour of the Transformer's layers: build the toy encoder, list its parameters, run one
//! forward pass, and look at what one attention head does with a padding mask.
//!
//! Run it with `cargo run --release --example 02_transformer_tour`.

use microlm::data::Batch;
use microlm::nn::{Encoder, MultiHeadAttention, TransformerConfig};
use microlm::{AttentionMask, Params, Tape};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() {
    microlm::cli::takes_no_flags("02_transformer_tour");
    microlm::init_threads_from_env();
    let config = TransformerConfig::toy(70);
    let mut params = Params::new();
    let mut rng = StdRng::seed_from_u64(0);
    let encoder = Encoder::new(&mut params, "encoder", &config, &mut rng).expect("the toy config is valid");

    println!("== the toy encoder: {config:?}\n");
    println!("{:<48} {:>12} {:>9}", "parameter", "shape", "elements");
    for id in params.ids() {
        let v = params.value(id);
        println!(
            "{:<48} {:>12} {:>9}",
            params.name(id),
            format!("{:?}", v.shape()),
            v.len()
        );
    }
    println!("{:<48} {:>12} {:>9}\n", "total", "", params.num_elements());

    println!("== one forward pass on 2 sequences of 6 tokens (the second padded to length 4)");
    let tokens = Batch::new(vec![5, 9, 12, 7, 30, 2, 8, 8, 41, 3, 0, 0], 2, 6).with_lengths(vec![6, 4]);
    let mut tape = Tape::no_grad();
    let h = encoder.forward(&mut tape, &params, &tokens, &mut rng);
    println!("hidden states: shape {:?}, {} ops recorded", tape.shape(h), tape.len());

    println!("\n== attention weights of head 0 for sequence 1 (rows: queries, columns: keys)");
    let mha = MultiHeadAttention::new(&mut params, "demo", 128, 4, &mut rng);
    let mut tape = Tape::no_grad();
    let x = encoder.embed.forward(&mut tape, &params, &tokens, 0, &mut rng);
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(vec![6, 4]),
    };
    let weights = mha.weights(&mut tape, &params, x, x, &mask);
    let w = tape.value(weights);
    for i in 0..6 {
        let row: Vec<String> = (0..6).map(|j| format!("{:.3}", w[[1, 0, i, j]])).collect();
        println!("query {i}: {}", row.join("  "));
    }
    println!("(causal + padding: query i sees keys 0..=i, and never the padded keys 4 and 5)");
}
