//! Dropout as a layer: a probability, applied with the tape's training flag.

use crate::tape::{Tape, Var};
use rand::Rng;

/// Inverted dropout with probability `p` (see [`Tape::dropout`]); the identity on a tape that
/// is not training, and when p = 0.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    /// Probability of zeroing an element.
    pub p: f32,
}

impl Dropout {
    /// y = x * mask / (1 - p) in training, y = x otherwise.
    pub fn forward(&self, tape: &mut Tape, x: Var, rng: &mut impl Rng) -> Var {
        tape.dropout(x, self.p, rng)
    }

    /// Whether [`Dropout::forward`] would change anything on this tape (training, p > 0). When
    /// it would not, a layer may fuse what comes before and after it.
    pub fn is_active(&self, tape: &Tape) -> bool {
        tape.is_training() && self.p > 0.0
    }
}
