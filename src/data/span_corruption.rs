//! T5's span corruption, the denoising objective T5 pretrains with (`docs/objectives.md` §5b).
//!
//! Sources: Raffel et al., 2020, "Exploring the Limits of Transfer Learning with a Unified
//! Text-to-Text Transformer", §3.1.4 (the objective and its Figure 2 example) and §3.3 (the
//! study that chose a noise density of 15% and a mean span length of 3). The procedure follows
//! `random_spans_noise_mask`, `noise_span_to_unique_sentinel`, `nonnoise_span_to_unique_sentinel`
//! and `random_spans_helper` in google-research/text-to-text-transfer-transformer
//! `t5/data/preprocessors.py` (the "reference" below).
//!
//! A sequence of L tokens becomes a pair for an encoder-decoder: the encoder reads the text with
//! some spans cut out, and the decoder writes out just those spans.
//!
//! ## The mask
//!
//! A boolean per token, true for noise. With a noise density r and a mean span length μ
//! ([`SpanCorruption`]), the *counts* depend on L alone; only where the spans fall is random:
//!
//! 1. L' = max(L, 2), so that even one token leaves room for a kept run and a noise run.
//! 2. m = clip(round_half_even(L'·r), 1, L' − 1) noise tokens: at least one, and never all.
//! 3. s = max(1, round_half_even(m/μ)) noise spans, and as many runs of kept tokens (s is
//!    capped at min(m, L' − m), which the defaults never reach: see [`SpanCorruption::counts`]).
//! 4. Cut the m noise tokens into s non-empty runs X₁ … X_s, and the L' − m kept tokens into s
//!    non-empty runs N₁ … N_s. Each cut is uniform over all the ways to make it: n items have
//!    n − 1 gaps between them, and the runs end at s − 1 of those gaps, chosen at random.
//! 5. Lay the runs out as N₁ X₁ N₂ X₂ … N_s X_s and keep the first L.
//!
//! So for L ≥ 2 the first token is never noise and the last one always is (the reference's
//! default `random_roll=False`). For L = 1 the cut in step 5 keeps only N₁: no noise at all.
//! (r = 0 also means no noise at all, as in the reference.)
//! Rounding sends halves to the even neighbour, like Python's `round`: 30·0.15 = 4.5 gives 4.
//!
//! ## Inputs and targets
//!
//! Sentinel k, written `<extra_id_k>` in T5's vocabulary, is the id |V| − 1 − k: the sentinels
//! take the top of the model's vocabulary ([`Sentinels`]). Given the mask ([`apply_noise_mask`]):
//!
//! - **inputs**: every noise run becomes the next sentinel (S₀, S₁, …), then EOS:
//!   N₁ S₀ N₂ S₁ … N_s S_{s−1} EOS;
//! - **targets**: every *kept* run becomes the next sentinel, counting again from S₀, then EOS:
//!   S₀ X₁ S₁ X₂ … S_{s−1} X_s EOS. A kept run at the very end would give one last sentinel.
//!
//! The sentinel that stands for a gap in the inputs is the one that precedes its tokens in the
//! targets, so the decoder learns to say "S₀ was *these* tokens, S₁ was *those*". With the
//! drawn mask the lengths are exact, for L ≥ 2 and r > 0 ([`SpanCorruption::lengths`]):
//!
//!   |inputs| = L − m + s + 1,    |targets| = m + s + 1.
//!
//! The paper's example, with the noise {for, inviting, last}:
//!
//! ```text
//! text:    Thank you for inviting me to your party last week
//! inputs:  Thank you S0 me to your party S1 week EOS
//! targets: S0 for inviting S1 last S2 EOS
//! ```
//!
//! To fill an encoder of 512 positions with no padding, T5 feeds 568 raw tokens, which give 114
//! targets ([`SpanCorruption::raw_length_for`]).

use rand::Rng;

/// The two settings of span corruption: noise density r and mean span length μ. The default is
/// T5's: r = 0.15, μ = 3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanCorruption {
    /// r: the fraction of tokens that become noise, in [0, 1].
    pub noise_density: f64,
    /// μ: the mean length of a noise span, in tokens; positive.
    pub mean_span: f64,
}

impl Default for SpanCorruption {
    fn default() -> Self {
        SpanCorruption {
            noise_density: 0.15,
            mean_span: 3.0,
        }
    }
}

