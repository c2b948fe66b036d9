//! # 13. Fine-tuning: does pretraining help a downstream task?
//!
//! Speaker attribution: read a speech of Tiny Shakespeare without its name line and say which
//! of the 10 most frequent speakers speaks it (`src/data/speakers.rs`). A linear head on the
//! mean of the encoder's states, every weight fine-tuned at a lower learning rate than
//! pretraining, early stopping on validation, test accuracy once (`src/objectives/classify.rs`,
//! `src/recipe/finetune.rs`).
//!
//!   cargo run --release --example mlm                      (first: the pretrained encoder)
//!   cargo run --release --example finetune -- --init runs/mlm/checkpoint.safetensors
//!
//! Compared under the same budget and seeds: (a) the pretrained encoder, (b) the same
//! architecture from random initialisation, (c) the frozen pretrained encoder with only the head
//! trained (a linear probe; the same probe on a random encoder is its control), and (d)
//! encoders given with `--bert` or `--simcse`. The learning
//! curve (test accuracy against labelled speeches) of (a) and (b) goes to
//! `runs/finetune/learning_curve.svg`.

use microlm::checkpoint::{check_compatible, load_encoder, Feeds};
use microlm::cli::Flags;
use microlm::data::speakers::speaker_task;
use microlm::learning_curve::learning_curve_svg;
use microlm::recipe::finetune::{describe, mean_test_accuracy, print_table, FinetuneConfig, FinetuneFlags, Start};

fn main() {
    microlm::cli::main(run);
}

fn run() -> Result<(), String> {
    let mut flags = Flags::from_env()?;
    let f = FinetuneFlags::read(&mut flags)?;
    if flags.help_or_finish("finetune")? {
        return Ok(());
    }
    let (counts, seeds) = (&f.counts, f.seeds);

    // The task, and the pretrained encoder.
    let text = std::fs::read_to_string(&f.corpus).map_err(|e| format!("{}: {e}", f.corpus.display()))?;
    let task = speaker_task(&text, 10)?;
    describe(&task);
    let init = Feeds {
        flag: "init",
        objectives: &["mlm"],
        ..Feeds::default()
    };
    check_compatible(&f.init, &init).map_err(|e| format!("{e} (make it with: cargo run --release --example mlm)"))?;
    let (encoder, enc_params, tok) = load_encoder(&f.init, 0.1)?;
    f.check_others(&tok, encoder.config.max_len)?; // before any run, not after (a)-(c)
    f.check_memory(&encoder.config, enc_params.num_elements())?;
    let config = FinetuneConfig {
        max_len: encoder.config.max_len,
        ..f.config
    };
    let (pretrained, random) = (Start::Pretrained(&encoder, &enc_params), Start::Random(&encoder.config));

    // (a) and (b) at every label count; (c) and (d) with every label.
    let mut curves = vec![
        ("(a) pretrained".to_string(), vec![]),
        ("(b) random init".to_string(), vec![]),
    ];
    for n in counts.iter().map(|&n| n.min(task.train.len())) {
        for (k, start) in [pretrained, random].into_iter().enumerate() {
            println!("{}, fine-tuned on {n} labelled speeches:", curves[k].0);
            let acc = mean_test_accuracy(start, &task, &tok, n, &config, seeds)?;
            curves[k].1.push((n as f64, acc));
        }
    }
    let all = task.train.len();
    let probe = FinetuneConfig {
        frozen: true,
        lr: f.probe_lr,
        ..config.clone()
    };
    let mut rows = vec![];
    for (name, start) in [
        ("(c) linear probe", pretrained),
        ("(c) probe of a random encoder", random),
    ] {
        println!("{name}, {all} speeches, only the head trained:");
        rows.push((
            name.to_string(),
            mean_test_accuracy(start, &task, &tok, all, &probe, seeds)?,
        ));
    }
    for (name, path) in &f.others {
        let (enc, p, _) = load_encoder(path, 0.1)?;
        println!("(d) {name}, fine-tuned on {all} speeches:");
        rows.push((
            format!("(d) {name}"),
            mean_test_accuracy(Start::Pretrained(&enc, &p), &task, &tok, all, &config, seeds)?,
        ));
    }

    // The table and the picture.
    print_table(&task, counts, &curves, &rows, seeds);
    std::fs::create_dir_all(&f.out).map_err(|e| format!("{}: {e}", f.out.display()))?;
    let path = f.out.join("learning_curve.svg");
    let baseline = Some(("majority class", task.majority_baseline(&task.test)));
    let svg = learning_curve_svg("speaker attribution, 10 speakers", &curves, baseline);
    std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("learning curve: {}", path.display());
    Ok(())
}
