//! What ELECTRA's discriminator learned, measured (`electra.rs` trains it):
//!
//! - [`DetectionTally`]: over validation batches, the discriminator's accuracy on replaced
//!   positions (d_i = 1), on original ones (d_i = 0) and over all of N, beside the baseline it
//!   must beat, always answering "original" (accuracy 0 on replaced, 1 on original, the
//!   original share overall); and the generator's MLM loss. D answers "replaced" where
//!   P(replaced) = sigma(z_i) > 1/2, that is z_i > 0.
//! - [`detection_table`]: those figures as the example prints them.
//!
//! (`inspect::show_replaced_tokens` shows held-out sequences as the discriminator reads them.)

use super::Evaluation;

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
    /// Add one forward pass: the generator's summed cross-entropy over `generator_count` masked
    /// positions, the summed L_D, and D's logit `z` and label `d` at every position.
    pub fn add(
        &mut self,
        (generator_sum, generator_count): (f64, usize),
        detection_sum: f64,
        z: impl IntoIterator<Item = f32>,
        d: &[Option<usize>],
    ) {
        self.generator_sum += generator_sum;
        self.generator_count += generator_count;
        self.detection_sum += detection_sum;
        for (z, d) in z.into_iter().zip(d) {
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

/// The discriminator's accuracies from an [`Evaluation`] of `Electra::evaluate`, beside the
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
