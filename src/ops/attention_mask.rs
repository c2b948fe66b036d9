//! Which (query, key) pairs attention may not use: the causal mask (a decoder may not look
//! ahead) and key padding (a batch of unequal sequences is padded to one length). Both hide a
//! suffix of each query's keys, which the attention kernel uses: query i of sequence b sees
//! keys 0..[`AttentionMask::visible_keys`] and no others.

use ndarray::{ArrayD, IxDyn};

/// Which (query, key) pairs attention may not use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttentionMask {
    /// Causal: query i may only see keys j <= i (a decoder may not look ahead).
    pub causal: bool,
    /// Key padding: sequence b has `key_lengths[b]` real keys; keys at j >= that are padding.
    pub key_lengths: Option<Vec<usize>>,
}

impl AttentionMask {
    /// No masking at all.
    pub fn none() -> AttentionMask {
        AttentionMask::default()
    }

    /// The causal mask alone.
    pub fn causal() -> AttentionMask {
        AttentionMask {
            causal: true,
            key_lengths: None,
        }
    }

    /// Key padding alone.
    pub fn padding(key_lengths: Vec<usize>) -> AttentionMask {
        AttentionMask {
            causal: false,
            key_lengths: Some(key_lengths),
        }
    }

    /// True if query i of sequence b may not see key j.
    pub fn is_masked(&self, b: usize, i: usize, j: usize) -> bool {
        (self.causal && j > i) || self.key_lengths.as_ref().is_some_and(|len| j >= len[b])
    }

    /// How many keys query i of sequence b sees, out of `tk`: it sees keys 0..visible_keys,
    /// since both masks hide a suffix (causal: keys after i; padding: keys at or past the length).
    pub fn visible_keys(&self, b: usize, i: usize, tk: usize) -> usize {
        let causal_limit = if self.causal { i + 1 } else { tk };
        let padding_limit = self.key_lengths.as_ref().map_or(tk, |len| len[b]);
        causal_limit.min(padding_limit).min(tk)
    }

    /// The mask as booleans of shape [B, 1, Tq, Tk] (true = hidden), for `masked_fill`.
    pub fn to_bool(&self, b: usize, tq: usize, tk: usize) -> ArrayD<bool> {
        ArrayD::from_shape_fn(IxDyn(&[b, 1, tq, tk]), |ix| self.is_masked(ix[0], ix[2], ix[3]))
    }

    /// Panic, naming the mismatch, unless there is one key length per sequence and none
    /// exceeds the `tk` keys.
    pub(crate) fn check(&self, b: usize, tk: usize) {
        if let Some(len) = &self.key_lengths {
            assert!(
                len.len() == b,
                "attention: {} key lengths given for a batch of {b}",
                len.len()
            );
            if let Some(&bad) = len.iter().find(|&&l| l > tk) {
                panic!("attention: key length {bad} exceeds the {tk} keys");
            }
        }
    }
}
