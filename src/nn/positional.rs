//! Sinusoidal positional encoding (Vaswani et al., 2017, section 3.5):
//!
//!   PE(pos, 2i)   = sin(pos / 10000^(2i / d_model)),
//!   PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model)).
//!
//! A fixed table [max_len, d_model], computed once and added to the token embeddings. It has no
//! parameters. The angle is computed in f64 so that large positions stay accurate.

use crate::tensor::Tensor;
use ndarray::IxDyn;

/// The table PE[pos, j] for pos < max_len, j < d_model.
///
/// ```
/// let pe = microlm::nn::positional::sinusoidal_table(4, 6);
/// assert_eq!(pe[[0, 0]], 0.0); // sin(0)
/// assert_eq!(pe[[0, 1]], 1.0); // cos(0)
/// assert!((pe[[1, 0]] - 1f32.sin()).abs() < 1e-7); // sin(1 / 10000^0)
/// ```
pub fn sinusoidal_table(max_len: usize, d_model: usize) -> Tensor {
    Tensor::from_shape_fn(IxDyn(&[max_len, d_model]), |ix| {
        let (pos, j) = (ix[0], ix[1]);
        let two_i = (j - j % 2) as f64; // 2i for both columns 2i and 2i+1
        let angle = pos as f64 / 10000f64.powf(two_i / d_model as f64);
        (if j % 2 == 0 { angle.sin() } else { angle.cos() }) as f32
    })
}
