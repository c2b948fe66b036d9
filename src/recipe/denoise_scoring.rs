//! What the denoise example does beside training, read from its flags in one place: how the
//! held-out reconstructions are decoded, how many are scored and printed, where the PyTorch
//! twin's batches go, and a trained checkpoint to score instead of training.

use super::denoise::{read_decodings, refuse_unused_denoise_flags};
use crate::beam_search::Beam;
use crate::cli::{Domain, Flags};

/// The scoring settings of a denoising run (`--beam`, `--lenpen`, `--no-repeat-ngram`,
/// `--score`, `--show`, `--twin`, `--load`).
#[derive(Clone, Debug)]
pub struct DenoiseScoring {
    /// The decodings the reconstructions are scored with, named ([`read_decodings`]).
    pub decodings: Vec<(String, Beam)>,
    /// Held-out documents reconstructed and scored.
    pub scored: usize,
    /// Of those, how many are printed (input, target, written).
    pub shown: usize,
    /// Write every batch here for the PyTorch twin.
    pub twin: Option<String>,
    /// Score this trained checkpoint; no training.
    pub load: Option<String>,
}

impl DenoiseScoring {
    /// Read the flags; with `--load`, refuse the ones only a training run would use
    /// ([`refuse_unused_denoise_flags`]), naming the flag.
    pub fn read(flags: &mut Flags) -> Result<DenoiseScoring, String> {
        let decodings = read_decodings(flags)?;
        let scored = flags.arg_in(
            "score",
            200,
            Domain::at_least(1),
            "held-out documents reconstructed and scored",
        )?;
        let shown = flags.arg_in(
            "show",
            4.min(scored),
            Domain::between(0, scored),
            "scored documents printed at the end (at most --score)",
        )?;
        let twin: Option<String> = flags.arg_opt("twin", "write the batches for the PyTorch twin here")?;
        let load: Option<String> = flags.arg_opt("load", "score this trained checkpoint; no training")?;
        refuse_unused_denoise_flags(flags, load.is_some())?;
        Ok(DenoiseScoring {
            decodings,
            scored,
            shown,
            twin,
            load,
        })
    }
}
