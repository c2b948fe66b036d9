//! # 7. Generation
//!
//! Continue a prompt with a model the `clm` example trained.
//!
//!   cargo run --release --example clm                        # trains, writes runs/clm/checkpoint.safetensors
//!   cargo run --release --example generate -- "ROMEO:"
//!   cargo run --release --example generate -- --tokens 300 --temperature 1.0 --top-k 10 --seed 3 "JULIET:"
//!
//! Sampling is seeded: the same flags give the same text. `--greedy true` always takes the most
//! probable character; `--no-cache true` recomputes the whole context for every new character (the
//! same text, slower). Past the model's context length the window slides (see `src/generate.rs`).

use microlm::checkpoint::load_checked;
use microlm::cli::{Domain, Flags};
use microlm::generate::{stream, Model, Sampling, Settings};
use microlm::inspect::{special_ids, unknown_chars_warning};
use microlm::objectives::CausalLm;
use microlm::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let path: String = flags.arg(
        "checkpoint",
        "runs/clm/checkpoint.safetensors".into(),
        "the clm example's checkpoint",
    )?;
    let tokens: usize = flags.arg_in("tokens", 500, Domain::at_least(1), "tokens to generate")?;
    let temperature: f32 = flags.arg_in("temperature", 0.8, Domain::above(0.0), "softmax temperature")?;
    let top_k: usize = flags.arg_in("top-k", 200, Domain::at_least(1), "sample among the k most probable")?;
    let greedy: bool = flags.arg("greedy", false, "always take the most probable")?;
    let no_cache: bool = flags.arg("no-cache", false, "recompute the context at every step")?;
    let seed: u64 = flags.arg_in("seed", 1337, Domain::seeds(), "sampling seed")?;
    flags.takes_positional(0, 1, "one prompt, quoted if it has spaces");
    if flags.help_or_finish("generate \"a prompt\"")? {
        return Ok(());
    }
    if greedy {
        let why = "--greedy takes the most probable token and draws nothing";
        flags.refuse_given(&["temperature", "top-k", "seed"], why)?;
    }
    // One prompt at most (checked by help_or_finish); without one, start from a newline.
    let prompt = flags.positional().first().cloned().unwrap_or_else(|| "\n".to_string());

    let (model, params, tokenizer) = load_checked(Path::new(&path), "checkpoint", "clm", CausalLm::load)?;

    let sampling = if greedy {
        Sampling::Greedy
    } else {
        Sampling::TopK { k: top_k, temperature }
    };
    if let Some(warning) = unknown_chars_warning(&tokenizer, &prompt, "the prompt") {
        eprintln!("{warning}");
    }
    let prompt_ids = tokenizer.encode(&prompt);
    let specials = special_ids(&tokenizer); // never drawn: [PAD] [UNK] [CLS] [SEP] [MASK]
    let settings = Settings {
        new_tokens: tokens,
        sampling,
        use_cache: !no_cache,
        banned: &specials,
        stop: None,
    };

    // Each token is printed as soon as it is drawn.
    let mut out = Printer::new(&tokenizer);
    out.print(&prompt)?;
    let t = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    stream(
        Model::Decoder(&model.decoder),
        &params,
        &prompt_ids,
        &settings,
        &mut rng,
        |token, _| out.token(token),
    )?;
    out.finish()?;
    let seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "\n({tokens} tokens in {seconds:.2} s, {:.0} tokens/s, {})",
        tokens as f64 / seconds,
        if no_cache { "no cache" } else { "KV cache" }
    );
    Ok(())
}

/// Prints tokens to stdout as they come, flushing each. A byte-level BPE token can end inside
/// a multi-byte character; such a token waits (up to 4 tokens) for the rest of it.
struct Printer<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<usize>,
}

impl<'a> Printer<'a> {
    fn new(tokenizer: &'a Tokenizer) -> Printer<'a> {
        Printer {
            tokenizer,
            pending: Vec::new(),
        }
    }

    /// Write `text` and flush; a failed write (a closed pipe) is an error that stops generation.
    fn print(&mut self, text: &str) -> Result<(), String> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| format!("writing the text: {e}"))
    }

    /// Print one new token (or hold it while it ends inside a character).
    fn token(&mut self, id: usize) -> Result<(), String> {
        self.pending.push(id);
        let text = self.tokenizer.decode(&self.pending);
        if text.ends_with(char::REPLACEMENT_CHARACTER) && self.pending.len() < 4 {
            return Ok(());
        }
        self.pending.clear();
        self.print(&text)
    }

    /// Print what is held, and a newline.
    fn finish(mut self) -> Result<(), String> {
        let rest = self.tokenizer.decode(&self.pending);
        self.print(&format!("{rest}\n"))
    }
}
