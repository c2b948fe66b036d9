//! The profile: FLOPs counted against hand-computed products, and what a profiled tape records
//! (calls, FLOPs forward and backward, new bytes, nothing for a view, nothing when off).
//!
//! The switch is global to the process, so everything that turns it on is one test.

use microlm::profile::{self, flops};
use microlm::{Tape, Tensor};

fn ones(shape: &[usize]) -> Tensor {
    Tensor::from_shape_vec(shape.to_vec(), vec![1.0; shape.iter().product()]).unwrap()
}

/// 2 m k n for a product, by hand; nothing for an elementwise op.
#[test]
fn flops_count_the_products_by_hand() {
    // C [2, 4] = A [2, 3] B [3, 4]: 8 outputs of 3 multiply-adds each, 48 FLOPs.
    assert_eq!(flops("matmul", &[2, 4], &[&[2, 3], &[3, 4]]), 48.0);
    // A batch of 5 such products.
    assert_eq!(flops("matmul", &[5, 2, 4], &[&[5, 2, 3], &[5, 3, 4]]), 240.0);
    // y [5, 11] = x [5, 7] W^T + b: 2 * 5 * 11 * 7 = 770.
    assert_eq!(flops("linear", &[5, 11], &[&[5, 7], &[11, 7], &[11]]), 770.0);
    // Attention, B 1, H 2, Tq 3, Tk 5, D 4, Dv 6: S = Q K^T is 2 * (2 * 3) * 5 * 4 = 240,
    // O = P V is 2 * (2 * 3 * 6) * 5 = 360.
    assert_eq!(
        flops(
            "attention",
            &[1, 3, 2, 6],
            &[&[1, 2, 3, 4], &[1, 2, 5, 4], &[1, 2, 5, 6]]
        ),
        600.0
    );
    // Packed self-attention, qkv [B 1, T 5, 3 * H 2 * Dh 4] -> O [1, 2, 5, 4]: S = Q K^T is
    // 2 * (2 * 5) * 5 * 4 = 400, and O = P V the same, 800.
    assert_eq!(flops("attention", &[1, 2, 5, 4], &[&[1, 5, 24]]), 800.0);
    assert_eq!(flops("gelu", &[5, 11], &[&[5, 11]]), 0.0);
}

#[test]
fn a_profiled_tape_records_calls_flops_and_new_bytes_and_nothing_when_off() {
    let run = || {
        let mut tape = Tape::new();
        let a = tape.input(ones(&[2, 3]));
        let b = tape.input(ones(&[3, 4]));
        let c = tape.matmul(a, b); // [2, 4]: 48 FLOPs, 32 new bytes
        let r = tape.reshape(c, &[8]); // a view: no new bytes
        let y = tape.gelu(r);
        let l = tape.sum(y, &[0], false);
        tape.backward(l);
    };

    profile::set_enabled(false);
    profile::take();
    run();
    assert_eq!(profile::take(), profile::Profile::default(), "off: nothing recorded");

    profile::set_enabled(true);
    run();
    run();
    profile::set_enabled(false);
    let p = profile::take();
    let matmul = &p.rows["matmul"];
    assert_eq!(matmul.calls, 2);
    assert_eq!(matmul.flops_forward, 2.0 * 48.0);
    assert_eq!(
        matmul.flops_backward,
        2.0 * 2.0 * 48.0,
        "backward: two products per product"
    );
    // Forward: the [2, 4] output, 32 bytes; backward: dA [2, 3] and dB [3, 4], 24 + 48 bytes.
    assert_eq!(matmul.bytes, 2 * (32 + 24 + 48));
    let reshape = &p.rows["reshape"];
    assert_eq!(reshape.calls, 2);
    // The reshape's output is a view, and so is its gradient (dL/dy in the old shape): 0 bytes.
    assert_eq!(reshape.bytes, 0);
    assert_eq!(p.rows["gelu"].flops_forward, 0.0);
    assert_eq!(p.rows["input"].calls, 4);
    assert!(p.rows["matmul"].backward > std::time::Duration::ZERO);

    // The table has a row for each op, the products with their rate, the rest with none.
    let table = p.table(100.0);
    for op in ["matmul", "reshape", "gelu", "sum", "input"] {
        assert!(table.contains(&format!("| {op} |")), "no {op} row in\n{table}");
    }
    let gelu_row = table.lines().find(|l| l.starts_with("| gelu |")).unwrap();
    assert!(gelu_row.contains("| - | - | - |"), "{gelu_row}");
}

/// The peak the profile divides by is measured here: a real product cannot beat it (by more
/// than timing noise), and it is a plausible rate for a CPU core.
#[test]
fn measured_peak_bounds_a_real_product() {
    let peak = microlm::kernels::fma_peak::measured();
    assert!(peak.one_thread > 1.0 && peak.one_thread < 1000.0, "{peak:?}");
    assert!(peak.all_threads >= 0.5 * peak.one_thread, "{peak:?}");
    assert_eq!(
        peak,
        microlm::kernels::fma_peak::measured(),
        "cached: the same figure twice"
    );
    // One 256^3 product on this thread, best of 5: 2 * 256^3 FLOP.
    let a = ndarray::Array2::<f32>::from_elem((256, 256), 0.5).into_dyn();
    let best = (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            std::hint::black_box(microlm::kernels::matmul::matmul(a.view(), a.view()));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let rate = 2.0 * 256f64.powi(3) / best / 1e9;
    assert!(
        rate <= 1.15 * peak.all_threads,
        "a product at {rate:.1} GFLOP/s beats the peak {peak:?}"
    );
}
