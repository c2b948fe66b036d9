//! The tape's contract: how gradients flow, accumulate, and refuse to flow.

use microlm::{Params, Tape, Tensor};
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap()
}

#[test]
fn a_value_used_twice_gets_both_contributions() {
    // y = x * x + x, so dy/dx = 2x + 1 = 7 at x = 3.
    let mut tape = Tape::new();
    let x = tape.input(t(&[1], &[3.0]));
    let sq = tape.mul(x, x);
    let y = tape.add(sq, x);
    let grads = tape.backward(y);
    assert_eq!(grads.wrt(x).unwrap()[[0]], 7.0);
}

#[test]
fn a_parameter_put_on_the_tape_twice_accumulates() {
    // L = sum(w) + sum(2 w): dL/dw = 3 everywhere.
    let mut params = Params::new();
    let w = params.add("w", t(&[2], &[1.0, -1.0]));
    let mut tape = Tape::new();
    let a = tape.param(&params, w);
    let b = tape.param(&params, w);
    let b2 = tape.mul_scalar(b, 2.0);
    let (sa, sb) = (tape.sum_all(a), tape.sum_all(b2));
    let loss = tape.add(sa, sb);
    let grads = tape.backward(loss);
    assert_eq!(grads.param(w).unwrap().as_slice().unwrap(), &[3.0, 3.0]);
}

/// L(w) = sum((x w)^2) for a small x, as a function we can run twice.
fn quad_loss(tape: &mut Tape, params: &Params, w: microlm::ParamId, x: &[f32]) -> microlm::Var {
    let xv = tape.constant(t(&[1, 2], x));
    let wv = tape.param(params, w);
    let y = tape.matmul(xv, wv);
    let y2 = tape.mul(y, y);
    tape.sum_all(y2)
}

#[test]
fn two_backward_passes_do_not_double_and_accumulation_is_explicit() {
    let mut params = Params::new();
    let w = params.add("w", t(&[2, 1], &[0.5, -0.25]));
    // Two separate passes on the same data give equal, not doubled, gradients.
    let g1 = {
        let mut tape = Tape::new();
        let l = quad_loss(&mut tape, &params, w, &[1.0, 2.0]);
        tape.backward(l)
    };
    let g2 = {
        let mut tape = Tape::new();
        let l = quad_loss(&mut tape, &params, w, &[1.0, 2.0]);
        tape.backward(l)
    };
    assert_eq!(g1.param(w), g2.param(w));
    // By hand: y = 1*0.5 + 2*(-0.25) = 0, so dL/dw = 2 y x = 0. Use other data for a non-zero check.
    let grad_of = |x: &[f32]| {
        let mut tape = Tape::new();
        let l = quad_loss(&mut tape, &params, w, x);
        tape.backward(l)
    };
    // x = (2, 1): y = 1 - 0.25 = 0.75, dL/dw = 2 * 0.75 * (2, 1) = (3, 1.5).
    let ga = grad_of(&[2.0, 1.0]);
    assert_eq!(ga.param(w).unwrap().as_slice().unwrap(), &[3.0, 1.5]);
    // x = (0, 4): y = -1, dL/dw = 2 * -1 * (0, 4) = (0, -8).
    let gb = grad_of(&[0.0, 4.0]);
    // Accumulating the two micro-batches equals the gradient of the summed loss.
    let mut acc = ga.clone();
    acc.accumulate(gb);
    assert_eq!(acc.param(w).unwrap().as_slice().unwrap(), &[3.0, -6.5]);
    let summed = {
        let mut tape = Tape::new();
        let la = quad_loss(&mut tape, &params, w, &[2.0, 1.0]);
        let lb = quad_loss(&mut tape, &params, w, &[0.0, 4.0]);
        let l = tape.add(la, lb);
        tape.backward(l)
    };
    assert_eq!(acc.param(w), summed.param(w));
    // The first pass's gradients were not touched by the accumulation.
    assert_eq!(ga.param(w).unwrap().as_slice().unwrap(), &[3.0, 1.5]);
}

#[test]
fn micro_batches_with_cross_entropy_sums_match_the_full_batch_mean() {
    // Logits z = x w for 4 positions; targets with one ignored. The full-batch mean loss's
    // gradient equals the sum of the micro-batches' *sum* gradients divided by the global count.
    let mut params = Params::new();
    let w = params.add("w", t(&[2, 3], &[0.1, -0.2, 0.3, 0.5, 0.0, -0.4]));
    let x = t(&[4, 2], &[1.0, 2.0, -1.0, 0.5, 0.3, 0.3, 2.0, -1.0]);
    let targets = [Some(0), Some(2), None, Some(1)];
    let full = {
        let mut tape = Tape::new();
        let xv = tape.constant(x.clone());
        let wv = tape.param(&params, w);
        let z = tape.matmul(xv, wv);
        let ce = tape.cross_entropy(z, &targets);
        assert_eq!(ce.count, 3);
        tape.backward(ce.mean)
    };
    let micro = |rows: std::ops::Range<usize>| {
        let mut tape = Tape::new();
        let xv = tape.constant(x.slice(ndarray::s![rows.clone(), ..]).to_owned().into_dyn());
        let wv = tape.param(&params, w);
        let z = tape.matmul(xv, wv);
        let ce = tape.cross_entropy(z, &targets[rows]);
        tape.backward(ce.sum)
    };
    let mut acc = micro(0..2);
    acc.accumulate(micro(2..4));
    acc.scale(1.0 / 3.0);
    let (a, f) = (acc.param(w).unwrap(), full.param(w).unwrap());
    for (a, f) in a.iter().zip(f.iter()) {
        assert!((a - f).abs() < 1e-6, "accumulated {a} vs full batch {f}");
    }
}

