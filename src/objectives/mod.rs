//! The self-supervised objectives. Each module opens with its loss formula and its source, and
//! its variable names follow the formula.
//!
//! - [`mlm`]: masked language modelling, L = -sum_{i in M} log P(x_i | X_masked) (BERT), and
//!   [`mlm_model`], the encoder plus MLM head it trains.
//! - [`clm`]: causal language modelling, L = -sum_t log P(x_{t+1} | x_{<=t}) (GPT), trained on
//!   the decoder-only stack `nn::Decoder`.

pub mod clm;
pub mod mlm;
pub mod mlm_model;

pub use mlm::{mask_tokens, mlm_loss, num_predictions, Branch, MaskedBatch, MlmConfig, MlmVocab, Selection};
pub use mlm_model::{MaskedLm, MlmEvaluation};
