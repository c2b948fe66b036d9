//! Embedding lookup: gather rows of a table by id.

use crate::tape::{Tape, Var};
use ndarray::{ArrayD, Axis, IxDyn};

impl Tape {
    /// `y[i, :] = table[ids[i], :]` for a table `[V, D]`; the output has shape `ids_shape` + `[D]`
    /// (e.g. ids of shape [B, T] give [B, T, D]).
    ///
    /// `dL/dtable[v, :] = sum over every i with ids[i] = v of dL/dy[i, :]` (a scatter-add, so a
    /// repeated id accumulates the gradients of all its uses).
    ///
    /// ```
    /// use microlm::{Tape, Tensor};
    /// let mut tape = Tape::new();
    /// let table = tape.input(Tensor::from_shape_vec(vec![3, 2], vec![0., 1., 2., 3., 4., 5.]).unwrap());
    /// let y = tape.embedding(table, &[2, 0, 2], &[3]);
    /// assert_eq!(tape.value(y).as_slice().unwrap(), &[4., 5., 0., 1., 4., 5.]);
    /// ```
    pub fn embedding(&mut self, table: Var, ids: &[usize], ids_shape: &[usize]) -> Var {
        let tv = self.value(table).clone();
        assert!(
            tv.ndim() == 2,
            "embedding: the table must be [V, D], got {:?}",
            tv.shape()
        );
        let (vocab, d) = (tv.shape()[0], tv.shape()[1]);
        assert!(
            ids.len() == ids_shape.iter().product::<usize>(),
            "embedding: {} ids do not fill the shape {ids_shape:?}",
            ids.len()
        );
        if let Some((pos, &bad)) = ids.iter().enumerate().find(|(_, &id)| id >= vocab) {
            panic!("embedding: id {bad} (at position {pos}) is out of range for a vocabulary of {vocab}");
        }
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[ids.len(), d]));
        for (mut row, &id) in y.outer_iter_mut().zip(ids) {
            row.assign(&tv.index_axis(Axis(0), id));
        }
        let out_shape: Vec<usize> = ids_shape.iter().copied().chain([d]).collect();
        let y = y.into_shape_with_order(out_shape).expect("same element count");
        let ids = ids.to_vec();
        self.record("embedding", y, &[table], move |g| {
            let g = g.as_standard_layout().into_owned();
            let g = g
                .into_shape_with_order(IxDyn(&[ids.len(), d]))
                .expect("same element count");
            let mut dtable = ArrayD::<f32>::zeros(IxDyn(&[vocab, d]));
            for (g_row, &id) in g.outer_iter().zip(&ids) {
                let mut row = dtable.index_axis_mut(Axis(0), id);
                row += &g_row; // dL/dtable[id] += g[i]: from y[i] = table[ids[i]]
            }
            vec![dtable]
        })
    }
}
