//! What ELECTRA's discriminator learned, measured and shown (`electra.rs` trains it):
//!
//! - [`DetectionTally`]: over validation batches, the discriminator's accuracy on replaced
//!   positions (d_i = 1), on original ones (d_i = 0) and over all of N, beside the baseline it
//!   must beat, always answering "original" (accuracy 0 on replaced, 1 on original, the
//!   original share overall); and the generator's MLM loss. D answers "replaced" where
//!   P(replaced) = sigma(z_i) > 1/2, that is z_i > 0.
//! - [`show_replaced_tokens`]: held-out sequences as the discriminator reads them, the
//!   replaced positions marked and P(replaced) at every position as a digit.

use super::electra::{Electra, ElectraStep};
use super::Evaluation;
use crate::data::Batch;
use crate::params::Params;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Sums over validation batches, turned into an [`Evaluation`] at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetectionTally {
    generator_sum: f64,
    generator_count: usize,
    detection_sum: f64,
    /// (positions, of which D was right) with d = 1.
    replaced: (usize, usize),
    /// The same with d = 0.
    original: (usize, usize),
}

impl DetectionTally {
    /// Add one forward pass (made on `tape`).
    pub fn add(&mut self, tape: &Tape, step: &ElectraStep) {
        let l = &step.loss;
        self.generator_sum += tape.scalar(l.generator.sum) as f64;
        self.generator_count += l.generator.count;
        self.detection_sum += tape.scalar(l.discriminator.sum) as f64;
        for (&z, d) in tape.value(step.z_d).iter().zip(&step.d) {
            let said_replaced = z > 0.0;
            match d {
                Some(1) => self.replaced = (self.replaced.0 + 1, self.replaced.1 + said_replaced as usize),
                Some(_) => self.original = (self.original.0 + 1, self.original.1 + !said_replaced as usize),
                None => {}
            }
        }
    }

    /// L = L_MLM(G) + `lambda` L_D as the loss; D's accuracy over N; and as extra measures
    /// `generator_loss`, `detection_loss`, `acc_replaced`, `acc_original`, `replaced_share` and
    /// `always_original` (the baseline's accuracy over N).
    pub fn finish(self, lambda: f64) -> Evaluation {
        let per = |x: f64, n: usize| if n == 0 { 0.0 } else { x / n as f64 };
        let n = self.replaced.0 + self.original.0;
        let generator = per(self.generator_sum, self.generator_count);
        let detection = per(self.detection_sum, n);
        Evaluation {
            loss: generator + lambda * detection,
            accuracy: Some(per((self.replaced.1 + self.original.1) as f64, n)),
            count: n,
            extra: vec![
                ("generator_loss".into(), generator),
                ("detection_loss".into(), detection),
                ("acc_replaced".into(), per(self.replaced.1 as f64, self.replaced.0)),
                ("acc_original".into(), per(self.original.1 as f64, self.original.0)),
                ("replaced_share".into(), per(self.replaced.0 as f64, n)),
                ("always_original".into(), per(self.original.0 as f64, n)),
            ],
        }
    }
}

/// Print the discriminator's view of the first `sequences` sequences of `batch` (corrupted with
/// seed 0, as the validation pass corrupts its first batch), `width` tokens a row: the text it
/// reads (newlines as ¶), `^` under each replaced token, P(replaced) as a digit (floor of 10 p;
/// `.` below 0.1), and the replacements with the original token and P(replaced).
pub fn show_replaced_tokens(
    model: &Electra,
    params: &Params,
    tokenizer: &Tokenizer,
    batch: &Batch,
    sequences: usize,
    width: usize,
) {
    let mut tape = Tape::no_grad();
    let step = model.forward(&mut tape, params, batch, &mut StdRng::seed_from_u64(0));
    let z = tape.value(step.z_d).iter().copied().collect::<Vec<f32>>();
    let p = |i: usize| 1.0 / (1.0 + (-z[i] as f64).exp());
    let shown = |id: usize| match tokenizer.decode(&[id]).replace('\n', "¶") {
        s if s.is_empty() => "□".to_string(),
        s => s,
    };
    println!(
        "\nthe discriminator on validation text (^ = replaced by the generator; P(replaced) as a digit, . below 0.1):"
    );
    let t = batch.seq_len;
    for b in 0..sequences.min(batch.batch) {
        let n = batch.length(b);
        for start in (0..n).step_by(width.max(1)) {
            let (mut text, mut marks, mut digits) = (String::new(), String::new(), String::new());
            for i in b * t + start..b * t + (start + width).min(n) {
                let token = shown(step.x_hat.ids[i]);
                let pad = token.chars().count().saturating_sub(1);
                let digit = match (10.0 * p(i)).floor() as u32 {
                    0 => '.',
                    k => char::from_digit(k.min(9), 10).expect("a digit"),
                };
                text += &token;
                marks += &format!("{}{}", if step.d[i] == Some(1) { '^' } else { ' ' }, " ".repeat(pad));
                digits += &format!("{digit}{}", " ".repeat(pad));
            }
            println!("  {text}\n  {}\n  {digits}", marks.trim_end());
        }
        let replacements: Vec<String> = (b * t..b * t + n)
            .filter(|&i| step.d[i] == Some(1))
            .map(|i| format!("{}->{} {:.2}", shown(batch.ids[i]), shown(step.x_hat.ids[i]), p(i)))
            .collect();
        println!(
            "  replaced (original->sample P(replaced)): {}\n",
            replacements.join(", ")
        );
    }
}

/// The discriminator's accuracies from an [`Evaluation`] of [`Electra::evaluate`], beside the
/// always-original baseline, and the generator's MLM loss, as a small table.
pub fn detection_table(e: &Evaluation) -> String {
    let get = |name: &str| e.extra.iter().find(|(n, _)| n == name).map_or(f64::NAN, |x| x.1);
    let (replaced, original) = (get("acc_replaced"), get("acc_original"));
    let all = e.accuracy.unwrap_or(f64::NAN);
    format!(
        "replaced-token detection on {} validation positions ({:.1}% replaced):\n\n\
         | | replaced | original | all |\n|---|---|---|---|\n\
         | discriminator | {replaced:.3} | {original:.3} | {all:.3} |\n\
         | always \"original\" (baseline) | 0.000 | 1.000 | {:.3} |\n\n\
         generator: masked-token loss {:.4} nats; discriminator: L_D {:.4}",
        e.count,
        100.0 * get("replaced_share"),
        get("always_original"),
        get("generator_loss"),
        get("detection_loss"),
    )
}
