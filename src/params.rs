//! Parameters: named tensors that persist across training steps, outside any tape.

use crate::tensor::Tensor;

/// A handle to one parameter in a [`Params`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(usize);

impl ParamId {
    /// Position in the store.
    pub fn index(self) -> usize {
        self.0
    }
    pub(crate) fn from_index(i: usize) -> ParamId {
        ParamId(i)
    }
}

/// A store of named parameters. A model's layers keep [`ParamId`]s; a forward pass puts them on
/// a tape with [`Tape::param`](crate::Tape::param); an optimizer updates them in place with
/// [`Params::value_mut`].
///
/// ```
/// use microlm::{Params, Tensor};
/// let mut params = Params::new();
/// let w = params.add("layer.weight", Tensor::zeros(vec![2, 3]));
/// assert_eq!(params.name(w), "layer.weight");
/// assert_eq!(params.value(w).shape(), &[2, 3]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Params {
    names: Vec<String>,
    values: Vec<Tensor>,
}

impl Params {
    /// An empty store.
    pub fn new() -> Params {
        Params::default()
    }

    /// Add a parameter. Names must be unique.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<Tensor>) -> ParamId {
        let name = name.into();
        assert!(
            self.find(&name).is_none(),
            "Params::add: a parameter named '{name}' already exists"
        );
        self.names.push(name);
        self.values.push(value.into());
        ParamId(self.values.len() - 1)
    }

    /// Number of parameters (tensors, not scalars).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Total number of scalars over all parameters.
    pub fn num_elements(&self) -> usize {
        self.values.iter().map(|v| v.len()).sum()
    }

    /// All ids, in the order they were added.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.values.len()).map(ParamId)
    }

    /// The parameter's name.
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.0]
    }

    /// Look a parameter up by name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// The parameter's current value.
    pub fn value(&self, id: ParamId) -> &Tensor {
        &self.values[id.0]
    }

    /// Mutable access for an optimizer. If a live tape still shares this storage, the data is
    /// copied first (copy on write), so a recorded forward pass is never changed under it.
    pub fn value_mut(&mut self, id: ParamId) -> &mut Tensor {
        &mut self.values[id.0]
    }
}
