//! Where a training step goes: time, floating-point work and memory written, per op.
//!
//! Switched on with [`set_enabled`] (the examples' `--profile` flag), every recording [`Tape`]
//! times what it records and the trainer times the rest of an update:
//!
//! - **forward**: an op's time is the wall time since the tape recorded the node before it, so
//!   it covers the op's own work (and any plain code the model runs between two ops; the time
//!   to draw a batch lands on the first node of the step);
//! - **backward**: the time of the op's backward closure, plus adding its input gradients into
//!   the ones already there;
//! - **update**: gradient clipping and the optimizer step, timed by the trainer.
//!
//! FLOPs are counted where they are most of the work and exact to write down: the products.
//! For C = A B with A \[m, k] and B \[k, n], 2 m k n (one multiply and one add per term);
//! `linear` is that product with W; `attention` is two of them, S = Q K^T and O = P V, so
//! 2 T_q T_k (D + D_v) per head. Backward needs two products per forward product: 2x. The
//! elementwise ops (layer norm, GELU, softmax, cross-entropy, adds) do a few operations per
//! element and are limited by memory, not arithmetic, so their rows give the bytes of the new
//! values they make (outputs forward, input gradients backward, views not counted).
//!
//! Off, the cost is one relaxed atomic load per tape made: a tape reads the switch once, when it
//! is created.
//!
//! [`Tape`]: crate::Tape

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<Profile> = Mutex::new(Profile {
    rows: BTreeMap::new(),
    steps: 0,
    step_time: Duration::ZERO,
});

/// Turn profiling on or off for tapes created from now on.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether tapes created now are profiled.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What one op (or update stage) cost, summed over every call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Times recorded on a tape (or run).
    pub calls: u64,
    /// Forward time.
    pub forward: Duration,
    /// Backward time.
    pub backward: Duration,
    /// FLOPs counted forward (products only; see the module docs).
    pub flops_forward: f64,
    /// FLOPs counted backward.
    pub flops_backward: f64,
    /// Bytes of the new values it made: outputs forward, input gradients backward; a view of
    /// its input (forward) or of dL/d(output) (backward) is not new.
    pub bytes: u64,
}

/// Rows by op name, and the steps they were measured over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// One row per op name (`linear`, `attention`, ..), and `clip` and `optimizer`.
    pub rows: BTreeMap<&'static str, Row>,
    /// Training steps counted with [`add_step`].
    pub steps: u64,
    /// Their total wall time.
    pub step_time: Duration,
}

fn with_row(op: &'static str, f: impl FnOnce(&mut Row)) {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    f(table.rows.entry(op).or_default());
}

/// Add one forward call of `op`.
pub fn add_forward(op: &'static str, time: Duration, flops: f64, bytes: usize) {
    with_row(op, |r| {
        r.calls += 1;
        r.forward += time;
        r.flops_forward += flops;
        r.bytes += bytes as u64;
    });
}

/// Add one backward call of `op`: 2x its forward FLOPs (two products per product).
pub fn add_backward(op: &'static str, time: Duration, forward_flops: f64, bytes: usize) {
    with_row(op, |r| {
        r.backward += time;
        r.flops_backward += 2.0 * forward_flops;
        r.bytes += bytes as u64;
    });
}

/// Add one training step's whole wall time.
pub fn add_step(time: Duration) {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    table.steps += 1;
    table.step_time += time;
}

/// Everything measured so far, and start again from zero.
pub fn take() -> Profile {
    std::mem::take(&mut *TABLE.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The FLOPs counted for one forward call of `op` with this output shape and input shapes
/// (products only, 0 for the rest; see the module docs).
pub fn flops(op: &str, output: &[usize], inputs: &[&[usize]]) -> f64 {
    let len = |s: &[usize]| s.iter().product::<usize>() as f64;
    let last = |s: &[usize]| *s.last().unwrap_or(&1) as f64;
    match (op, inputs) {
        // C [.., m, n] = A [.., m, k] B: 2 k per output element.
        ("matmul" | "linear" | "linear_residual", [a, ..]) => 2.0 * len(output) * last(a),
        // The fused feed-forward, x [.., d] W_1^T [d, d_ff] then [.., d_ff] W_2^T: 2 d d_ff each.
        ("feed_forward", [x, w1, ..]) if w1.len() == 2 => 4.0 * len(x) * w1[0] as f64,
        // O [B, H, Tq, Dv] = P V and S = Q K^T with Q [B, H, Tq, D], K [B, H, Tk, D].
        ("attention", [q, k, _]) if q.len() == 4 && k.len() == 4 => {
            let (bh_tq, tk, d) = (len(&q[..3]), k[2] as f64, q[3] as f64);
            2.0 * bh_tq * tk * d + 2.0 * len(output) * tk
        }
        // The same from packed Q, K, V [B, T, 3 H Dh] (`attention_packed`): Tq = Tk = T, D = Dh.
        ("attention", [qkv]) if qkv.len() == 3 && output.len() == 4 => 4.0 * len(output) * output[2] as f64,

        _ => 0.0,
    }
}

impl Profile {
    /// The table a learner reads: per op, time per step forward and backward, share of the
    /// step, GFLOP per step, the rate achieved and its share of `peak_gflops`, and the MB of
    /// new values per step; sorted by time, with what no row accounts for, and last the whole
    /// step: all its counted FLOPs over its wall time, against the same peak.
    ///
    /// `peak_gflops` is the machine's measured peak for the threads the step ran on
    /// ([`crate::kernels::fma_peak::measured`], as the examples pass it), not a constant.
    pub fn table(&self, peak_gflops: f64) -> String {
        let steps = self.steps.max(1) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / steps;
        let step_ms = ms(self.step_time);
        let mut rows: Vec<(&&str, &Row)> = self.rows.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.forward + r.1.backward));
        let mut s = format!(
            "where a training step goes, mean over {} steps ({step_ms:.1} ms a step; peak {peak_gflops:.0} GFLOP/s):\n",
            self.steps
        );
        s += "| op | calls | forward ms | backward ms | share | GFLOP | GFLOP/s | of peak | MB new |\n";
        s += "|---|---|---|---|---|---|---|---|---|\n";
        let (mut accounted, mut step_gflop) = (0.0, 0.0);
        for (op, r) in rows {
            let (f, b) = (ms(r.forward), ms(r.backward));
            accounted += f + b;
            let gflop = (r.flops_forward + r.flops_backward) / steps / 1e9;
            step_gflop += gflop;
            let work = if gflop > 0.0 {
                let g = gflop / ((f + b) / 1e3);
                format!("{gflop:.2} | {g:.1} | {:.0}%", 100.0 * g / peak_gflops)
            } else {
                "- | - | -".to_string()
            };
            s += &format!(
                "| {op} | {:.0} | {f:.2} | {b:.2} | {:.1}% | {work} | {:.1} |\n",
                r.calls as f64 / steps,
                100.0 * (f + b) / step_ms,
                r.bytes as f64 / steps / 1e6
            );
        }
        let rest = step_ms - accounted;
        s += &format!(
            "| (no row: loop, loss read, checks) | | {rest:.2} | | {:.1}% | | | | |\n",
            100.0 * rest / step_ms
        );
        let rate = step_gflop / (step_ms / 1e3);
        s += &format!(
            "| the step | | | | 100% | {step_gflop:.2} | {rate:.1} | {:.0}% | |\n",
            100.0 * rate / peak_gflops
        );
        s
    }
}
