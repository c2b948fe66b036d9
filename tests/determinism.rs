//! Row-wise ops on tensors big enough to run on several threads give bit-identical results from
//! run to run and for any thread count: they split rows into blocks of a size fixed by the row
//! length, and add per-block partial sums (dgamma, dbeta, a bias gradient) in block order.

mod common;

use common::in_pool;
use microlm::{Tape, Tensor};
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::from_shape_fn(IxDyn(shape), |_| rng.random_range(-3.0f32..3.0))
}

/// Every value and gradient of layer_norm, softmax, log_softmax, cross_entropy and linear on
/// big inputs, as raw bits.
fn run_all() -> Vec<Vec<u32>> {
    let bits = |t: &ndarray::ArrayD<f32>| t.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let mut out = Vec::new();

    // layer_norm over [1000, 96]: 96 000 elements, several blocks of rows.
    let mut tape = Tape::new();
    let x = tape.input(random(&[1000, 96], 1));
    let gamma = tape.input(random(&[96], 2));
    let beta = tape.input(random(&[96], 3));
    let y = tape.layer_norm(x, gamma, beta, 1e-5);
    out.push(bits(&tape.value(y).to_owned()));
    let grads = tape.backward_from(y, random(&[1000, 96], 4).into_owned());
    for v in [x, gamma, beta] {
        out.push(bits(grads.wrt(v).unwrap()));
    }

    // softmax and log_softmax over the last axis and over a middle one of [40, 50, 30].
    for axis in [2, 1] {
        for log in [false, true] {
            let mut tape = Tape::new();
            let x = tape.input(random(&[40, 50, 30], 5));
            let y = if log {
                tape.log_softmax(x, axis)
            } else {
                tape.softmax(x, axis)
            };
            out.push(bits(&tape.value(y).to_owned()));
            let grads = tape.backward_from(y, random(&[40, 50, 30], 6).into_owned());
            out.push(bits(grads.wrt(x).unwrap()));
        }
    }

    // cross_entropy over [900, 96] logits, about a third of the positions ignored.
    let mut tape = Tape::new();
    let z = tape.input(random(&[900, 96], 7));
    let mut rng = StdRng::seed_from_u64(8);
    let targets: Vec<Option<usize>> = (0..900)
        .map(|_| rng.random_bool(0.7).then(|| rng.random_range(0..96)))
        .collect();
    let ce = tape.cross_entropy(z, &targets);
    out.push(vec![tape.scalar(ce.mean).to_bits()]);
    let grads = tape.backward(ce.mean);
    out.push(bits(grads.wrt(z).unwrap()));

    // linear [2000, 64] -> [2000, 48]: the bias gradient sums 2000 rows.
    let mut tape = Tape::new();
    let x = tape.input(random(&[2000, 64], 9));
    let w = tape.input(random(&[48, 64], 10));
    let b = tape.input(random(&[48], 11));
    let y = tape.linear(x, w, Some(b));
    let grads = tape.backward_from(y, random(&[2000, 48], 12).into_owned());
    out.push(bits(grads.wrt(b).unwrap()));
    out
}

#[test]
fn row_wise_ops_are_bit_identical_across_runs_and_thread_counts() {
    let first = in_pool(2, run_all);
    let second = in_pool(2, run_all);
    assert!(first == second, "two runs with 2 threads differ");
    let one = in_pool(1, run_all);
    assert!(first == one, "2 threads and 1 thread differ");
    let three = in_pool(3, run_all);
    assert!(first == three, "2 threads and 3 threads differ");
}

/// A large product is cut into one part per thread, by rows when it has more rows and by
/// columns otherwise, each part one sgemm over all of K: the bits are the same at 1, 2 and 3
/// threads, and the values agree with the naive triple loop. The sizes do not divide evenly.
#[test]
fn large_products_cut_across_threads_give_the_same_bits_and_the_right_values() {
    use microlm::kernels::matmul::{matmul, matmul_naive};
    for (m, k, n) in [(301, 200, 171), (97, 250, 333)] {
        let (a, b) = (random(&[m, k], 20), random(&[k, n], 21));
        let bits_at = |threads| {
            let c = in_pool(threads, || matmul(a.view(), b.view()));
            c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        };
        let one = bits_at(1);
        assert_eq!(one, bits_at(2), "{m}x{k}x{n}: 2 threads differ from 1");
        assert_eq!(one, bits_at(3), "{m}x{k}x{n}: 3 threads differ from 1");
        let c = in_pool(2, || matmul(a.view(), b.view()));
        let naive = matmul_naive(a.view(), b.view());
        for (x, y) in c.iter().zip(naive.iter()) {
            // |terms| < 9 each, K <= 250 of them: f32 rounding stays far below 1e-2.
            assert!((x - y).abs() < 1e-2, "{m}x{k}x{n}: {x} against {y}");
        }
    }
}
