//! # 1. The autograd
//!
//! A step-through tour of the autograd, on the smallest problem a line cannot solve: XOR.
//!
//! 1. Build a 2-layer MLP's parameters.
//! 2. Run one forward pass and print what the tape recorded.
//! 3. Call backward and print each analytic gradient next to a finite-difference estimate.
//! 4. Train with plain gradient descent and watch the loss fall.
//!
//! Run it with `cargo run --release --example 01_autograd_tour`.

use microlm::{ParamId, Params, Tape, Tensor, Var};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// The four XOR inputs and their labels: 1 when exactly one input is on.
const X: [[f32; 2]; 4] = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
const Y: [usize; 4] = [0, 1, 1, 0];
const HIDDEN: usize = 8;

struct Mlp {
    w1: ParamId, // [2, HIDDEN]
    b1: ParamId, // [HIDDEN]
    w2: ParamId, // [HIDDEN, 2]
    b2: ParamId, // [2]
}

impl Mlp {
    fn new(params: &mut Params, seed: u64) -> Mlp {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        let mut randn = |shape: &[usize], scale: f32| {
            let n = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|_| scale * normal.sample(&mut rng)).collect();
            Tensor::from_shape_vec(IxDyn(shape), data).unwrap()
        };
        Mlp {
            w1: params.add("w1", randn(&[2, HIDDEN], 1.0)),
            b1: params.add("b1", Tensor::zeros(IxDyn(&[HIDDEN]))),
            w2: params.add("w2", randn(&[HIDDEN, 2], 0.5)),
            b2: params.add("b2", Tensor::zeros(IxDyn(&[2]))),
        }
    }

    /// logits = tanh(x W1 + b1) W2 + b2, shape [4, 2]; returns (logits, mean cross-entropy).
    fn forward(&self, tape: &mut Tape, params: &Params) -> (Var, Var) {
        let x = tape.constant(Tensor::from_shape_vec(IxDyn(&[4, 2]), X.concat()).unwrap()); // [4, 2]
        let (w1, b1) = (tape.param(params, self.w1), tape.param(params, self.b1));
        let (w2, b2) = (tape.param(params, self.w2), tape.param(params, self.b2));
        let xw1 = tape.matmul(x, w1); // [4, HIDDEN]
        let pre = tape.add(xw1, b1); // b1 broadcasts over the 4 rows
        let h = tape.tanh(pre);
        let hw2 = tape.matmul(h, w2); // [4, 2]
        let logits = tape.add(hw2, b2);
        let targets: Vec<Option<usize>> = Y.iter().map(|&y| Some(y)).collect();
        let ce = tape.cross_entropy(logits, &targets);
        (logits, ce.mean)
    }

    fn loss(&self, params: &Params) -> f32 {
        let mut tape = Tape::no_grad();
        let (_, loss) = self.forward(&mut tape, params);
        tape.scalar(loss)
    }
}

fn main() {
    microlm::cli::takes_no_flags("01_autograd_tour");
    microlm::init_threads_from_env();
    let mut params = Params::new();
    let mlp = Mlp::new(&mut params, 42);
    println!("== 1. parameters ==");
    for id in params.ids() {
        println!("{:<3} {:?}", params.name(id), params.value(id).shape());
    }

    println!("\n== 2. one forward pass: the tape ==");
    let mut tape = Tape::new();
    let (_, loss) = mlp.forward(&mut tape, &params);
    print!("{}", tape.describe());
    println!("loss = {:.6}", tape.scalar(loss));

    println!("\n== 3. backward: analytic vs finite differences (eps = 1e-3) ==");
    let grads = tape.backward(loss);
    println!(
        "{:<10} {:>12} {:>12} {:>10}",
        "element", "analytic", "numeric", "|diff|"
    );
    let mut worst = 0.0f32;
    for id in [mlp.w1, mlp.b2] {
        for i in 0..params.value(id).len().min(6) {
            let eps = 1e-3;
            let original = params.value(id).as_slice().unwrap()[i];
            params.value_mut(id).as_slice_mut().unwrap()[i] = original + eps;
            let plus = mlp.loss(&params);
            params.value_mut(id).as_slice_mut().unwrap()[i] = original - eps;
            let minus = mlp.loss(&params);
            params.value_mut(id).as_slice_mut().unwrap()[i] = original;
            let numeric = (plus - minus) / (2.0 * eps);
            let analytic = grads.param(id).unwrap().as_slice().unwrap()[i];
            worst = worst.max((analytic - numeric).abs());
            let name = format!("{}[{i}]", params.name(id));
            println!(
                "{name:<10} {analytic:>12.6} {numeric:>12.6} {:>10.2e}",
                (analytic - numeric).abs()
            );
        }
    }
    println!("largest difference: {worst:.2e} (f32 finite differences are good to about 1e-4 here)");

    println!("\n== 4. training: 300 steps of gradient descent, lr = 0.5 ==");
    let lr = 0.5;
    for step in 0..=300 {
        let mut tape = Tape::new();
        let (_, loss) = mlp.forward(&mut tape, &params);
        let loss_value = tape.scalar(loss);
        let grads = tape.backward(loss);
        for (id, g) in grads.params() {
            // p <- p - lr * dL/dp
            params.value_mut(id).zip_mut_with(g, |p, &g| *p -= lr * g);
        }
        if step % 30 == 0 {
            println!("step {step:>3}  loss {loss_value:.5}");
        }
    }

    println!("\n== predictions ==");
    let mut tape = Tape::no_grad();
    let (logits, _) = mlp.forward(&mut tape, &params);
    let probs = tape.softmax(logits, 1);
    let probs = tape.value(probs);
    let mut correct = 0;
    for (i, (x, &y)) in X.iter().zip(&Y).enumerate() {
        let p1 = probs[[i, 1]];
        let predicted = usize::from(p1 > 0.5);
        correct += usize::from(predicted == y);
        let mark = if predicted == y { "right" } else { "WRONG" };
        println!("{:?} -> P(1) = {p1:.3}  predicted {predicted}, label {y}  {mark}", x);
    }
    println!("accuracy {correct}/4");
}
