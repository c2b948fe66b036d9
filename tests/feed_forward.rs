//! The fused ops against the op-by-op paths they replace, bit for bit (values and every
//! gradient):
//! - `Tape::feed_forward` (bias and GELU in the first product's epilogue, bias and residual in
//!   the second's, a = GELU(h) recomputed in backward) against linear, gelu, linear, add, on
//!   shapes with partial tiles, a product long enough to be cut between threads, and a d_ff
//!   past thin_gemm's K limit (sgemm with the epilogue after it);
//! - `Tape::linear_residual` (the add in the epilogue) against linear then add.

use microlm::ops::{FeedForwardWeights, FusedActivation};
use microlm::{Tape, Var};
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn uniform(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

/// Forward and backward of one path; returns the output and the gradients of every input.
fn run(fused: bool, lead: &[usize], d: usize, d_ff: usize, act: FusedActivation, residual: bool) -> Vec<ArrayD<f32>> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut tape = Tape::new();
    let x_shape = [lead, &[d]].concat();
    let x = tape.input(uniform(&x_shape, &mut rng));
    let weights = FeedForwardWeights {
        w1: tape.input(uniform(&[d_ff, d], &mut rng)),
        b1: tape.input(uniform(&[d_ff], &mut rng)),
        w2: tape.input(uniform(&[d, d_ff], &mut rng)),
        b2: tape.input(uniform(&[d], &mut rng)),
    };
    let r = tape.input(uniform(&x_shape, &mut rng));
    let r = residual.then_some(r);
    let y = if fused {
        tape.feed_forward(x, weights, act, r)
    } else {
        tape.feed_forward_reference(x, weights, act, r)
    };
    let out = tape.value(y).to_owned();
    // L = sum(y * c) for a fixed random c, so every output element has its own gradient.
    let c = tape.constant(uniform(&x_shape, &mut rng));
    let yc = tape.mul(y, c);
    let loss = tape.sum_all(yc);
    let grads = tape.backward(loss);
    let mut all = vec![out];
    let vars: Vec<Var> = [x, weights.w1, weights.b1, weights.w2, weights.b2]
        .into_iter()
        .chain(r)
        .collect();
    for v in vars {
        all.push(grads.wrt(v).expect("every input gets a gradient").clone());
    }
    all
}

#[test]
fn fused_feed_forward_gives_the_same_bits_as_op_by_op() {
    let names = ["y", "dx", "dW1", "db1", "dW2", "db2", "dr"];
    // (leading axes, d, d_ff): partial tiles; long enough to be split between threads; K past 512.
    let shapes: [(&[usize], usize, usize); 3] = [(&[3, 13], 20, 72), (&[4, 75], 64, 256), (&[3, 11], 24, 600)];
    for (lead, d, d_ff) in shapes {
        for act in [FusedActivation::Gelu, FusedActivation::GeluTanh] {
            for residual in [true, false] {
                let fused = run(true, lead, d, d_ff, act, residual);
                let reference = run(false, lead, d, d_ff, act, residual);
                assert_eq!(fused.len(), reference.len());
                for ((f, r), name) in fused.iter().zip(&reference).zip(names) {
                    assert_eq!(f.shape(), r.shape(), "{name}");
                    let same = f.iter().zip(r).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{name} differs for {lead:?} d {d} d_ff {d_ff} {act:?} residual {residual}"
                    );
                }
            }
        }
    }
}

/// `linear_residual` (the add in the product's epilogue) against `add(r, linear(x, W, b))`:
/// the same bits, values and gradients, for one row (the row-times-matrix path), partial
/// tiles, and a product cut between threads.
#[test]
fn linear_residual_gives_the_same_bits_as_linear_then_add() {
    for (lead, d_in, out) in [(&[1usize][..], 24, 40), (&[3, 13][..], 20, 36), (&[4, 75][..], 128, 64)] {
        for bias in [true, false] {
            let run = |fused: bool| {
                let mut rng = StdRng::seed_from_u64(3);
                let mut tape = Tape::new();
                let x = tape.input(uniform(&[lead, &[d_in]].concat(), &mut rng));
                let w = tape.input(uniform(&[out, d_in], &mut rng));
                let b = tape.input(uniform(&[out], &mut rng));
                let r = tape.input(uniform(&[lead, &[out]].concat(), &mut rng));
                let b = bias.then_some(b);
                let y = if fused {
                    tape.linear_residual(x, w, b, r)
                } else {
                    let l = tape.linear(x, w, b);
                    tape.add(r, l)
                };
                let mut all = vec![tape.value(y).to_owned()];
                let c = tape.constant(uniform(&[lead, &[out]].concat(), &mut rng));
                let yc = tape.mul(y, c);
                let loss = tape.sum_all(yc);
                let grads = tape.backward(loss);
                for v in [x, w, r].into_iter().chain(b) {
                    all.push(grads.wrt(v).unwrap().clone());
                }
                all
            };
            let (fused, reference) = (run(true), run(false));
            for (i, (f, r)) in fused.iter().zip(&reference).enumerate() {
                let same = f.shape() == r.shape() && f.iter().zip(r).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "output/gradient {i} differs for {lead:?} x {d_in} -> {out}, bias {bias}"
                );
            }
        }
    }
}