impl SpanCorruption {
    /// An error naming the setting if r is outside [0, 1] (or not a number), or μ is not a
    /// positive number.
    pub fn validate(&self) -> Result<(), String> {
        let (r, mu) = (self.noise_density, self.mean_span);
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("span corruption: noise_density = {r} is outside [0, 1]"));
        }
        if mu.is_nan() || mu <= 0.0 {
            return Err(format!("span corruption: mean_span = {mu} must be a positive number"));
        }
        Ok(())
    }

    /// (m, s): how many noise tokens and noise spans the mask of a sequence of `length` tokens
    /// lays out (steps 1 to 3, with L' = max(L, 2)). L = 10 gives (2, 1).
    ///
    /// Two cases go beyond the spec's formulas, both as the reference behaves or would need to:
    /// - r = 0 gives (0, 0): the reference returns an all-kept mask before any counting.
    /// - s is capped at min(m, L' − m), since s runs cannot be cut from fewer than s tokens. This
    ///   only happens for μ below 1 or r near 1 (never with the defaults); the reference fails
    ///   there.
    pub fn counts(&self, length: usize) -> (usize, usize) {
        if self.noise_density == 0.0 {
            return (0, 0);
        }
        let padded = length.max(2);
        let m = (padded as f64 * self.noise_density).round_ties_even() as usize;
        let m = m.clamp(1, padded - 1);
        let s = ((m as f64 / self.mean_span).round_ties_even() as usize).max(1);
        (m, s.min(m).min(padded - m))
    }

    /// The exact (|inputs|, |targets|) that [`span_corrupt`] makes from `length` tokens, EOS
    /// included: (L − m + s + 1, m + s + 1) for L ≥ 2. A mask with no noise (L = 1, or r = 0)
    /// gives (L + 1, 2), the targets being S₀ EOS; and L = 0 gives (1, 1).
    pub fn lengths(&self, length: usize) -> (usize, usize) {
        let (m, s) = self.counts(length);
        match length {
            0 => (1, 1),
            _ if length == 1 || m == 0 => (length + 1, 2),
            _ => (length - m + s + 1, m + s + 1),
        }
    }

    /// The mask for a sequence of `length` tokens, true = noise (steps 1 to 5). For L ≥ 2 it has
    /// exactly m trues in exactly s runs, starts with a kept token and ends with a noise token.
    /// For L = 1 (and for r = 0) nothing is noise.
    pub fn noise_mask(&self, length: usize, rng: &mut impl Rng) -> Vec<bool> {
        let (m, s) = self.counts(length);
        if m == 0 {
            return vec![false; length];
        }
        let padded = length.max(2);
        let noise_runs = random_split(m, s, rng);
        let kept_runs = random_split(padded - m, s, rng);
        let mut mask = Vec::with_capacity(padded);
        for (&kept, &noise) in kept_runs.iter().zip(&noise_runs) {
            mask.resize(mask.len() + kept, false);
            mask.resize(mask.len() + noise, true);
        }
        mask.truncate(length);
        mask
    }

    /// The raw length L whose inputs fill `inputs_length` positions, and the length of the
    /// targets it gives (the reference's `random_spans_helper`): the largest L with
    /// |inputs| ≤ `inputs_length`. 512 gives (568, 114). Expects valid settings
    /// ([`SpanCorruption::validate`]).
    ///
    /// The lengths come from [`SpanCorruption::lengths`], which includes the clip and the
    /// max(1, ·) of the mask; the reference's helper leaves them out, which only changes tiny
    /// lengths. Its special case for r = 0.5 (one token fewer, so that the targets are not
    /// longer than the inputs) is not copied.
    pub fn raw_length_for(&self, inputs_length: usize) -> (usize, usize) {
        // |inputs| never shrinks as L grows (L − m and s both never do), so walk up from below.
        let mut raw = inputs_length.saturating_sub(1);
        while self.lengths(raw + 1).0 <= inputs_length {
            raw += 1;
        }
        (raw, self.lengths(raw).1)
    }
}

/// Cut `items` (at least 1) into `parts` (1 to `items`) non-empty runs, every such cut equally
/// likely; returns the runs' lengths, in order. The runs end at `parts − 1` of the `items − 1`
/// gaps between neighbouring items, drawn without replacement. (The reference shuffles a list
/// of `items − 1` flags, `parts − 1` of them set, which draws the same thing.)
fn random_split(items: usize, parts: usize, rng: &mut impl Rng) -> Vec<usize> {
    // Gap g lies between item g and item g + 1, so a run ends after item g: at position g + 1.
    let mut ends: Vec<usize> = rand::seq::index::sample(rng, items - 1, parts - 1)
        .into_iter()
        .map(|g| g + 1)
        .collect();
    ends.sort_unstable();
    ends.push(items);
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let run = end - start;
            start = end;
            run
        })
        .collect()
}

/// T5 only ever has this many sentinels (`<extra_id_0>` to `<extra_id_99>`).
pub const MAX_SENTINELS: usize = 100;

/// Where the sentinels sit: the top `count` ids of a vocabulary of `vocab_size` ids, sentinel k
/// (`<extra_id_k>`) being `vocab_size − 1 − k`. The tokenizer's own ids must all lie below
/// [`Sentinels::first`]; with a tokenizer of V ids, `vocab_size = V + count` leaves room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sentinels {
    /// The model's vocabulary size, sentinels included.
    pub vocab_size: usize,
    /// How many sentinels: the most spans one sequence may have (at most 100).
    pub count: usize,
}

