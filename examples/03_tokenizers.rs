//! # 3. Tokenizers
//!
//! Tokenizers on Tiny Shakespeare: the character vocabulary, then a byte-level BPE trained from
//! scratch with 2,000 merges, timed, with its first merges and a sample encoding.
//!
//! Run it with `cargo run --release --example 03_tokenizers`.

use microlm::tokenizer::{BpeTokenizer, CharTokenizer, SPECIALS};
use std::time::Instant;

fn main() {
    microlm::cli::takes_no_flags("03_tokenizers");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tinyshakespeare.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    println!("{path}: {} bytes, {} characters\n", text.len(), text.chars().count());

    let chars = CharTokenizer::from_text(&text);
    println!(
        "== character level: {} ids ({} specials + {} characters)",
        chars.vocab_size(),
        SPECIALS.len(),
        chars.vocab_size() - SPECIALS.len()
    );

    let merges = 2000;
    let start = Instant::now();
    let bpe = BpeTokenizer::train(&text, 256 + merges + SPECIALS.len());
    let secs = start.elapsed().as_secs_f64();
    println!(
        "\n== byte-level BPE: {} merges trained in {secs:.2} s",
        bpe.merges().len()
    );
    println!("first merges (as text):");
    for (i, &(a, b)) in bpe.merges().iter().take(10).enumerate() {
        let (l, r, merged) = (bpe.token_text(a), bpe.token_text(b), bpe.token_text(256 + i));
        println!("  {:>4}: {l:?} + {r:?} -> {merged:?}", 256 + i);
    }
    let start = Instant::now();
    let ids = bpe.encode(&text);
    println!(
        "encoding the whole text: {} tokens ({:.2} bytes per token) in {:.2} s",
        ids.len(),
        text.len() as f64 / ids.len() as f64,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(bpe.decode(&ids), text, "decode(encode(text)) must give the text back");
    println!("decode(encode(text)) == text: yes");

    let line = "O Romeo, Romeo! wherefore art thou Romeo?";
    let pieces: Vec<String> = bpe.encode(line).iter().map(|&id| bpe.token_text(id)).collect();
    println!("\n{line:?}\n  -> {pieces:?}");
}