#[test]
fn no_grad_tape_records_no_backward() {
    let mut params = Params::new();
    let w = params.add("w", t(&[2], &[1.0, 2.0]));
    let mut tape = Tape::no_grad();
    let wv = tape.param(&params, w);
    let x = tape.input(t(&[2], &[3.0, 4.0]));
    let y = tape.mul(wv, x);
    let s = tape.sum_all(y);
    assert_eq!(tape.scalar(s), 11.0);
    assert!(!tape.is_recording() && !tape.is_training());
    for v in [wv, x, y, s] {
        assert!(!tape.requires_grad(v), "node {v:?} wants a gradient on a no-grad tape");
    }
}

#[test]
#[should_panic(expected = "recorded no backward")]
fn backward_on_a_no_grad_tape_is_an_error() {
    let mut tape = Tape::no_grad();
    let x = tape.input(t(&[1], &[1.0]));
    let y = tape.exp(x);
    tape.backward(y);
}

#[test]
#[should_panic(expected = "op 'argmax' (node %1) has no backward")]
fn a_gradient_through_an_op_without_backward_is_an_error() {
    let mut tape = Tape::new();
    let x = tape.input(t(&[3], &[1.0, 5.0, 2.0]));
    let i = tape.argmax(x, 0);
    let y = tape.mul_scalar(i, 2.0);
    tape.backward(y);
}

#[test]
fn an_op_without_backward_is_fine_off_the_gradient_path() {
    let mut tape = Tape::new();
    let x = tape.input(t(&[3], &[1.0, 5.0, 2.0]));
    let i = tape.argmax(x, 0); // a prediction, not part of the loss
    assert_eq!(tape.scalar(i), 1.0);
    let loss = tape.sum_all(x);
    let grads = tape.backward(loss);
    assert_eq!(grads.wrt(x).unwrap().as_slice().unwrap(), &[1.0, 1.0, 1.0]);
}

#[test]
fn parameters_persist_and_copy_on_write_protects_a_live_tape() {
    let mut params = Params::new();
    let w = params.add("w", t(&[2], &[1.0, 2.0]));
    let mut tape = Tape::new();
    let wv = tape.param(&params, w);
    // The tape shares the parameter's storage: no copy was made.
    assert_eq!(tape.value(wv).as_ptr(), params.value(w).as_ptr());
    // An optimizer step while the tape is alive copies first, so the record is unchanged.
    params.value_mut(w).mapv_inplace(|v| v - 0.5);
    assert_eq!(tape.value(wv).as_slice().unwrap(), &[1.0, 2.0]);
    assert_eq!(params.value(w).as_slice().unwrap(), &[0.5, 1.5]);
}

#[test]
fn backward_from_a_seed_gives_one_outputs_dependence() {
    // y = x * c elementwise; seeding dL/dy = e_1 asks for dy_1/dx = c_1 e_1.
    let mut tape = Tape::new();
    let x = tape.input(t(&[3], &[1.0, 2.0, 3.0]));
    let c = tape.constant(t(&[3], &[4.0, 5.0, 6.0]));
    let y = tape.mul(x, c);
    let seed = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, 1.0, 0.0]).unwrap();
    let grads = tape.backward_from(y, seed);
    assert_eq!(grads.wrt(x).unwrap().as_slice().unwrap(), &[0.0, 5.0, 0.0]);
}

#[test]
fn describe_lists_the_recorded_ops_in_order() {
    let mut tape = Tape::new();
    let x = tape.input(t(&[2, 3], &[0.0; 6]));
    let y = tape.tanh(x);
    tape.sum(y, &[1], false);
    let listing = tape.describe();
    let ops: Vec<&str> = listing.lines().map(|l| l.split_whitespace().nth(2).unwrap()).collect();
    assert_eq!(ops, ["input", "tanh", "sum"]);
    assert!(listing.contains("[2, 3]") && listing.contains("[2]"));
}

#[test]
fn max_sends_the_gradient_to_the_first_arg_max() {
    let mut tape = Tape::new();
    let x = tape.input(t(&[2, 3], &[1.0, 7.0, 7.0, -1.0, -3.0, -2.0]));
    let m = tape.max(x, &[1], false);
    assert_eq!(tape.value(m).as_slice().unwrap(), &[7.0, -1.0]);
    let w = tape.constant(t(&[2], &[10.0, 20.0]));
    let mw = tape.mul(m, w);
    let loss = tape.sum_all(mw);
    let grads = tape.backward(loss);
    assert_eq!(
        grads.wrt(x).unwrap().as_slice().unwrap(),
        &[0.0, 10.0, 0.0, 20.0, 0.0, 0.0]
    );
}

