//! What a validation pass measured, as the trainer receives it. An objective's `evaluate`
//! builds one (usually through [`Tally`](crate::objectives::Tally)); the trainer prints it,
//! logs it to `metrics.csv` and `loss.svg`, and knows nothing else about the objective. It lives
//! here, beside the loop that reads it, so that the trainer imports no objective.

/// What a validation pass measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy over every scored position, in nats.
    pub loss: f64,
    /// Share of scored positions whose most probable token (argmax over the vocabulary) is the
    /// right one, if the objective reports it.
    pub accuracy: Option<f64>,
    /// Number of scored positions.
    pub count: usize,
    /// Further named measures of the same pass (`("nsp_accuracy", 0.81)`, say): printed with
    /// the loss, and written as extra columns of `metrics.csv` and extra series of `loss.svg`.
    pub extra: Vec<(String, f64)>,
}
