//! Every differentiable op against central finite differences, as properties over random
//! shapes and values.
//!
//! Each property builds L = sum(op(x) * w) with a fixed random weight tensor w of the output's
//! shape, so the scalar depends on every output element with its own weight, and checks dL/dx
//! with `gradcheck` at its default configuration (eps = 1e-2, atol = 5e-5, gtol = 3e-4,
//! rtol = 1e-2; see `microlm::gradcheck`) unless a comment says otherwise. Inputs are kept where the op is smooth within +-eps of them:
//! positive for log, sqrt and powf; away from 0 for relu and for div's denominator; distinct by
//! a wide margin for max; well spread rows for layer norm.
//!
//! `PROPTEST_CASES=n` overrides the number of cases (default in `common::DEFAULT_CASES`), and
//! `MICROLM_LOG_RATIOS=1 ... -- --nocapture` prints every case's worst gradcheck ratio.

mod common;

use common::*;
use microlm::gradcheck::{gradcheck, GradcheckConfig};
use microlm::kernels::broadcast::broadcast_shape;
use microlm::{Tape, Var};
use ndarray::{ArrayD, IxDyn};
use proptest::collection::vec;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Two operands that broadcast together (each may have size-1 dims and fewer leading axes than
/// the other, in either direction) and weights of the broadcast shape.
fn binary_case<A, B>(ea: A, eb: B) -> impl Strategy<Value = (T, T, T)>
where
    A: Strategy<Value = f32> + Clone + 'static,
    B: Strategy<Value = f32> + Clone + 'static,
{
    shape(0..=4)
        .prop_flat_map(|full| (broadcast_operand(full.clone()), broadcast_operand(full)))
        .prop_flat_map(move |(sa, sb)| {
            let out = broadcast_shape("test", &sa, &sb);
            (tensor_with(sa, ea.clone()), tensor_with(sb, eb.clone()), weights(out))
        })
}

/// One operand of rank 0..=3 and weights of its shape.
fn unary_case<S>(elem: S) -> impl Strategy<Value = (T, T)>
where
    S: Strategy<Value = f32> + Clone + 'static,
{
    shape(0..=3).prop_flat_map(move |s| (tensor_with(s.clone(), elem.clone()), weights(s)))
}

/// x of rank 0..=4, a random subset of its axes, keepdim, and weights of the result's shape.
/// With `distinct`, x's elements are at least 0.1 = 10 eps apart, so no +-eps step can change
/// an arg-max.
fn reduce_case(distinct: bool) -> impl Strategy<Value = (T, Vec<usize>, bool, T)> {
    shape(0..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), vec(any::<bool>(), r), any::<bool>())
        })
        .prop_flat_map(move |(s, mask, keepdim)| {
            let axes = axes_of(&mask);
            let out = reduced_shape(&s, &axes, keepdim);
            let x = if distinct {
                distinct_tensor(s, 0.1).boxed()
            } else {
                tensor(s, -2.0, 2.0).boxed()
            };
            (x, Just(axes), Just(keepdim), weights(out))
        })
}

/// Like [`reduce_case`], but x is reduced after a random permutation of its axes (a strided
/// view): (x, permutation, axes of the permuted view, keepdim, weights).
fn permuted_reduce_case(distinct: bool) -> impl Strategy<Value = (T, Vec<usize>, Vec<usize>, bool, T)> {
    shape(0..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            let perm = Just((0..r).collect::<Vec<usize>>()).prop_shuffle();
            (Just(s), perm, vec(any::<bool>(), r), any::<bool>())
        })
        .prop_flat_map(move |(s, perm, mask, keepdim)| {
            let axes = axes_of(&mask);
            let permuted: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
            let out = reduced_shape(&permuted, &axes, keepdim);
            let x = if distinct {
                distinct_tensor(s, 0.1).boxed()
            } else {
                tensor(s, -2.0, 2.0).boxed()
            };
            (x, Just(perm), Just(axes), Just(keepdim), weights(out))
        })
}

/// Operands of a matmul: `batches` gives the two batch shapes, `mkn` the matrix sizes; `ta`
/// and `tb` store an operand as [.., K, M] (or [.., N, K]) so that the closure reads it through
/// `tape.transpose`, a strided view. Returns (a, b, ta, tb, weights of the product).
fn matmul_case<BS, MS>(batches: BS, mkn: MS) -> impl Strategy<Value = (T, T, bool, bool, T)>
where
    BS: Strategy<Value = (Vec<usize>, Vec<usize>)>,
    MS: Strategy<Value = (usize, usize, usize)>,
{
    (batches, mkn, any::<bool>(), any::<bool>()).prop_flat_map(|((ba, bb), (m, k, n), ta, tb)| {
        let mut out = broadcast_shape("test", &ba, &bb);
        out.extend([m, n]);
        let (ma, mb) = (if ta { [k, m] } else { [m, k] }, if tb { [n, k] } else { [k, n] });
        let sa = [&ba[..], &ma[..]].concat();
        let sb = [&bb[..], &mb[..]].concat();
        (
            tensor(sa, -2.0, 2.0),
            tensor(sb, -2.0, 2.0),
            Just(ta),
            Just(tb),
            weights(out),
        )
    })
}

fn mkn() -> impl Strategy<Value = (usize, usize, usize)> {
    (1usize..=4, 1usize..=4, 1usize..=4)
}

