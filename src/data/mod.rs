//! Data, the first stage of every run: a corpus is read and split, its tokens are cut into
//! batches, and a [`Batch`] is what every model takes.
//!
//! - `corpus.rs`: [`load_text`], [`split`], [`fingerprint`], and [`Corpus`], a corpus read,
//!   tokenized and split.
//! - `windows.rs`: [`Windows`], random windows of consecutive tokens.
//! - `batch.rs`: [`Batch`], B sequences of token ids with optional lengths and segment ids.
//! - `documents.rs`: documents and sentences cut from the text, for sentence-pair objectives,
//!   and the short line documents the denoisers read.
//! - `plays.rs`: play boundaries read off the speaker names, and the documents of whole
//!   sentences, within one play each, that sentence pairs are built from.
//! - `pairs.rs`: next-sentence and sentence-order prediction pairs built from documents, and
//!   their batches.
//! - `bart_noise.rs`: BART's noise functions (masking, deletion, infilling, permutation,
//!   rotation), for the denoising objective.
//! - `span_lengths.rs`: the Poisson span lengths of BART's text infilling.
//! - `whole_words.rs`: whole-word text infilling, spans that start and end at word boundaries.
//! - `span_corruption.rs`: T5's span corruption with sentinels.
//! - `labelled.rs`: labelled texts and the downstream [`labelled::TextTask`] that fine-tuning
//!   reads; `speakers.rs` (speaker attribution) and `acceptability.rs` (a real line or the
//!   same line corrupted) build one from the corpus.
//! - `shapes/`: the shapes world, generated images of coloured shapes with their captions,
//!   for multimodal pretraining; `image_svg.rs` draws its images (and patch weights over them).

pub mod acceptability;
pub mod bart_noise;
pub mod batch;
pub mod bias_corpus;
pub mod corpus;
pub mod documents;
pub mod image_svg;
pub mod labelled;
pub mod pairs;
pub mod plays;
pub mod shapes;
pub mod span_corruption;
pub mod span_lengths;
pub mod speakers;
pub mod speeches;
pub mod whole_words;
pub mod windows;

pub use batch::Batch;
pub use corpus::{fingerprint, load_text, split, Corpus};
pub use documents::{tokenize_documents, Document};
pub use pairs::{make_pairs, NspLabel, Pair, PairBatch, PairTask, Span};
pub use windows::Windows;
