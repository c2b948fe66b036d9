//! The self-supervised objectives. Each module opens with its loss formula and its source, and
//! its variable names follow the formula.
//!
//! - [`mlm`]: masked language modelling, L = -sum_{i in M} log P(x_i | X_masked) (BERT), and
//!   [`mlm_model`], the encoder plus MLM head it trains.

pub mod mlm;
pub mod mlm_model;

pub use mlm::{mask_tokens, mlm_loss, num_predictions, Branch, MaskedBatch, MlmConfig, MlmVocab, Selection};
pub use mlm_model::{MaskedLm, MlmEvaluation};