impl Sentinels {
    /// An error if there are more than [`MAX_SENTINELS`], or more sentinels than ids.
    pub fn validate(&self) -> Result<(), String> {
        if self.count > MAX_SENTINELS {
            return Err(format!(
                "span corruption: {} sentinels asked for, T5 allows at most {MAX_SENTINELS}",
                self.count
            ));
        }
        if self.count > self.vocab_size {
            return Err(format!(
                "span corruption: {} sentinels do not fit in a vocabulary of {} ids",
                self.count, self.vocab_size
            ));
        }
        Ok(())
    }

    /// Sentinel k's id, `vocab_size − 1 − k`. Panics if k ≥ `count`.
    pub fn id(&self, k: usize) -> usize {
        assert!(
            k < self.count,
            "Sentinels::id: there is no sentinel {k} of {}",
            self.count
        );
        self.vocab_size - 1 - k
    }

    /// Is `id` a sentinel?
    pub fn contains(&self, id: usize) -> bool {
        (self.first()..self.vocab_size).contains(&id)
    }

    /// The lowest sentinel id, that of the last sentinel: ordinary tokens must lie below it.
    /// Expects `count ≤ vocab_size` ([`Sentinels::validate`]).
    pub fn first(&self) -> usize {
        self.vocab_size - self.count
    }
}

/// Turn `tokens` and a given `mask` (true = noise) into (inputs, targets): in the inputs every
/// noise run becomes the next sentinel, in the targets every kept run does, and both end with
/// `eos`. Errors: the mask's length differs from the tokens', a token id is at or above
/// [`Sentinels::first`] (the vocabulary is too small to hold the sentinels), `eos` is not an
/// ordinary id, the sentinels are invalid, or the mask has more runs than there are sentinels.
pub fn apply_noise_mask(
    tokens: &[usize],
    mask: &[bool],
    sentinels: &Sentinels,
    eos: usize,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    check(tokens, mask, sentinels, eos)?;
    let inputs = runs_to_sentinels(tokens, mask, true, sentinels, eos);
    let targets = runs_to_sentinels(tokens, mask, false, sentinels, eos);
    Ok((inputs, targets))
}

/// Draw a mask for `tokens` with `cfg` ([`SpanCorruption::noise_mask`]) and apply it
/// ([`apply_noise_mask`]): the (inputs, targets) of one training example.
pub fn span_corrupt(
    tokens: &[usize],
    cfg: &SpanCorruption,
    sentinels: &Sentinels,
    eos: usize,
    rng: &mut impl Rng,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    cfg.validate()?;
    let mask = cfg.noise_mask(tokens.len(), rng);
    apply_noise_mask(tokens, &mask, sentinels, eos)
}

/// The checks of [`apply_noise_mask`], each with its own message.
fn check(tokens: &[usize], mask: &[bool], sentinels: &Sentinels, eos: usize) -> Result<(), String> {
    sentinels.validate()?;
    if mask.len() != tokens.len() {
        return Err(format!(
            "span corruption: the mask has {} entries for {} tokens",
            mask.len(),
            tokens.len()
        ));
    }
    let first = sentinels.first();
    if eos >= first {
        let what = if sentinels.contains(eos) {
            "is a sentinel"
        } else {
            "is outside the vocabulary"
        };
        return Err(format!(
            "span corruption: eos = {eos} {what} (sentinels are {first}..{})",
            sentinels.vocab_size
        ));
    }
    if let Some(&id) = tokens.iter().find(|&&id| id >= first) {
        return Err(format!(
            "span corruption: token id {id} is at or above the first sentinel {first}: the \
             vocabulary (vocab_size = {}) is too small to hold {} sentinels above the tokens",
            sentinels.vocab_size, sentinels.count
        ));
    }
    for (noise, what) in [
        (true, "noise spans (for the inputs)"),
        (false, "kept spans (for the targets)"),
    ] {
        let runs = count_runs(mask, noise);
        if runs > sentinels.count {
            return Err(format!(
                "span corruption: the mask has {runs} {what}, more than the {} sentinels",
                sentinels.count
            ));
        }
    }
    Ok(())
}

/// How many maximal runs of `value` the mask has.
fn count_runs(mask: &[bool], value: bool) -> usize {
    (0..mask.len())
        .filter(|&i| mask[i] == value && (i == 0 || mask[i - 1] != value))
        .count()
}

/// Keep the tokens whose mask is not `hidden`; replace each run whose mask is `hidden` by the
/// next sentinel, from S₀; append `eos`. Hiding the noise gives the inputs, hiding the kept
/// tokens gives the targets.
fn runs_to_sentinels(tokens: &[usize], mask: &[bool], hidden: bool, sentinels: &Sentinels, eos: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(tokens.len() + 1);
    let mut next = 0;
    for (i, (&token, &flag)) in tokens.iter().zip(mask).enumerate() {
        if flag != hidden {
            out.push(token);
        } else if i == 0 || mask[i - 1] != hidden {
            out.push(sentinels.id(next)); // the first token of a hidden run
            next += 1;
        }
    }
    out.push(eos);
    out
}
