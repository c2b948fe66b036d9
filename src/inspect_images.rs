//! Looking at what the image-caption models learned, printed and drawn the way the `mmlm` and
//! `clip` examples show them: whether masked words follow the image, captions filled in by the
//! model, where a masked word looks in the picture, and retrieval between the two towers.

use crate::data::image_svg::{heatmap_svg, image_svg};
use crate::objectives::grounding::{fill_caption, word_scores, ImageCondition};
use crate::objectives::image_text::ImageTextBatch;
use crate::objectives::Mmlm;
use crate::params::Params;
use crate::recipe::ShapesWorld;
use std::path::Path;

/// Print masked colour and shape accuracy on every held-out pair under the three image
/// conditions of `objectives::grounding`, with the text-only priors.
pub fn show_grounding(model: &Mmlm, params: &Params, world: &ShapesWorld) -> Result<(), String> {
    let pairs = &world.held_out;
    println!("\nmasked words of {} held-out captions:", pairs.len());
    println!("| image | colour | shape | = the caption's own word |\n|---|---|---|---|");
    for (name, condition) in [
        ("(a) true", ImageCondition::True),
        ("(b) blank", ImageCondition::Blank),
        ("(c) swapped: scored against its words", ImageCondition::Swapped),
    ] {
        let s = word_scores(model, params, &world.tokenizer, pairs, condition, world.text_len)?;
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            s.colour(),
            s.shape(),
            s.own_word_rate()
        );
    }
    println!("| text-only prior | {:.3} | {:.3} | |", 1.0 / 7.0, 1.0 / 4.0);
    let objects: usize = pairs.iter().map(|e| e.scene.objects().len()).sum();
    println!("({objects} colour words and {objects} shape words, each masked alone)");
    Ok(())
}

/// Write the first `n` held-out pictures to `dir/pair_{k}.svg`, titled with the caption the
/// model fills in, and print the captions.
pub fn write_filled_captions(
    model: &Mmlm,
    params: &Params,
    world: &ShapesWorld,
    dir: &Path,
    n: usize,
) -> Result<(), String> {
    println!("\nfilled in by the model ([word] predicted, ! wrong):");
    for (k, e) in world.held_out.iter().take(n).enumerate() {
        let filled = fill_caption(model, params, &world.tokenizer, e, &e.image, world.text_len)?;
        let path = dir.join(format!("pair_{k}.svg"));
        write(&path, &image_svg(&e.image, 8, &filled))?;
        println!("  {}: {filled}", path.display());
    }
    Ok(())
}

/// For the first held-out two-object scene, mask its first colour word and draw the last
/// layer's attention from that position to each patch over the picture: `dir/attention.svg`.
pub fn write_attention(model: &Mmlm, params: &Params, world: &ShapesWorld, dir: &Path) -> Result<(), String> {
    let e = world
        .held_out
        .iter()
        .find(|e| e.scene.second.is_some())
        .ok_or("no two-object scene among the held-out pairs")?;
    let batch = ImageTextBatch::new(&[e.caption.as_str()], &[&e.image], &world.tokenizer, world.text_len)?;
    let query = 3; // [CLS] a large red ...: the first colour word sits at text position 3
    let mut text = batch.text.clone();
    text.ids[query] = world.tokenizer.specials().mask;
    let maps = model.attention_to_patches(params, &batch.with_text(text), query);
    let last = maps.last().ok_or("the model has no layers")?;
    let title = format!(
        "\"{}\": the masked first colour word's attention (last layer)",
        e.caption
    );
    let path = dir.join("attention.svg");
    write(&path, &heatmap_svg(&e.image, last, world.patch, 8, &title)?)?;
    // Which patches the first object's box touches, and the share of the attention to the
    // image that lands on them.
    let (o, r, p) = (&e.scene.first, e.scene.first.size.radius(), world.patch as f32);
    let grid = e.image.size / world.patch;
    let cells = |c: f32| ((c - r) / p).floor() as usize..=(((c + r) / p).ceil() as usize - 1);
    let own: Vec<usize> = cells(o.cy)
        .flat_map(|row| cells(o.cx).map(move |col| row * grid + col))
        .collect();
    let share = own.iter().map(|&j| last[j]).sum::<f32>() / last.iter().sum::<f32>();
    println!(
        "  {}: of the attention the masked colour pays the picture, {:.0}% lands on the {} of {} \
         patches its object covers",
        path.display(),
        100.0 * share,
        own.len(),
        last.len()
    );
    Ok(())
}

/// Write `text` to `path`; the error names the file.
fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
