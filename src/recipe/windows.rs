//! Training on random windows of a text corpus: what the `mlm`, `clm` and `electra` examples
//! share. Each update draws a fresh batch of windows; every validation scores the same fixed
//! batches.

use super::Recipe;
use crate::data::{Batch, Corpus};
use crate::params::Params;
use crate::tape::{Tape, Var};
use crate::trainer::{Evaluation, TrainReport};
use rand::rngs::StdRng;
use std::collections::BTreeMap;

impl Recipe {
    /// [`Recipe::train`] on `data`'s windows: each update's `loss` gets a fresh batch of
    /// `batch` windows of `seq_len` tokens from the training split (drawn from the update's
    /// rng, so a resumed run draws the same), and `evaluate` gets the fixed validation set
    /// ([`Recipe::validation_set`]). Returns the trainer's report and that validation set, for
    /// the example's closing look at what the model learned.
    pub fn train_on_windows<L: Into<Var>>(
        &self,
        data: &Corpus,
        params: &mut Params,
        model_metadata: &BTreeMap<String, String>,
        mut loss: impl FnMut(&mut Tape, &Params, &Batch, &mut StdRng) -> L,
        mut evaluate: impl FnMut(&Params, &[Batch]) -> Evaluation,
    ) -> Result<(TrainReport, Vec<Batch>), String> {
        let train = data.train_windows()?;
        let val = self.validation_set(data)?;
        let report = self.train(
            data,
            params,
            model_metadata,
            |tape, params, rng| loss(tape, params, &train.batch(self.batch, rng), rng),
            |params| evaluate(params, &val),
        )?;
        Ok((report, val))
    }
}
