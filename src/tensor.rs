//! The ground floor: the two array types everything else is built on. This module imports
//! nothing from the crate; every other module may import it.

use ndarray::{ArcArray, ArrayD, IxDyn};

/// A tensor: an f32 array of any rank whose storage is reference counted, so the tape, the
/// parameter store and views such as a transpose share it instead of copying.
pub type Tensor = ArcArray<f32, IxDyn>;

/// A gradient: an owned f32 array with the shape of the value it belongs to.
pub type Grad = ArrayD<f32>;
