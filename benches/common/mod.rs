//! Code the benches share. Cargo builds each `benches/*.rs` as its own crate, so a bench takes
//! this in with `mod common;`; files in a subdirectory are not benches of their own.

// Each bench uses part of what is here (transformer.rs the toy size only, growth.rs every size),
// so what one of them leaves unused is not dead code.
#![allow(dead_code)]

pub mod toy_step;
