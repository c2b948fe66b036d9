//! The electra example's opening figure: the training compute of its run beside the mlm
//! example's, counted as [`crate::objectives::compute`] counts it.

use super::Recipe;
use crate::data::Corpus;
use crate::objectives::compute::equal_compute_report;
use crate::objectives::mlm::num_predictions;
use crate::objectives::{Electra, MaskedLm, Selection};
use crate::params::Params;

impl Recipe {
    /// A few lines comparing the training compute of this recipe's run of `model` with the mlm
    /// example's (its default recipe's masked LM on the same `data`, 15% of the positions
    /// masked in both): what makes the electra example's updates an equal-compute comparison.
    pub fn electra_compute_report(&self, data: &Corpus, model: &Electra) -> Result<String, String> {
        let mlm_recipe = Recipe::default();
        let mlm_config = mlm_recipe.model_config(data)?;
        let mlm = MaskedLm::new(
            &mut Params::new(),
            &mlm_config,
            &data.tokenizer,
            false,
            &mut self.init_rng(),
        )?;
        // Masked positions per sequence of seq_len tokens.
        let k = |s: Selection| match s {
            Selection::PerSequence { max_predictions } => num_predictions(self.seq_len, 0.15, max_predictions),
            Selection::Independent => (0.15 * self.seq_len as f64).round() as usize,
        };
        let electra = (model, k(model.corruption.selection), self.steps);
        let masked_lm = (&mlm, k(mlm.corruption.selection), mlm_recipe.steps);
        Ok(equal_compute_report(electra, masked_lm, self.batch, self.seq_len))
    }
}
