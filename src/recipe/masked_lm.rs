//! A fresh masked LM of a recipe's shape, trained on windows of a corpus: what the bias and
//! scaling examples share with the `mlm` example's training (which spells the same steps out).

use super::Recipe;
use crate::data::{Corpus, Windows};
use crate::objectives::MaskedLm;
use crate::params::Params;
use crate::trainer::TrainReport;
use std::collections::BTreeMap;

impl Recipe {
    /// Build a masked LM (no head transform) from the recipe's seed, train it on `train`, and
    /// validate on the recipe's validation set; `metadata` is added to the model's own in the
    /// checkpoint. Returns the model, its trained weights and the trainer's report.
    pub fn train_masked_lm(
        &self,
        data: &Corpus,
        train: &Windows,
        metadata: BTreeMap<String, String>,
    ) -> Result<(MaskedLm, Params, TrainReport), String> {
        let mut params = Params::new();
        let config = self.model_config(data)?;
        let model = MaskedLm::new(&mut params, &config, &data.tokenizer, false, &mut self.init_rng())?;
        let val = self.validation_set(data)?;
        let mut all = model.metadata();
        all.extend(metadata);
        let report = self.train(
            data,
            &mut params,
            &all,
            |tape, params, rng| model.loss(tape, params, &train.batch(self.batch, rng), rng),
            |params| model.evaluate(params, &val),
        )?;
        Ok((model, params, report))
    }
}
