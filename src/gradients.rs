//! Gradients: what one `backward` returns, and how passes are combined.

use crate::params::ParamId;
use crate::tensor::Grad;

/// The gradients one `backward` produced: for each [`Tape::input`](crate::Tape::input) leaf and each parameter.
///
/// Gradients from several backward passes (micro-batches) are combined only when you say so,
/// with [`Gradients::accumulate`].
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    leaves: Vec<Option<Grad>>,
    params: Vec<Option<Grad>>,
}

impl Gradients {
    /// Room for the gradients of a tape of `nodes` nodes, none set yet.
    pub(crate) fn with_leaves(nodes: usize) -> Gradients {
        Gradients {
            leaves: vec![None; nodes],
            params: Vec::new(),
        }
    }

    /// The gradient of the leaf at node index `i`, if one reached it. Users ask by handle,
    /// with `wrt(var)` (defined in `tape/backward.rs`, beside the tape that makes `Var`s).
    pub(crate) fn leaf(&self, i: usize) -> Option<&Grad> {
        self.leaves.get(i).and_then(|g| g.as_ref())
    }

    /// Move the gradient of the leaf at node index `i` out, if one reached it.
    pub(crate) fn take_leaf(&mut self, i: usize) -> Option<Grad> {
        self.leaves.get_mut(i).and_then(Option::take)
    }

    /// Move dL/d(parameter) out, if the parameter received one.
    pub(crate) fn take_param(&mut self, id: ParamId) -> Option<Grad> {
        self.params.get_mut(id.index()).and_then(Option::take)
    }

    pub(crate) fn set_leaf(&mut self, i: usize, grad: Grad) {
        self.leaves[i] = Some(grad);
    }

    /// dL/d(parameter); `None` if the parameter was not used (or no gradient reached it).
    pub fn param(&self, id: ParamId) -> Option<&Grad> {
        self.params.get(id.index()).and_then(|g| g.as_ref())
    }

    /// Iterate over the parameters that received a gradient.
    pub fn params(&self) -> impl Iterator<Item = (ParamId, &Grad)> {
        self.params
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.as_ref().map(|g| (ParamId::from_index(i), g)))
    }

    pub(crate) fn add_param(&mut self, id: ParamId, grad: Grad) {
        let i = id.index();
        if self.params.len() <= i {
            self.params.resize(i + 1, None);
        }
        match &mut self.params[i] {
            Some(acc) => *acc += &grad,
            slot => *slot = Some(grad),
        }
    }

    /// Add another pass's parameter gradients into these (gradient accumulation over
    /// micro-batches). Leaf gradients are not combined.
    pub fn accumulate(&mut self, other: Gradients) {
        for (i, g) in other.params.into_iter().enumerate() {
            if let Some(g) = g {
                self.add_param(ParamId::from_index(i), g);
            }
        }
    }

    /// Multiply every parameter gradient by `factor` (e.g. 1 / number of micro-batches).
    pub fn scale(&mut self, factor: f32) {
        for g in self.params.iter_mut().flatten() {
            *g *= factor;
        }
    }

    /// The global L2 norm over all parameter gradients, sqrt(sum of g^2), summed in f64.
    pub fn global_norm(&self) -> f32 {
        let sq: f64 = self
            .params
            .iter()
            .flatten()
            .map(|g| match g.as_slice() {
                Some(x) => sum_of_squares(x),
                None => g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>(),
            })
            .sum();
        sq.sqrt() as f32
    }
}

/// sum_i x_i^2 in f64, in 8 lanes (lane j adds elements j, j + 8, ..) that are added in order
/// at the end: a fixed order, so the same bits every time, which the compiler vectorises.
fn sum_of_squares(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&v| (v as f64) * (v as f64)).sum();
    for c in chunks {
        for j in 0..8 {
            lanes[j] += (c[j] as f64) * (c[j] as f64);
        }
    }
    lanes.iter().sum::<f64>() + rest
}