#[test]
fn softmax_of_a_fully_masked_lane_is_zero_not_nan() {
    let mut tape = Tape::new();
    let x = tape.input(t(&[2, 2], &[1.0, 1.0, 0.0, 0.0]));
    let mask = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![false, false, true, true]).unwrap();
    let xm = tape.masked_fill(x, &mask, f32::NEG_INFINITY);
    let p = tape.softmax(xm, 1);
    assert_eq!(tape.value(p).as_slice().unwrap(), &[0.5, 0.5, 0.0, 0.0]);
    let loss = tape.sum_all(p);
    let grads = tape.backward(loss);
    assert!(grads.wrt(x).unwrap().iter().all(|g| g.is_finite()));
}

#[test]
fn embedding_scatter_adds_repeated_ids() {
    let mut tape = Tape::new();
    let table = tape.input(t(&[3, 2], &[0.0; 6]));
    let y = tape.embedding(table, &[1, 1, 2, 1], &[2, 2]);
    assert_eq!(tape.shape(y), &[2, 2, 2]);
    let w = tape.constant(t(&[2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]));
    let yw = tape.mul(y, w);
    let loss = tape.sum_all(yw);
    let grads = tape.backward(loss);
    // id 1 was used at positions 0, 1 and 3: (1+3+7, 2+4+8); id 2 at position 2: (5, 6).
    assert_eq!(
        grads.wrt(table).unwrap().as_slice().unwrap(),
        &[0., 0., 11., 14., 5., 6.]
    );
}

#[test]
fn dropout_is_seeded_inverted_and_off_in_evaluation() {
    let n = 100_000;
    let p = 0.25f32;
    let run = |seed: u64| {
        let mut tape = Tape::new();
        let x = tape.input(Tensor::from_elem(IxDyn(&[n]), 2.0));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let y = tape.dropout(x, p, &mut rng);
        tape.value(y).to_owned()
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a, b, "same seed, same mask");
    assert_ne!(a, c, "another seed, another mask");
    // Kept elements are scaled by 1 / (1 - p): 2 / 0.75.
    assert!(a.iter().all(|&v| v == 0.0 || (v - 2.0 / 0.75).abs() < 1e-6));
    // Dropped fraction p within 5 sigma, sigma = sqrt(p (1 - p) / n) = 0.00137.
    let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    let sigma = ((p * (1.0 - p)) as f64 / n as f64).sqrt();
    assert!((dropped - p as f64).abs() < 5.0 * sigma, "dropped fraction {dropped}");
    // Evaluation: identity, and no node is added.
    let mut tape = Tape::no_grad();
    let x = tape.constant(Tensor::from_elem(IxDyn(&[4]), 2.0));
    let y = tape.dropout(x, p, &mut rand::rngs::StdRng::seed_from_u64(7));
    assert_eq!(x, y);
}

#[test]
#[should_panic(expected = "matmul: inner dimensions differ: [2, 3] x [4, 5]")]
fn matmul_shape_error_names_both_shapes() {
    let mut tape = Tape::new();
    let a = tape.constant(Tensor::zeros(IxDyn(&[2, 3])));
    let b = tape.constant(Tensor::zeros(IxDyn(&[4, 5])));
    tape.matmul(a, b);
}

#[test]
#[should_panic(expected = "add: cannot broadcast shapes [2, 3] and [4]")]
fn broadcast_error_names_the_op_and_shapes() {
    let mut tape = Tape::new();
    let a = tape.constant(Tensor::zeros(IxDyn(&[2, 3])));
    let b = tape.constant(Tensor::zeros(IxDyn(&[4])));
    tape.add(a, b);
}

#[test]
#[should_panic(expected = "embedding: id 7 (at position 1) is out of range for a vocabulary of 5")]
fn embedding_error_names_the_id_and_vocabulary() {
    let mut tape = Tape::new();
    let table = tape.constant(Tensor::zeros(IxDyn(&[5, 2])));
    tape.embedding(table, &[0, 7], &[2]);
}

#[test]
#[should_panic(expected = "cross_entropy: target 4 at position 0 is out of range for 4 classes")]
fn cross_entropy_error_names_the_target() {
    let mut tape = Tape::new();
    let z = tape.constant(Tensor::zeros(IxDyn(&[1, 4])));
    tape.cross_entropy(z, &[Some(4)]);
}

#[test]
#[should_panic(expected = "backward: the loss must hold exactly one element, got shape [2]")]
fn backward_needs_a_scalar_loss() {
    let mut tape = Tape::new();
    let x = tape.input(Tensor::zeros(IxDyn(&[2])));
    let y = tape.exp(x);
    tape.backward(y);
}
