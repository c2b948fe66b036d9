//! The tensor arithmetic the mapping needs, with nothing of either library's names in it:
//! transposes (PyTorch's `Linear` stores W as [out, in], GPT-2's `Conv1D` as [in, out]),
//! stacking and splitting rows (GPT-2 keeps W_Q, W_K, W_V in one matrix), recognising a scaled
//! sinusoid in a learned position table, and moving an output bias into the LayerNorm before
//! it (GPT-2 has no output bias).

use crate::nn::positional::sinusoidal_table;
use crate::params::{ParamId, Params};
use crate::tensor::Tensor;
use ndarray::{Axis, IxDyn};
use std::collections::BTreeMap;

/// A 2-D tensor's transpose, as a fresh array in row-major order.
pub fn transposed(t: &Tensor) -> Tensor {
    t.t().as_standard_layout().into_owned().into_shared()
}

/// Every element times `s` (in f32, as the model's own forward multiplies).
pub fn scaled(t: &Tensor, s: f32) -> Tensor {
    t.mapv(|x| x * s).into_shared()
}

/// The rows of `parts` one after another: [n_1 + n_2 + ..., d] (or the vectors end to end).
pub fn stacked(parts: &[&Tensor]) -> Tensor {
    let views: Vec<_> = parts.iter().map(|t| t.view()).collect();
    ndarray::concatenate(Axis(0), &views)
        .expect("stacked: the parts differ in their other dimensions")
        .into_shared()
}

/// `t` cut along its first axis into `n` equal parts (the inverse of [`stacked`]).
pub fn split(t: &Tensor, n: usize) -> Vec<Tensor> {
    let rows = t.shape()[0] / n;
    (0..n)
        .map(|k| {
            let part = t.slice_axis(Axis(0), ndarray::Slice::from(k * rows..(k + 1) * rows));
            part.as_standard_layout().into_owned().into_shared()
        })
        .collect()
}

