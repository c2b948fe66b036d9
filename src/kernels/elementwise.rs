//! Elementwise kernels: apply a scalar function to every element (or pair of elements), in
//! parallel over chunks once the tensor is large enough.

use super::broadcast::broadcast_shape;
use super::PAR_MIN_ELEMENTS;
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

/// y_i = f(x_i), for any layout of `x`.
pub fn map(x: ArrayViewD<'_, f32>, f: impl Fn(f32) -> f32 + Sync + Send) -> ArrayD<f32> {
    let z = Zip::from(&x);
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_map_collect(|&v| f(v))
    } else {
        z.map_collect(|&v| f(v))
    }
}

/// z_i = f(x_i, y_i), with `x` and `y` broadcast to a common shape (`op` names the op in the
/// error if they do not broadcast).
pub fn zip_map(
    op: &str,
    x: ArrayViewD<'_, f32>,
    y: ArrayViewD<'_, f32>,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> ArrayD<f32> {
    let shape = IxDyn(&broadcast_shape(op, x.shape(), y.shape()));
    let x = x.broadcast(shape.clone()).expect("shape checked above");
    let y = y.broadcast(shape).expect("shape checked above");
    let z = Zip::from(&x).and(&y);
    if x.len() >= PAR_MIN_ELEMENTS {
        z.par_map_collect(|&a, &b| f(a, b))
    } else {
        z.map_collect(|&a, &b| f(a, b))
    }
}

/// w_i = f(x_i, y_i, z_i) for three tensors of one shape (used by backward passes that need the
/// incoming gradient, an input and the output together).
pub fn zip3_map(
    x: ArrayViewD<'_, f32>,
    y: ArrayViewD<'_, f32>,
    z: ArrayViewD<'_, f32>,
    f: impl Fn(f32, f32, f32) -> f32 + Sync + Send,
) -> ArrayD<f32> {
    assert!(
        x.shape() == y.shape() && y.shape() == z.shape(),
        "zip3_map: shapes differ"
    );
    let zip = Zip::from(&x).and(&y).and(&z);
    if x.len() >= PAR_MIN_ELEMENTS {
        zip.par_map_collect(|&a, &b, &c| f(a, b, c))
    } else {
        zip.map_collect(|&a, &b, &c| f(a, b, c))
    }
}
