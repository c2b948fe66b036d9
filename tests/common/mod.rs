//! Shared helpers for the tests: the named fixtures (`fixtures.rs`: the tiny model configs,
//! tokenizer, corpus and temp directories), and for the property tests the proptest
//! configuration, strategies for shapes and tensors, and the gradcheck assertion.
#![allow(dead_code)] // each test binary uses a different subset

mod fixtures;
#[allow(unused_imports)] // each test binary uses a different subset
pub use fixtures::*;

use microlm::gradcheck::{gradcheck, GradcheckConfig};
use microlm::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestCaseResult, TestRunner};
use std::ops::RangeInclusive;

/// An f32 tensor of any rank (what gradcheck takes).
pub type T = ArrayD<f32>;

/// Cases per property when `PROPTEST_CASES` is not set: enough to hit the interesting shapes
/// (size-1 dims, rank 0, broadcasting both ways) while keeping a release run of each test
/// binary to a few seconds.
pub const DEFAULT_CASES: u32 = 32;

/// `PROPTEST_CASES` if set (proptest's own reading of it is overridden by an explicit `cases`),
/// else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// The configuration every property here runs with. Failure persistence is off: these tests
/// must not write `proptest-regressions` files into the source tree; a failure prints its
/// minimal (shrunk) case instead.
pub fn config_with(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// [`config_with`] the default case count, or `PROPTEST_CASES`.
pub fn config() -> ProptestConfig {
    config_with(cases(DEFAULT_CASES))
}

/// Run one expensive property with `default` cases, or `PROPTEST_CASES / divisor` (at least 1)
/// when the variable is set, so a high case count scales it too without running hundreds of
/// big cases. (The `proptest!` macro itself would apply `PROPTEST_CASES` as is, so these use
/// a `TestRunner` directly; shrinking and the failure report are the same.)
pub fn run_scaled<S>(name: &str, default: u32, divisor: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let mut config = proptest::test_runner::contextualize_config(config());
    config.cases = match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        Some(n) => (n / divisor).max(1),
        None => default,
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
}

/// A shape with a rank in `ranks` and every dimension in 1..=4 (so size-1 dims are common).
pub fn shape(ranks: RangeInclusive<usize>) -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..=4, ranks)
}

/// A tensor of `shape` whose elements are drawn from `elem`.
pub fn tensor_with<S>(shape: Vec<usize>, elem: S) -> impl Strategy<Value = T>
where
    S: Strategy<Value = f32> + Clone,
{
    let n = shape.iter().product::<usize>();
    vec(elem, n).prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("n elements"))
}

/// A tensor of `shape` with elements uniform in [lo, hi).
pub fn tensor(shape: Vec<usize>, lo: f32, hi: f32) -> impl Strategy<Value = T> {
    tensor_with(shape, lo..hi)
}

/// The fixed random weights w of L = sum(op(x) * w): uniform in [-1, 1).
pub fn weights(shape: Vec<usize>) -> impl Strategy<Value = T> {
    tensor(shape, -1.0, 1.0)
}

/// A number with |x| in [lo, hi) and a random sign: away from 0 by at least `lo`.
pub fn away_from_zero(lo: f32, hi: f32) -> impl Strategy<Value = f32> + Clone {
    (lo..hi, any::<bool>()).prop_map(|(m, positive)| if positive { m } else { -m })
}

/// A tensor of `shape` whose elements are all distinct, any two at least `step` apart: a random
/// permutation of an evenly spaced grid, shifted by a random offset.
pub fn distinct_tensor(shape: Vec<usize>, step: f32) -> impl Strategy<Value = T> {
    let n = shape.iter().product::<usize>();
    (Just((0..n).collect::<Vec<usize>>()).prop_shuffle(), -1.0f32..1.0).prop_map(move |(perm, offset)| {
        let v = perm
            .iter()
            .map(|&p| (p as f32 - n as f32 / 2.0) * step + offset)
            .collect();
        ArrayD::from_shape_vec(IxDyn(&shape), v).expect("n elements")
    })
}

/// A tensor of `shape` (last axis D) whose every row along the last axis is well spread: row
/// values are a random permutation of a grid with spacing `step`, centred on a random row
/// offset in [-2, 2), plus jitter of at most `step / 4`. So each row's standard deviation is
/// at least about `step / 2` (for D >= 2), which keeps layer norm's 1/std well conditioned.
pub fn spread_rows(shape: Vec<usize>, step: f32) -> impl Strategy<Value = T> {
    let d = *shape.last().expect("at least one axis");
    let rows = shape.iter().product::<usize>() / d.max(1);
    let row = (
        Just((0..d).collect::<Vec<usize>>()).prop_shuffle(),
        -2.0f32..2.0,
        vec(-0.25f32..0.25, d),
    );
    vec(row, rows).prop_map(move |rows| {
        let mut v = Vec::with_capacity(rows.len() * d);
        for (perm, offset, jitter) in rows {
            for (p, j) in perm.iter().zip(jitter) {
                v.push(offset + (*p as f32 - (d as f32 - 1.0) / 2.0 + j) * step);
            }
        }
        ArrayD::from_shape_vec(IxDyn(&shape), v).expect("rows * d elements")
    })
}

/// An operand shape that broadcasts to `full`: drop a random number of leading axes, then
/// set random remaining axes to 1.
pub fn broadcast_operand(full: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let r = full.len();
    (0..=r, vec(any::<bool>(), r)).prop_map(move |(drop, ones)| {
        full.iter()
            .zip(&ones)
            .skip(drop)
            .map(|(&d, &one)| if one { 1 } else { d })
            .collect()
    })
}

/// The axes where `mask` is true.
pub fn axes_of(mask: &[bool]) -> Vec<usize> {
    mask.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i).collect()
}

/// The shape of a reduction of `shape` over `axes`.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdim) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(d),
        })
        .collect()
}

/// L = sum(y * w) for a fixed weight tensor w of y's shape: a scalar that depends on every
/// element of y with a different, nonzero-in-general weight.
pub fn weighted_sum(t: &mut Tape, y: Var, w: &T) -> Var {
    assert_eq!(
        t.shape(y),
        w.shape(),
        "weighted_sum: the weights must have the output's shape"
    );
    let wv = t.constant(w.clone());
    let p = t.mul(y, wv);
    t.sum_all(p)
}

/// Run gradcheck with `config` and turn a failure into a test-case failure whose message holds
/// gradcheck's report (worst element: input, index, analytic, numeric) and the op's name.
///
/// Set `MICROLM_LOG_RATIOS=1` (and run with `--nocapture`) to print every case's worst ratio,
/// one `gradcheck-ratio <ratio> <op>` line each, to measure how close the tolerances are.
pub fn check_with(
    op: &str,
    config: GradcheckConfig,
    inputs: &[T],
    f: impl Fn(&mut Tape, &[Var]) -> Var,
) -> Result<(), TestCaseError> {
    match gradcheck(f, inputs, config) {
        Ok(report) => {
            if std::env::var_os("MICROLM_LOG_RATIOS").is_some() {
                eprintln!("gradcheck-ratio {} {op}", report.worst_ratio);
            }
            Ok(())
        }
        Err(msg) => {
            let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
            Err(TestCaseError::fail(format!("{op}: {msg} (input shapes {shapes:?})")))
        }
    }
}

/// [`check_with`] gradcheck's default configuration.
pub fn check(op: &str, inputs: &[T], f: impl Fn(&mut Tape, &[Var]) -> Var) -> Result<(), TestCaseError> {
    check_with(op, GradcheckConfig::default(), inputs, f)
}
