//! Optimizers: they read a [`Gradients`](crate::Gradients) and update a
//! [`Params`](crate::Params) store in place.

pub mod adamw;

pub use adamw::AdamW;