/// L = sum(matmul(a', b') * w), where a' and b' are a and b read through a transpose when
/// `ta` / `tb` is set.
fn matmul_loss(t: &mut Tape, v: &[Var], ta: bool, tb: bool, w: &T) -> Var {
    let transposed = |t: &mut Tape, x: Var| {
        let r = t.shape(x).len();
        t.transpose(x, r - 2, r - 1)
    };
    let a = if ta { transposed(t, v[0]) } else { v[0] };
    let b = if tb { transposed(t, v[1]) } else { v[1] };
    let c = t.matmul(a, b);
    weighted_sum(t, c, w)
}

/// A target shape with the same element count as `s`: its dims shuffled, some neighbours
/// merged, and up to two size-1 axes added.
fn reshape_target(s: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let r = s.len();
    (Just(s).prop_shuffle(), vec(any::<bool>(), r), 0usize..=2, any::<bool>()).prop_map(
        |(shuffled, merge, ones, front)| {
            let mut target: Vec<usize> = Vec::new();
            for (d, m) in shuffled.into_iter().zip(merge) {
                match target.last_mut() {
                    Some(last) if m => *last *= d,
                    _ => target.push(d),
                }
            }
            for _ in 0..ones {
                if front {
                    target.insert(0, 1);
                } else {
                    target.push(1);
                }
            }
            target
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Binary ops, with broadcasting
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_broadcasting((a, b, w) in binary_case(-2.0f32..2.0, -2.0f32..2.0)) {
        check("add", &[a, b], |t, v| {
            let y = t.add(v[0], v[1]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn sub_broadcasting((a, b, w) in binary_case(-2.0f32..2.0, -2.0f32..2.0)) {
        check("sub", &[a, b], |t, v| {
            let y = t.sub(v[0], v[1]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn mul_broadcasting((a, b, w) in binary_case(-2.0f32..2.0, -2.0f32..2.0)) {
        check("mul", &[a, b], |t, v| {
            let y = t.mul(v[0], v[1]);
            weighted_sum(t, y, &w)
        })?;
    }

    /// The denominator stays at least 0.5 away from 0 (either sign).
    #[test]
    fn div_broadcasting((a, b, w) in binary_case(-2.0f32..2.0, away_from_zero(0.5, 2.0))) {
        check("div", &[a, b], |t, v| {
            let y = t.div(v[0], v[1]);
            weighted_sum(t, y, &w)
        })?;
    }

    /// The same Var as both operands: the two contributions must add up (x * x, x / x + x - x).
    #[test]
    fn binary_ops_on_one_var_used_twice((x, w) in unary_case(away_from_zero(0.5, 2.0))) {
        check("mul(x, x)", std::slice::from_ref(&x), |t, v| {
            let y = t.mul(v[0], v[0]);
            weighted_sum(t, y, &w)
        })?;
        check("div(x, x) + sub(x, x) + add(x, x)", &[x], |t, v| {
            let q = t.div(v[0], v[0]);
            let d = t.sub(v[0], v[0]);
            let s = t.add(v[0], v[0]);
            let qd = t.add(q, d);
            let y = t.add(qd, s);
            weighted_sum(t, y, &w)
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// Unary ops
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn neg((x, w) in unary_case(-2.0f32..2.0)) {
        check("neg", &[x], |t, v| {
            let y = t.neg(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn add_scalar((x, w) in unary_case(-2.0f32..2.0), c in -3.0f32..3.0) {
        check("add_scalar", &[x], |t, v| {
            let y = t.add_scalar(v[0], c);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn mul_scalar((x, w) in unary_case(-2.0f32..2.0), c in -3.0f32..3.0) {
        check("mul_scalar", &[x], |t, v| {
            let y = t.mul_scalar(v[0], c);
            weighted_sum(t, y, &w)
        })?;
    }

    /// x in [0.5, 2.5), so x^p is smooth for every p, including negative and fractional ones.
    #[test]
    fn powf(
        (x, w) in unary_case(0.5f32..2.5),
        p in prop_oneof![Just(2.0f32), Just(3.0), Just(0.5), Just(-1.0), Just(1.0), Just(0.0), -2.0f32..3.0],
    ) {
        check("powf", &[x], |t, v| {
            let y = t.powf(v[0], p);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn exp((x, w) in unary_case(-2.0f32..2.0)) {
        check("exp", &[x], |t, v| {
            let y = t.exp(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    /// x >= 0.3: ln's derivatives grow like 1/x^k near 0.
    #[test]
    fn log((x, w) in unary_case(0.3f32..3.0)) {
        check("log", &[x], |t, v| {
            let y = t.log(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn sqrt((x, w) in unary_case(0.2f32..3.0)) {
        check("sqrt", &[x], |t, v| {
            let y = t.sqrt(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn tanh((x, w) in unary_case(-3.0f32..3.0)) {
        check("tanh", &[x], |t, v| {
            let y = t.tanh(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn sigmoid((x, w) in unary_case(-4.0f32..4.0)) {
        check("sigmoid", &[x], |t, v| {
            let y = t.sigmoid(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    /// |x| >= 0.05 = 5 eps: no +-eps step crosses the kink at 0.
    #[test]
    fn relu((x, w) in unary_case(away_from_zero(0.05, 2.0))) {
        check("relu", &[x], |t, v| {
            let y = t.relu(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn gelu((x, w) in unary_case(-4.0f32..4.0)) {
        check("gelu", &[x], |t, v| {
            let y = t.gelu(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn gelu_tanh((x, w) in unary_case(-4.0f32..4.0)) {
        check("gelu_tanh", &[x], |t, v| {
            let y = t.gelu_tanh(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }
}

/// gelu_tanh and relu, values and derivatives, at chosen points against numbers computed by
/// hand (in f64, from y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and its derivative
/// (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2), t the tanh; and max(x, 0)).
#[test]
fn gelu_tanh_and_relu_values_and_derivatives_at_chosen_points() {
    let xs = [-3.0f32, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0];
    // (gelu_tanh(x), gelu_tanh'(x)) at each x
    let gelu_tanh = [
        (-0.003_637_392, -0.011_584_167),
        (-0.158_808_01, -0.082_964_084),
        (-0.154_286, 0.132_630_1),
        (0.0, 0.5),
        (0.345_714, 0.867_369_9),
        (0.841_192, 1.082_964_1),
        (1.954_597_7, 1.086_099_3),
    ];
    let relu = [
        (0.0, 0.0),
        (0.0, 0.0),
        (0.0, 0.0),
        (0.0, 0.0),
        (0.5, 1.0),
        (1.0, 1.0),
        (2.0, 1.0),
    ];
    let x: T = ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).unwrap();
    for (name, expected) in [("gelu_tanh", &gelu_tanh), ("relu", &relu)] {
        let mut tape = Tape::new();
        let xv = tape.input(x.clone());
        let y = if name == "relu" {
            tape.relu(xv)
        } else {
            tape.gelu_tanh(xv)
        };
        // L = sum(y), so dL/dx_i = f'(x_i).
        let l = tape.sum_all(y);
        let yv = tape.value(y).to_owned();
        let grads = tape.backward(l);
        let g = grads.wrt(xv).unwrap();
        for (i, &(y_want, g_want)) in expected.iter().enumerate() {
            assert!(
                (yv[i] - y_want).abs() <= 1e-6,
                "{name}({}) = {}, expected {y_want}",
                xs[i],
                yv[i]
            );
            assert!(
                (g[i] - g_want).abs() <= 1e-6,
                "{name}'({}) = {}, expected {g_want}",
                xs[i],
                g[i]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sum_over_random_axes((x, axes, keepdim, w) in reduce_case(false)) {
        check("sum", &[x], |t, v| {
            let y = t.sum(v[0], &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn sum_all(x in shape(0..=4).prop_flat_map(|s| tensor(s, -2.0, 2.0)), c in -1.0f32..1.0) {
        let c = ArrayD::from_elem(IxDyn(&[]), c);
        check("sum_all", &[x], |t, v| {
            let y = t.sum_all(v[0]);
            weighted_sum(t, y, &c)
        })?;
    }

    #[test]
    fn mean_over_random_axes((x, axes, keepdim, w) in reduce_case(false)) {
        check("mean", &[x], |t, v| {
            let y = t.mean(v[0], &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn max_over_random_axes((x, axes, keepdim, w) in reduce_case(true)) {
        check("max", &[x], |t, v| {
            let y = t.max(v[0], &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
    }

    /// Reductions of a permuted (strided, not row-major) view, as any op's output after a
    /// `permute` or `transpose` is. Currently fails for `sum`/`mean` (see the two bug probes
    /// below): it shrinks to a reduction over no axes, or over a size-1 axis, of such a view.
    #[test]
    fn sum_mean_max_of_permuted_views((x, perm, axes, keepdim, w) in permuted_reduce_case(true)) {
        check("sum of a permuted view", std::slice::from_ref(&x), |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.sum(p, &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
        check("mean of a permuted view", std::slice::from_ref(&x), |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.mean(p, &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
        check("max of a permuted view", &[x], |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.max(p, &axes, keepdim);
            weighted_sum(t, y, &w)
        })?;
    }
}

/// Bug probe: `sum` (and so `mean`) over no axes of a non-row-major input. `sum` copies x
/// with `to_owned`, which keeps the transposed (column-major) layout, then calls
/// `into_shape_with_order`, which only accepts row-major arrays and panics
/// ("same element count: ShapeError/IncompatibleLayout", src/ops/reduce.rs).
#[test]
fn sum_over_no_axes_of_a_transposed_view() {
    let x: T = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let mut tape = Tape::new();
    let xv = tape.input(x.clone());
    let xt = tape.transpose(xv, 0, 1);
    let y = tape.sum(xt, &[], false);
    assert_eq!(tape.value(y).to_owned(), x.t().to_owned());
}

/// Bug probe: `sum` over a size-1 axis of a permuted view. ndarray's `sum_axis` may then
/// collect the result in column-major order, which `into_shape_with_order` rejects the same way
/// (a batch of 1 after a transpose is enough to get there).
#[test]
fn sum_over_a_size_one_axis_of_a_permuted_view() {
    let x: T = ArrayD::from_shape_fn(IxDyn(&[4, 3, 1]), |i| (i[0] * 3 + i[1]) as f32);
    let mut tape = Tape::new();
    let xv = tape.input(x.clone());
    let xp = tape.permute(xv, &[1, 2, 0]); // [3, 1, 4], strides (1, 1, 3)
    let y = tape.sum(xp, &[1], false);
    let expected = x.index_axis(ndarray::Axis(2), 0).reversed_axes().to_owned();
    assert_eq!(tape.value(y).to_owned(), expected);
}

// ---------------------------------------------------------------------------------------------
// Shape ops
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Reshape of a row-major input, and (when `transposed`) of a transposed view, which must
    /// be copied to row-major order first.
    #[test]
    fn reshape(
        (x, transposed, target, w) in (shape(0..=4), any::<bool>())
            .prop_flat_map(|(s, transposed)| {
                let viewed = if transposed && s.len() >= 2 {
                    let mut v = s.clone();
                    let r = v.len();
                    v.swap(r - 2, r - 1);
                    v
                } else {
                    s.clone()
                };
                (tensor(s, -2.0, 2.0), Just(transposed), reshape_target(viewed))
            })
            .prop_flat_map(|(x, transposed, target)| (Just(x), Just(transposed), Just(target.clone()), weights(target)))
    ) {
        check("reshape", &[x], |t, v| {
            let r = t.shape(v[0]).len();
            let src = if transposed && r >= 2 { t.transpose(v[0], r - 2, r - 1) } else { v[0] };
            let y = t.reshape(src, &target);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn permute(
        (x, perm, w) in shape(0..=4)
            .prop_flat_map(|s| {
                let r = s.len();
                (Just(s), Just((0..r).collect::<Vec<usize>>()).prop_shuffle())
            })
            .prop_flat_map(|(s, perm)| {
                let out: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
                (tensor(s, -2.0, 2.0), Just(perm), weights(out))
            })
    ) {
        check("permute", &[x], |t, v| {
            let y = t.permute(v[0], &perm);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn transpose(
        (x, a1, a2, w) in shape(1..=4)
            .prop_flat_map(|s| {
                let r = s.len();
                (Just(s), 0..r, 0..r)
            })
            .prop_flat_map(|(s, a1, a2)| {
                let mut out = s.clone();
                out.swap(a1, a2);
                (tensor(s, -2.0, 2.0), Just(a1), Just(a2), weights(out))
            })
    ) {
        check("transpose", &[x], |t, v| {
            let y = t.transpose(v[0], a1, a2);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn narrow(
        (x, axis, start, len, w) in shape(1..=4)
            .prop_flat_map(|s| {
                let r = s.len();
                (Just(s), 0..r)
            })
            .prop_flat_map(|(s, axis)| {
                let d = s[axis];
                (Just(s), Just(axis), 0..d)
            })
            .prop_flat_map(|(s, axis, start)| {
                let d = s[axis];
                (Just(s), Just(axis), Just(start), 1..=d - start)
            })
            .prop_flat_map(|(s, axis, start, len)| {
                let mut out = s.clone();
                out[axis] = len;
                (tensor(s, -2.0, 2.0), Just(axis), Just(start), Just(len), weights(out))
            })
    ) {
        check("narrow", &[x], |t, v| {
            let y = t.narrow(v[0], axis, start, len);
            weighted_sum(t, y, &w)
        })?;
    }

    /// One to three inputs joined along a random axis, each with its own size along it.
    #[test]
    fn concat(
        (xs, axis, w) in shape(1..=3)
            .prop_flat_map(|s| {
                let r = s.len();
                (Just(s), 0..r, vec(1usize..=4, 1..=3))
            })
            .prop_flat_map(|(s, axis, sizes)| {
                let parts: Vec<_> = sizes
                    .iter()
                    .map(|&d| {
                        let mut p = s.clone();
                        p[axis] = d;
                        tensor(p, -2.0, 2.0)
                    })
                    .collect();
                let mut out = s.clone();
                out[axis] = sizes.iter().sum();
                (parts, Just(axis), weights(out))
            })
    ) {
        check("concat", &xs, |t, v| {
            let y = t.concat(v, axis);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn split_heads(
        (x, heads, w) in (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3)
            .prop_flat_map(|(b, tt, h, d)| (tensor(vec![b, tt, h * d], -2.0, 2.0), Just(h), weights(vec![b, h, tt, d])))
    ) {
        check("split_heads", &[x], |t, v| {
            let y = t.split_heads(v[0], heads);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn merge_heads(
        (x, w) in (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3)
            .prop_flat_map(|(b, h, tt, d)| (tensor(vec![b, h, tt, d], -2.0, 2.0), weights(vec![b, tt, h * d])))
    ) {
        check("merge_heads", &[x], |t, v| {
            let y = t.merge_heads(v[0]);
            weighted_sum(t, y, &w)
        })?;
    }

    /// merge_heads(split_heads(x)) is x, value for value, and its gradient is w.
    #[test]
    fn split_then_merge_heads_is_the_identity(
        (x, heads, w) in (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3)
            .prop_flat_map(|(b, tt, h, d)| {
                (tensor(vec![b, tt, h * d], -2.0, 2.0), Just(h), weights(vec![b, tt, h * d]))
            })
    ) {
        let mut tape = Tape::new();
        let xv = tape.input(x.clone());
        let s = tape.split_heads(xv, heads);
        let m = tape.merge_heads(s);
        prop_assert_eq!(tape.value(m).to_owned(), x.clone());
        check("merge_heads(split_heads)", &[x], |t, v| {
            let s = t.split_heads(v[0], heads);
            let y = t.merge_heads(s);
            weighted_sum(t, y, &w)
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// matmul
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// [M, K] x [K, N], each operand optionally a transposed view.
    #[test]
    fn matmul_2d((a, b, ta, tb, w) in matmul_case(Just((vec![], vec![])), mkn())) {
        check("matmul 2-D", &[a, b], |t, v| matmul_loss(t, v, ta, tb, &w))?;
    }

    /// Batched with broadcast batch axes: each operand's batch shape is a random broadcastable
    /// reduction of a common one (size-1 axes, fewer leading axes, either side; possibly none,
    /// i.e. a plain matrix).
    #[test]
    fn matmul_batched_broadcast(
        (a, b, ta, tb, w) in matmul_case(
            shape(1..=2).prop_flat_map(|full| (broadcast_operand(full.clone()), broadcast_operand(full))),
            mkn(),
        )
    ) {
        check("matmul batched", &[a, b], |t, v| matmul_loss(t, v, ta, tb, &w))?;
    }

    /// Batched with the same batch shape on both sides.
    #[test]
    fn matmul_batched_same_batch(
        (a, b, ta, tb, w) in matmul_case(shape(1..=2).prop_map(|s| (s.clone(), s)), mkn())
    ) {
        check("matmul same batch", &[a, b], |t, v| matmul_loss(t, v, ta, tb, &w))?;
    }

    /// A stack times one matrix, [B.., T, K] x [K, N] (the fast path that folds the stack into
    /// rows), and one matrix times a stack, [M, K] x [B.., K, N].
    #[test]
    fn matmul_stack_and_matrix(
        (a, b, ta, tb, w) in matmul_case(
            (shape(1..=2), any::<bool>()).prop_map(|(s, stack_first)| {
                if stack_first { (s, vec![]) } else { (vec![], s) }
            }),
            mkn(),
        )
    ) {
        check("matmul stack x matrix", &[a, b], |t, v| matmul_loss(t, v, ta, tb, &w))?;
    }

    /// The shapes of the spec's example: [2, 1, 3, 4] x [5, 4, 2] -> [2, 5, 3, 2].
    #[test]
    fn matmul_broadcast_example(
        (a, b, ta, tb, w) in matmul_case(Just((vec![2, 1], vec![5])), Just((3, 4, 2)))
    ) {
        check("matmul [2,1,3,4] x [5,4,2]", &[a, b], |t, v| matmul_loss(t, v, ta, tb, &w))?;
    }
}

// ---------------------------------------------------------------------------------------------
// softmax, layer norm
// ---------------------------------------------------------------------------------------------

fn softmax_case() -> impl Strategy<Value = (T, usize, T)> {
    shape(1..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r)
        })
        .prop_flat_map(|(s, axis)| (tensor(s.clone(), -3.0, 3.0), Just(axis), weights(s)))
}

/// x of rank 1..=3 with well-spread rows (see `spread_rows`), gamma and beta of [D], weights.
fn layer_norm_case() -> impl Strategy<Value = (T, T, T, T)> {
    shape(1..=3).prop_flat_map(|s| {
        let d = *s.last().unwrap();
        (
            spread_rows(s.clone(), 0.8),
            tensor(vec![d], -2.0, 2.0),
            tensor(vec![d], -2.0, 2.0),
            weights(s),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn softmax_over_random_axis((x, axis, w) in softmax_case()) {
        check("softmax", &[x], |t, v| {
            let y = t.softmax(v[0], axis);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn log_softmax_over_random_axis((x, axis, w) in softmax_case()) {
        check("log_softmax", &[x], |t, v| {
            let y = t.log_softmax(v[0], axis);
            weighted_sum(t, y, &w)
        })?;
    }

    /// Gradients for x, gamma and beta.
    #[test]
    fn layer_norm((x, gamma, beta, w) in layer_norm_case()) {
        check("layer_norm", &[x, gamma, beta], |t, v| {
            let y = t.layer_norm(v[0], v[1], v[2], 1e-5);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn layer_norm_reference((x, gamma, beta, w) in layer_norm_case()) {
        check("layer_norm_reference", &[x, gamma, beta], |t, v| {
            let y = t.layer_norm_reference(v[0], v[1], v[2], 1e-5);
            weighted_sum(t, y, &w)
        })?;
    }
}

/// The ops that work lane by lane (softmax, log_softmax, layer_norm, masked_fill, dropout,
/// cross_entropy) applied to a permuted view, whose lanes are not contiguous in memory:
/// (x, permutation, axis, weights of the view's shape, gamma, beta, mask, targets).
#[allow(clippy::type_complexity)]
fn permuted_lane_case() -> impl Strategy<Value = (T, Vec<usize>, usize, T, T, T, ArrayD<bool>, Vec<Option<usize>>)> {
    shape(1..=3)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), Just((0..r).collect::<Vec<usize>>()).prop_shuffle(), 0..r)
        })
        .prop_flat_map(|(s, perm, axis)| {
            let view: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
            let d = *view.last().unwrap();
            let n: usize = view.iter().product();
            let mask_shape = view.clone();
            let mask = vec(any::<bool>(), n)
                .prop_map(move |m| ArrayD::from_shape_vec(IxDyn(&mask_shape), m).expect("n elements"));
            (
                // Distinct by 0.5, so every lane of the view is spread (layer norm's 1/std stays
                // moderate) and the values stay within about +-32.
                distinct_tensor(s, 0.5),
                Just(perm),
                Just(axis),
                weights(view),
                tensor(vec![d], -2.0, 2.0),
                tensor(vec![d], -2.0, 2.0),
                mask,
                vec(proptest::option::weighted(0.67, 0..d), n / d),
            )
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lane_ops_on_permuted_views((x, perm, axis, w, gamma, beta, mask, targets) in permuted_lane_case()) {
        let d = gamma.len();
        // x is distinct by 0.5 (up to +-32) so that layer norm's lanes are spread; the other ops
        // get x / 5 (distinct by 0.1, up to +-6.4), because with |x| ~ 30 the loss itself is in
        // the hundreds and the f32 rounding of L divided by 2 eps approaches atol.
        let xs = x.mapv(|v| v * 0.2);
        check("softmax of a permuted view", std::slice::from_ref(&xs), |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.softmax(p, axis);
            weighted_sum(t, y, &w)
        })?;
        check("log_softmax of a permuted view", std::slice::from_ref(&xs), |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.log_softmax(p, axis);
            weighted_sum(t, y, &w)
        })?;
        check("layer_norm of a permuted view", &[x, gamma, beta], |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.layer_norm(p, v[1], v[2], 1e-5);
            weighted_sum(t, y, &w)
        })?;
        check("masked_fill of a permuted view", std::slice::from_ref(&xs), |t, v| {
            let p = t.permute(v[0], &perm);
            let y = t.masked_fill(p, &mask, 0.5);
            weighted_sum(t, y, &w)
        })?;
        check("dropout of a permuted view", std::slice::from_ref(&xs), |t, v| {
            let p = t.permute(v[0], &perm);
            let mut rng = StdRng::seed_from_u64(d as u64);
            let y = t.dropout(p, 0.5, &mut rng);
            weighted_sum(t, y, &w)
        })?;
        check("cross_entropy of a permuted view", &[xs], |t, v| {
            let p = t.permute(v[0], &perm);
            t.cross_entropy(p, &targets).mean
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// embedding, masked_fill, dropout
// ---------------------------------------------------------------------------------------------

/// A table [V, D], ids of shape [T] or [B, T] with at least one id repeated, and weights.
fn embedding_case() -> impl Strategy<Value = (T, Vec<usize>, Vec<usize>, T)> {
    (1usize..=5, 1usize..=4, 1usize..=3, 2usize..=4, any::<bool>()).prop_flat_map(|(v, d, b, tt, two_d)| {
        let ids_shape = if two_d { vec![b, tt] } else { vec![tt] };
        let n: usize = ids_shape.iter().product();
        let ids = vec(0..v, n).prop_map(|mut ids| {
            // Force a repeat, so the scatter-add of the gradient has something to add.
            let last = ids.len() - 1;
            ids[last] = ids[0];
            ids
        });
        let mut out = ids_shape.clone();
        out.push(d);
        (tensor(vec![v, d], -2.0, 2.0), ids, Just(ids_shape), weights(out))
    })
}

/// x of rank 1..=3, a bool mask whose shape broadcasts to x's, a fill value, weights.
fn masked_fill_case() -> impl Strategy<Value = (T, ArrayD<bool>, f32, T)> {
    shape(1..=3)
        .prop_flat_map(|s| (Just(s.clone()), broadcast_operand(s)))
        .prop_flat_map(|(s, ms)| {
            let n: usize = ms.iter().product();
            let mask =
                vec(any::<bool>(), n).prop_map(move |m| ArrayD::from_shape_vec(IxDyn(&ms), m).expect("n elements"));
            (tensor(s.clone(), -2.0, 2.0), mask, -5.0f32..5.0, weights(s))
        })
}

proptest! {
    #![proptest_config(config())]

    /// The gradient wrt the table, with repeated ids accumulating.
    #[test]
    fn embedding((table, ids, ids_shape, w) in embedding_case()) {
        check("embedding", &[table], |t, v| {
            let y = t.embedding(v[0], &ids, &ids_shape);
            weighted_sum(t, y, &w)
        })?;
    }

    #[test]
    fn masked_fill((x, mask, value, w) in masked_fill_case()) {
        check("masked_fill", &[x], |t, v| {
            let y = t.masked_fill(v[0], &mask, value);
            weighted_sum(t, y, &w)
        })?;
    }

    /// The attention pattern: fill with -inf, then softmax over the last axis (lanes that are
    /// entirely masked give zeros).
    #[test]
    fn masked_fill_neg_inf_then_softmax((x, mask, _value, w) in masked_fill_case()) {
        check("masked_fill(-inf) + softmax", &[x], |t, v| {
            let y = t.masked_fill(v[0], &mask, f32::NEG_INFINITY);
            let r = t.shape(y).len();
            let p = t.softmax(y, r - 1);
            weighted_sum(t, p, &w)
        })?;
    }

    /// The generator is seeded inside the closure, so every evaluation draws the same mask.
    #[test]
    fn dropout((x, w) in unary_case(-2.0f32..2.0), p in 0.0f32..0.9, seed in any::<u64>()) {
        check("dropout", &[x], |t, v| {
            let mut rng = StdRng::seed_from_u64(seed);
            let y = t.dropout(v[0], p, &mut rng);
            weighted_sum(t, y, &w)
        })?;
    }
}

/// Backward of dropout over more than one 4096-element chunk of its mask: dL/dx must be the
/// mask the forward used, which is y / x wherever x != 0 (0 or exactly 1/(1-p)).
#[test]
fn dropout_backward_uses_the_forward_mask_across_chunks() {
    let n = 3 * 4096 + 17;
    let x: T = ArrayD::from_shape_fn(IxDyn(&[n]), |i| 1.0 + (i[0] % 7) as f32);
    let p = 0.3;
    let mut tape = Tape::new();
    let xv = tape.input(x.clone());
    let mut rng = StdRng::seed_from_u64(7);
    let y = tape.dropout(xv, p, &mut rng);
    let yv = tape.value(y).to_owned();
    let loss = tape.sum_all(y);
    let grads = tape.backward(loss);
    let g = grads.wrt(xv).unwrap();
    let scale = 1.0 / (1.0 - p);
    let mut dropped = 0;
    for i in 0..n {
        let m = yv[i] / x[i];
        assert!(m == 0.0 || (m - scale).abs() <= 1e-6 * scale, "mask value {m} at {i}");
        assert!(
            (g[i] - m).abs() <= 1e-6 * scale,
            "gradient {} but mask {m} at {i}",
            g[i]
        );
        dropped += (m == 0.0) as usize;
    }
    let rate = dropped as f32 / n as f32;
    assert!(
        (rate - p).abs() < 0.03,
        "dropped {rate} of the elements, expected about {p}"
    );
}

// ---------------------------------------------------------------------------------------------
// cross-entropy
// ---------------------------------------------------------------------------------------------

/// Logits [.., V] of rank 1..=3 and one target per position, about a third of them None.
fn cross_entropy_case() -> impl Strategy<Value = (T, Vec<Option<usize>>)> {
    shape(1..=3).prop_flat_map(|s| {
        let v = *s.last().unwrap();
        let positions = s.iter().product::<usize>() / v;
        (
            tensor(s, -3.0, 3.0),
            vec(proptest::option::weighted(0.67, 0..v), positions),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// L = mean + c * sum, so both outputs' gradients are checked.
    #[test]
    fn cross_entropy((z, targets) in cross_entropy_case(), c in -1.0f32..1.0) {
        check("cross_entropy", &[z], |t, v| {
            let ce = t.cross_entropy(v[0], &targets);
            let s = t.mul_scalar(ce.sum, c);
            t.add(ce.mean, s)
        })?;
    }

    #[test]
    fn cross_entropy_reference((z, targets) in cross_entropy_case(), c in -1.0f32..1.0) {
        check("cross_entropy_reference", &[z], |t, v| {
            let mean = t.cross_entropy_reference(v[0], &targets);
            t.mul_scalar(mean, c)
        })?;
    }

    /// Every target ignored: the loss is 0 and the gradient exactly 0 (not NaN).
    #[test]
    fn cross_entropy_all_ignored((z, targets) in cross_entropy_case()) {
        let none = vec![None; targets.len()];
        let mut tape = Tape::new();
        let zv = tape.input(z.clone());
        let ce = tape.cross_entropy(zv, &none);
        prop_assert_eq!(ce.count, 0);
        prop_assert_eq!(tape.scalar(ce.mean), 0.0);
        prop_assert_eq!(tape.scalar(ce.sum), 0.0);
        let grads = tape.backward(ce.mean);
        let g = grads.wrt(zv).expect("the logits are an input");
        prop_assert!(g.iter().all(|&x| x == 0.0), "gradient is not exactly zero: {:?}", g);
        check("cross_entropy (all ignored)", std::slice::from_ref(&z), |t, v| t.cross_entropy(v[0], &none).mean)?;
        check("cross_entropy_reference (all ignored)", &[z], |t, v| t.cross_entropy_reference(v[0], &none))?;
    }
}

// ---------------------------------------------------------------------------------------------
// gradcheck itself can fail
// ---------------------------------------------------------------------------------------------

/// y = x^2 recorded with the wrong backward 3x (instead of 2x).
fn bad_square(t: &mut Tape, x: Var) -> Var {
    let xv = t.value(x).to_owned();
    let y = xv.mapv(|a| a * a);
    t.record("bad_square", y, &[x], move |g| vec![g * &xv * 3.0])
}

#[test]
fn gradcheck_rejects_a_wrong_backward_and_names_the_element() {
    let x: T = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -2.0, 1.0]).unwrap();
    let err = gradcheck(
        |t, v| {
            let y = bad_square(t, v[0]);
            t.sum_all(y)
        },
        &[x],
        GradcheckConfig::default(),
    )
    .expect_err("a backward of 3x for x^2 must fail the check");
    // The error |3x - 2x| = |x| is largest, relative to the tolerance, at the largest |x|.
    assert!(err.contains("input 0 at [1]"), "{err}");
    assert!(err.contains("analytic -6.000000e0"), "{err}");
    assert!(err.contains("numeric -4.0") || err.contains("numeric -3.99"), "{err}");
}

proptest! {
    #![proptest_config(config())]

    /// For any x with an element of |x| >= 0.1, the wrong backward is caught.
    #[test]
    fn gradcheck_rejects_a_wrong_backward_everywhere((x, w) in unary_case(away_from_zero(0.1, 2.0))) {
        let result = gradcheck(
            |t, v| {
                let y = bad_square(t, v[0]);
                weighted_sum(t, y, &w)
            },
            &[x],
            GradcheckConfig::default(),
        );
        // Only a case where every weight is tiny could pass; w is uniform in [-1, 1).
        if w.iter().any(|&wi| wi.abs() > 0.2) {
            let err = result.expect_err("a wrong backward must fail the check");
            prop_assert!(err.contains("worst is input 0 at ["), "{}", err);
        }
    }
}

/// tanh recorded with either its true backward, dL/dx = dL/dy (1 - y^2), or a wrong one that
/// returns zeros.
fn tanh_with_backward(t: &mut Tape, x: Var, correct: bool) -> Var {
    let y = t.value(x).mapv(f32::tanh);
    let y_saved = y.clone();
    t.record("tanh (test)", y, &[x], move |g| {
        if correct {
            vec![g * &y_saved.mapv(|y| 1.0 - y * y)]
        } else {
            vec![g.mapv(|_| 0.0)]
        }
    })
}

/// A backward that returns zeros, on a function whose true gradient is small but not
/// negligible: L = sum(tanh(x)) at saturated x, where dL/dx = 1 - tanh^2 x is 7.4e-4, 4.0e-4
/// and 2.2e-4 (by hand: 4 e^(-2|x|), to within 0.2%). gradcheck must reject it and pass the
/// true backward. The old default, a plain absolute tolerance of 1e-3, passed both.
#[test]
fn gradcheck_rejects_a_zero_backward_where_every_gradient_is_small() {
    let x: T = ArrayD::from_shape_vec(IxDyn(&[3]), vec![4.3, -4.6, 4.9]).unwrap();
    let loss = |correct: bool| {
        move |t: &mut Tape, v: &[Var]| {
            let y = tanh_with_backward(t, v[0], correct);
            t.sum_all(y)
        }
    };
    let err = gradcheck(loss(false), std::slice::from_ref(&x), GradcheckConfig::default())
        .expect_err("a zero backward must fail where the true gradient is 2e-4 .. 7e-4");
    // The largest miss is at the largest true gradient, x = 4.3.
    assert!(err.contains("input 0 at [0]: analytic 0.000000e0, numeric 7."), "{err}");
    let report =
        gradcheck(loss(true), std::slice::from_ref(&x), GradcheckConfig::default()).expect("the true backward passes");
    assert!(report.worst_ratio < 0.5, "{report}");
    let old_default = GradcheckConfig {
        eps: 1e-2,
        atol: 1e-3,
        gtol: 0.0,
        rtol: 1e-2,
    };
    assert!(
        gradcheck(loss(false), &[x], old_default).is_ok(),
        "the plain absolute tolerance of 1e-3 let the zero backward through"
    );
}

/// The check does not depend on the loss's scale: x^2 with the backward 3x instead of 2x,
/// scaled by 1e-3 so that every gradient is below 1e-3 (at most 2e-3 |x| with |x| <= 0.45),
/// is still rejected, and the true backward still passes.
#[test]
fn gradcheck_rejects_a_wrong_backward_on_a_small_loss() {
    let x: T = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.45, -0.3, 0.1, -0.05]).unwrap();
    let err = gradcheck(
        |t, v| {
            let y = bad_square(t, v[0]);
            let s = t.sum_all(y);
            t.mul_scalar(s, 1e-3)
        },
        std::slice::from_ref(&x),
        GradcheckConfig::default(),
    )
    .expect_err("a backward of 3x for x^2 must fail at any scale");
    assert!(err.contains("input 0 at [0]"), "{err}");
    gradcheck(
        |t, v| {
            let y = t.mul(v[0], v[0]);
            let s = t.sum_all(y);
            t.mul_scalar(s, 1e-3)
        },
        &[x],
        GradcheckConfig::default(),
    )
    .expect("the true backward of x^2 passes at any scale");
}

/// The mask kept as bits gives the values an f32 mask gives: y = x * m and dL/dx = g * m with
/// m = 0 or 1/(1-p), bit for bit, m drawn as documented (chunks of 4096 elements in row-major
/// order, chunk c seeded with seed ^ c * 0x9E3779B97F4A7C15, m = 0 where a uniform f32 is < p).
/// Here on a transposed (not row-major) input and gradient, over a partial last chunk.
#[test]
fn dropout_bits_equal_an_f32_mask_drawn_as_documented() {
    let (rows, cols) = (61, 150); // 9,150 elements: two whole chunks and a partial one
    let p = 0.35f32;
    let seed_rng_seed = 11;
    let x: T = ArrayD::from_shape_fn(IxDyn(&[cols, rows]), |i| {
        (i[0] as f32 - 70.0) * 0.37 + i[1] as f32 * 0.011
    });
    let x = x.reversed_axes(); // [rows, cols], column-major in memory
    let w: T =
        ArrayD::from_shape_fn(IxDyn(&[cols, rows]), |i| ((i[0] * 7 + i[1] * 3) % 11) as f32 - 5.5).reversed_axes();
    // The reference mask, row-major over [rows, cols].
    let seed = StdRng::seed_from_u64(seed_rng_seed).next_u64();
    let scale = 1.0 / (1.0 - p);
    let n = rows * cols;
    let mut m = vec![0.0f32; n];
    for (c, chunk) in m.chunks_mut(4096).enumerate() {
        let mut r = StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for v in chunk.iter_mut() {
            *v = if r.random::<f32>() < p { 0.0 } else { scale };
        }
    }
    let mut tape = Tape::new();
    let xv = tape.input(x.clone());
    let y = tape.dropout(xv, p, &mut StdRng::seed_from_u64(seed_rng_seed));
    let yv = tape.value(y).to_owned();
    let wv = tape.constant(w.clone());
    let yw = tape.mul(y, wv);
    let loss = tape.sum_all(yw);
    let grads = tape.backward(loss);
    let g = grads.wrt(xv).unwrap();
    let mut dropped = 0;
    for r in 0..rows {
        for c in 0..cols {
            let mi = m[r * cols + c];
            assert_eq!(yv[[r, c]].to_bits(), (x[[r, c]] * mi).to_bits(), "y at [{r}, {c}]");
            assert_eq!(g[[r, c]].to_bits(), (w[[r, c]] * mi).to_bits(), "dL/dx at [{r}, {c}]");
            dropped += (mi == 0.0) as usize;
        }
    }
    assert!((dropped as f32 / n as f32 - p).abs() < 0.03, "dropped {dropped} of {n}");
}
