//! # 11. Multimodal masked LM: caption words predicted from the caption and the image
//!
//! One encoder reads `[CLS] caption [SEP]` and the image's 16 patches in one stream, predicts
//! masked caption words (MMLM) and says whether the image is the caption's (ITM):
//! `src/objectives/mmlm.rs`, `itm.rs`, `image_text.rs`.
//!
//!   cargo run --release --example mmlm
//!
//! What happens:
//! 1. The shapes world (`src/data/shapes/`): 32x32 pictures of one or two shapes, captioned
//!    from a small grammar. Every update draws 64 fresh pairs, half of them with another
//!    pair's image; 1,000 held-out pairs come from a fixed seed.
//! 2. Training: L = L_MMLM + L_ITM (`--itm false`: MMLM alone), validated on held-out pairs.
//! 3. At the end, masked colour and shape words predicted with (a) the true image, (b) a blank
//!    image, (c) another pair's image, scored against that image's words; then four pictures
//!    with the captions the model fills in, and where a masked colour word looks (SVG files).

use microlm::cli::{Domain, Flags};
use microlm::data::shapes::IMAGE_SIZE;
use microlm::inspect_images::{show_grounding, write_attention, write_filled_captions};
use microlm::objectives::Mmlm;
use microlm::recipe::{Recipe, ShapesWorld, SHAPES_UNUSED};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let defaults = Recipe {
        steps: 4000,
        d_model: 64,
        batch: 64,
        dropout: 0.0,
        warmup: 100,
        eval_every: 250,
        eval_batches: 8,
        out: "runs/mmlm".into(),
        ..Recipe::default()
    };
    let recipe = Recipe::read_without(&mut flags, defaults, SHAPES_UNUSED)?;
    let world = ShapesWorld::read(&mut flags)?;
    let itm: bool = flags.arg("itm", true, "train image-text matching beside MMLM")?;
    let mask_rate: f64 = flags.arg_in(
        "mask-rate",
        0.15,
        Domain::inside(0.0, 1.0),
        "share of caption positions masked",
    )?;
    if flags.help_or_finish("mmlm")? {
        return Ok(());
    }

    // The model, and held-out ITM batches (half their images swapped, from a fixed seed).
    let mut params = microlm::Params::new();
    let config = recipe.shapes_config(&world, 2, 0.0)?;
    let tok = &world.tokenizer;
    let mut model = Mmlm::new(
        &mut params,
        &config,
        tok,
        IMAGE_SIZE,
        world.patch,
        itm,
        &mut recipe.init_rng(),
    )?;
    model.corruption.mask_rate = mask_rate;
    model.corruption.validate().map_err(|e| format!("--mask-rate: {e}"))?;
    let val = world.itm_validation(recipe.batch, recipe.eval_batches)?;

    // Train on fresh pairs every update.
    let report = recipe.train_on_shapes(
        &world,
        &mut params,
        model.metadata(),
        Vec::new(),
        |tape, params, rng| model.loss(tape, params, &world.itm_training_batch(recipe.batch, rng), rng),
        |params| model.validation(params, &val),
    )?;
    if report.interrupted {
        return Ok(());
    }

    // Does it read the image? Then pictures.
    show_grounding(&model, &params, &world)?;
    write_filled_captions(&model, &params, &world, &recipe.out, 4)?;
    write_attention(&model, &params, &world, &recipe.out)
}
