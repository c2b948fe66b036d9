//! # 12. CLIP: an image tower and a text tower trained to agree
//!
//! Each picture must pick out its own caption among the batch's captions, and each caption its
//! own picture: a symmetric cross-entropy over cosine similarities scaled by a learned e^t
//! (`src/objectives/clip.rs`).
//!
//!   cargo run --release --example clip
//!
//! What happens:
//! 1. The shapes world (`src/data/shapes/`); every update draws 64 fresh pairs with distinct
//!    captions (a repeated caption would be a false negative).
//! 2. Training: both towers and t, with t clamped into [0, ln 100] after every update.
//! 3. Validation and the end: image-to-caption and caption-to-image top-1 retrieval among 100
//!    held-out pairs (chance 0.01), and the learned scale e^t (it starts at 1/0.07 = 14.3).

use microlm::cli::{check, Domain, Flags};
use microlm::data::shapes::IMAGE_SIZE;
use microlm::objectives::Clip;
use microlm::recipe::{Recipe, ShapesWorld, SHAPES_UNUSED};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        steps: 1500,
        d_model: 64,
        layers: 2,
        batch: 64,
        dropout: 0.0,
        warmup: 100,
        eval_every: 250,
        out: "runs/clip".into(),
        ..Recipe::default()
    };
    // No corpus, and no output head to tie: those flags are not read.
    let unused = [SHAPES_UNUSED, &["tie"]].concat();
    let recipe = Recipe::read_without(&mut flags, defaults, &unused)?;
    let world = ShapesWorld::read(&mut flags)?;
    let embed_dim: usize = flags.arg_in(
        "embed-dim",
        64,
        Domain::at_least(1),
        "width of the shared embedding space",
    )?;
    if flags.help_or_finish("clip")? {
        return Ok(());
    }
    let n = recipe.batch;
    check(
        (2..=1000).contains(&n),
        "batch",
        n,
        "must be 2 to 1000: the other pairs are the negatives",
    )?;

    // The two towers, and 100 held-out pairs with distinct captions.
    let mut params = microlm::Params::new();
    let config = recipe.shapes_config(&world, 0, 2.0 * (recipe.d_model * embed_dim) as f64)?;
    let model = Clip::new(
        &mut params,
        &config,
        IMAGE_SIZE,
        world.patch,
        embed_dim,
        &mut recipe.init_rng(),
    )?;
    let held_out = world.batch(&world.held_out_distinct(100))?;

    // Train, clamping t after every update.
    let report = recipe.train_on_shapes(
        &world,
        &mut params,
        model.metadata(),
        vec![Clip::bound()],
        |tape, params, rng| {
            let batch = world
                .batch(&world.draw_distinct(n, rng))
                .expect("the grammar fits --text-len");
            model.loss(tape, params, &batch, rng).expect("checked: 2 or more pairs")
        },
        |params| model.validation(params, &held_out),
    )?;
    if report.interrupted {
        return Ok(());
    }
    println!("{}", model.retrieval_report(&params, &held_out));
    Ok(())
}
