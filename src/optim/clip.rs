//! Gradient clipping by global norm (Pascanu et al., 2013, "On the difficulty of training
//! recurrent neural networks", Algorithm 1), as `torch.nn.utils.clip_grad_norm_` does it:
//!
//!   norm = sqrt(sum over all parameters and elements of g^2)
//!   if norm > max_norm:  g = g * max_norm / (norm + 1e-6)     for every parameter gradient
//!
//! Every gradient is scaled by the same factor, so the update keeps its direction and only its
//! length is capped. The 1e-6 is PyTorch's guard against dividing by zero; it leaves the
//! clipped norm a hair below `max_norm`. The returned value is the norm before clipping, worth
//! logging: a run whose norm keeps hitting the cap is a run whose learning rate is too high.

use crate::gradients::Gradients;

/// Scale `grads` so their global L2 norm is at most `max_norm`; return the norm before
/// clipping. A non-finite norm (an overflow or NaN upstream) is returned as is; the gradients
/// then hold NaN or infinity, so check the returned value before stepping.
///
/// Panics if `max_norm` is not positive (`f32::INFINITY` is allowed and never clips).
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f32) -> f32 {
    assert!(max_norm > 0.0, "clip_grad_norm: max_norm = {max_norm} must be positive");
    let norm = grads.global_norm();
    if norm > max_norm {
        grads.scale(max_norm / (norm + 1e-6));
    }
    norm
}