/// Take tensor `name` from a library's file, with the shape `shape`; the error names both.
pub fn take(tensors: &BTreeMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Tensor, String> {
    let t = tensors
        .get(name)
        .ok_or_else(|| format!("model.safetensors has no tensor '{name}' (shape {shape:?})"))?;
    if t.shape() != shape {
        return Err(format!(
            "model.safetensors: tensor '{name}' has shape {:?}, the config calls for {shape:?}",
            t.shape()
        ));
    }
    Ok(t.clone())
}

/// Put `value` (from the other library's tensor `source`) into parameter `id`, whose shape it
/// must have; a NaN or infinity is refused.
pub fn put(params: &mut Params, id: ParamId, value: Tensor, source: &str) -> Result<(), String> {
    let want = params.value(id).shape().to_vec();
    if value.shape() != want.as_slice() {
        return Err(format!(
            "tensor '{source}' has shape {:?}, but microlm's '{}' needs {want:?}",
            value.shape(),
            params.name(id)
        ));
    }
    if let Some(i) = value.iter().position(|x| !x.is_finite()) {
        return Err(format!("tensor '{source}' holds a NaN or infinity at flat index {i}"));
    }
    *params.value_mut(id) = value;
    Ok(())
}

/// The factor a such that `table` [n, d] is a PE(n, d), the sinusoid times a, or an error
/// naming `name` and where it departs from every such table. a is read off PE[0, 1] = cos 0 = 1,
/// so a table written as sinusoid times a gives back a to the bit; any element more than
/// 1e-6 max(1, |a|) from a PE is refused (microlm's positions are the fixed sinusoid, not learned).
pub fn position_scale_of(table: &Tensor, name: &str) -> Result<f32, String> {
    let (n, d) = (table.shape()[0], table.shape()[1]);
    if n == 0 || d < 2 {
        return Err(format!(
            "tensor '{name}' {:?} is too small to hold a sinusoid",
            table.shape()
        ));
    }
    let a = table[[0, 1]];
    let pe = sinusoidal_table(n, d) * a;
    let tolerance = 1e-6 * a.abs().max(1.0);
    let (worst, at) = table
        .indexed_iter()
        .map(|(ix, &x)| ((x - pe[[ix[0], ix[1]]]).abs(), ix))
        .fold(
            (0.0f32, IxDyn(&[0, 0])),
            |(w, at), (e, ix)| if e > w { (e, ix) } else { (w, at) },
        );
    if worst > tolerance || table.iter().any(|x| !x.is_finite()) {
        return Err(format!(
            "tensor '{name}' is not the sinusoidal table times a factor (it departs from {a} x PE by {worst:e} \
             at position {}, column {}): microlm's positions are the fixed sinusoid, so a model whose \
             position table was trained cannot be imported (freeze it while training: requires_grad_(False))",
            at[0], at[1]
        ));
    }
    Ok(a)
}

/// The shift delta of the hidden state that does an output bias's work:
///
///   logits = h W^T + b = (h + delta) W^T   when   W delta = b,
///
/// with W `[V, d]` and b `[V]`. A solution exists for every b when W has V independent rows
/// (so V <= d); this takes the smallest, delta = W^T (W W^T)^{-1} b, solved in f64 by Cholesky.
/// Returns delta and the largest |W delta - b| in f32, or `None` when W W^T is singular to
/// working precision (no exact delta).
pub fn bias_as_shift(w: &Tensor, b: &Tensor) -> Option<(Tensor, f32)> {
    let (v, d) = (w.shape()[0], w.shape()[1]);
    if v > d {
        return None;
    }
    let wf: Vec<f64> = w.iter().map(|&x| x as f64).collect();
    let row = |i: usize| &wf[i * d..(i + 1) * d];
    // G = W W^T [V, V], then its Cholesky factor L (G = L L^T), in place.
    let mut g = vec![0f64; v * v];
    for i in 0..v {
        for j in 0..=i {
            let dot: f64 = row(i).iter().zip(row(j)).map(|(x, y)| x * y).sum();
            g[i * v + j] = dot;
        }
    }
    let largest = (0..v).map(|i| g[i * v + i]).fold(0.0, f64::max);
    for j in 0..v {
        let pivot = g[j * v + j] - (0..j).map(|k| g[j * v + k] * g[j * v + k]).sum::<f64>();
        if pivot.is_nan() || pivot <= 1e-12 * largest {
            return None; // W's rows are (nearly) dependent
        }
        let l_jj = pivot.sqrt();
        g[j * v + j] = l_jj;
        for i in j + 1..v {
            let s = g[i * v + j] - (0..j).map(|k| g[i * v + k] * g[j * v + k]).sum::<f64>();
            g[i * v + j] = s / l_jj;
        }
    }
    // Solve L z = b, then L^T y = z; delta = W^T y.
    let mut y: Vec<f64> = b.iter().map(|&x| x as f64).collect();
    for i in 0..v {
        y[i] = (y[i] - (0..i).map(|k| g[i * v + k] * y[k]).sum::<f64>()) / g[i * v + i];
    }
    for i in (0..v).rev() {
        y[i] = (y[i] - (i + 1..v).map(|k| g[k * v + i] * y[k]).sum::<f64>()) / g[i * v + i];
    }
    let delta: Vec<f32> = (0..d)
        .map(|c| (0..v).map(|i| wf[i * d + c] * y[i]).sum::<f64>() as f32)
        .collect();
    let residual = (0..v)
        .map(|i| {
            let wd: f64 = row(i).iter().zip(&delta).map(|(x, &y)| x * y as f64).sum();
            (wd - b[[i]] as f64).abs() as f32
        })
        .fold(0.0f32, f32::max);
    Some((
        Tensor::from_shape_vec(IxDyn(&[d]), delta)
            .expect("d values")
            .into_shared(),
        residual,
    ))
}

/// How a tensor is laid out in the other library, against microlm's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The same array (PyTorch `Linear` and microlm both store W as [out, in]).
    Same,
    /// The transpose (GPT-2's `Conv1D` stores W as [in, out]).
    Transposed,
}

/// One tensor that maps one to one: its name in the other library, the microlm parameter, and
/// the layout.
#[derive(Clone, Debug)]
pub struct Link {
    /// The other library's name (`transformer.h.0.ln_1.weight`).
    pub name: String,
    /// microlm's parameter.
    pub id: ParamId,
    /// Same or transposed.
    pub layout: Layout,
}

impl Link {
    /// A link whose layout is the same on both sides.
    pub fn same(name: impl Into<String>, id: ParamId) -> Link {
        Link {
            name: name.into(),
            id,
            layout: Layout::Same,
        }
    }

    /// A link whose matrix is transposed on the other side.
    pub fn transposed(name: impl Into<String>, id: ParamId) -> Link {
        Link {
            name: name.into(),
            id,
            layout: Layout::Transposed,
        }
    }
}

/// Export: each link's parameter, laid out for the other library, under its name.
pub fn write_links(links: &[Link], params: &Params, out: &mut BTreeMap<String, Tensor>) {
    for link in links {
        let v = params.value(link.id);
        let t = match link.layout {
            Layout::Same => v.clone(),
            Layout::Transposed => transposed(v),
        };
        out.insert(link.name.clone(), t);
    }
}

/// Import: each link's tensor from the other library's file into its parameter, checking its
/// shape; the names read are added to `used`.
pub fn read_links(
    links: &[Link],
    tensors: &BTreeMap<String, Tensor>,
    params: &mut Params,
    used: &mut Vec<String>,
) -> Result<(), String> {
    for link in links {
        let shape = params.value(link.id).shape().to_vec();
        let t = match link.layout {
            Layout::Same => take(tensors, &link.name, &shape)?,
            Layout::Transposed => transposed(&take(tensors, &link.name, &[shape[1], shape[0]])?),
        };
        put(params, link.id, t, &link.name)?;
        used.push(link.name.clone());
    }
    Ok(())
}
