//! # 14. Scaling: bigger is better, and data hungry
//!
//! Masked-LM training (the mlm example's model and recipe, at 800 updates of 16 x 64 tokens:
//! `scaling::sweep_recipe`) of four sizes on the same tokens, then one size on less and less
//! unique data; about ten minutes on two cores.
//!
//!   cargo run --release --example scaling
//!   cargo run --release --example scaling -- --steps 100 --sizes 32x1,64x2 --fractions 2,1
//!
//! 1. Sizes (`--sizes`, d_model x layers, 32-wide heads) each read the same D tokens. The table
//!    gives every parameter, Kaplan's N (without embedding and output tables), C = 6 N D and
//!    the validation loss; then the fits L = a N^-alpha over the sizes and L = a C^-alpha over
//!    the compute frontier (the lowest validation loss any size had reached at each compute).
//!    `runs/scaling/size.svg` draws both.
//! 2. Data (`--d-model` x `--layers`): `--data-steps` updates on the first 1/256, 1/16, 1/8,
//!    1/4, 1/2 and all of the training split (`--fractions`), so the smaller parts repeat; the
//!    step of the lowest validation loss says when repetition stopped helping.
//!    `runs/scaling/data.svg`.

use microlm::cli::{Domain, Flags};
use microlm::data::{Corpus, Windows};
use microlm::recipe::Recipe;
use microlm::scaling::{self, Run, Shape};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    // Every run starts anew: no --resume.
    let recipe = Recipe::read_without(&mut flags, scaling::sweep_recipe(), &["resume"])?;
    let sizes = flags.arg("sizes", "32x1,64x2,128x3,256x4".to_string(), "d_model x layers, ...")?;
    let data_steps = flags.arg_in(
        "data-steps",
        recipe.steps,
        Domain::at_least(1),
        "updates of each run of the data part",
    )?;
    let fractions = flags.arg("fractions", "256,16,8,4,2,1".to_string(), "data part: 1/n splits")?;
    if flags.help_or_finish("scaling")? {
        return Ok(());
    }
    let data = recipe.load_data()?;

    // 1. Bigger is better: every size reads the same D tokens.
    let mut runs = Vec::new();
    for shape in Shape::parse_list(&sizes)? {
        runs.push(train_mlm(&shape.label(), &shape.recipe(&recipe), &data, &data.train)?);
    }
    println!("\nsize sweep, D = {} tokens each:", runs[0].tokens());
    print!("{}", scaling::size_table(&runs));
    let fits = scaling::fit_sizes(&runs)?;
    print!("{fits}");
    let size_svg = recipe.out.join("size.svg");
    std::fs::write(&size_svg, scaling::size_svg(&runs, &fits)).map_err(|e| e.to_string())?;

    // 2. Data hungry: one size, the same number of updates, on less and less unique data.
    let mut runs = Vec::new();
    for denominator in scaling::parse_denominators(&fractions)? {
        let ids = scaling::train_fraction(&data, 1.0 / denominator as f64)?;
        let r = scaling::data_recipe(&recipe, data_steps, denominator);
        runs.push(train_mlm(&format!("1/{denominator}"), &r, &data, ids)?);
    }
    println!(
        "
data part, d{} L{}:",
        recipe.d_model, recipe.layers
    );
    print!("{}", scaling::data_table(&runs));
    let data_svg = recipe.out.join("data.svg");
    std::fs::write(&data_svg, scaling::data_svg(&runs)).map_err(|e| e.to_string())?;
    println!("\ncharts: {} and {}", size_svg.display(), data_svg.display());
    println!("scale: the papers' models have 10^5-10^9 non-embedding parameters and read up to 10^10 tokens;");
    println!("these have 10^4-10^6 and read 10^6, so the exponents here are a sketch, not a measurement");
    Ok(())
}

/// Train the masked LM of `recipe` on windows of the training `ids`, as the mlm example does.
fn train_mlm(label: &str, recipe: &Recipe, data: &Corpus, ids: &[usize]) -> Result<Run, String> {
    println!("\n== {label}: {} training tokens ==", ids.len());
    let train = Windows::new(ids, recipe.seq_len, "the training tokens")?;
    let metadata = [("data.train_tokens".to_string(), ids.len().to_string())].into();
    let (_, params, report) = recipe.train_masked_lm(data, &train, metadata)?;
    if report.interrupted {
        return Err("interrupted: the scaling runs do not resume".into());
    }
    Run::of(label, recipe, &params, &report, ids.len())
}
