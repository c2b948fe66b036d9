//! A downstream task with real labels from the corpus: speaker attribution. Tiny Shakespeare
//! writes each speech as a `NAME:` line followed by the speech; the task is to read a speech
//! without its name line and say who speaks it, among the most frequent speakers.
//!
//! - **Speeches**: the pieces between blank lines (`documents::split_speeches`) whose first
//!   line is a name followed by a colon; the text is the rest of the piece, its lines joined by
//!   spaces.
//! - **Classes**: the `k` speakers with the most speeches (ties broken by name), class 0 the most
//!   frequent.
//! - **Split**: by position among the chosen speeches, deterministically: every tenth speech
//!   (index 0, 10, 20, ..) is test, the one after it validation, the other eight training. The
//!   plays follow each other in the file, so every split holds every play's speakers.
//!
//! The speeches' text is also in the masked LM's pretraining text (its first 90%); the speakers
//! are not: pretraining never sees a name line's link to its speech as a label.

use super::documents::split_speeches;
use super::labelled::{LabelledText, TextTask};
use std::collections::BTreeMap;

/// A speech and the index of its speaker (its class).
pub type Speech = LabelledText;

/// Build the task from the corpus `text` with the `k` most frequent speakers. Error: fewer
/// than `k` speakers, or a split left empty.
pub fn speaker_task(text: &str, k: usize) -> Result<TextTask, String> {
    let speeches: Vec<(String, String)> = split_speeches(text).into_iter().filter_map(name_and_text).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &speeches {
        *counts.entry(name).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if ranked.len() < k {
        return Err(format!(
            "the corpus has {} speakers, fewer than the {k} asked for",
            ranked.len()
        ));
    }
    let names: Vec<String> = ranked[..k].iter().map(|(n, _)| n.to_string()).collect();
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let chosen = speeches.iter().filter_map(|(name, text)| {
        let speaker = names.iter().position(|n| n == name)?;
        Some(Speech {
            class: speaker,
            text: text.clone(),
        })
    });
    for (i, speech) in chosen.enumerate() {
        match i % 10 {
            0 => test.push(speech),
            1 => val.push(speech),
            _ => train.push(speech),
        }
    }
    if test.is_empty() || val.is_empty() || train.is_empty() {
        return Err(format!(
            "too few speeches by the top {k} speakers to split into train, validation and test"
        ));
    }
    Ok(TextTask {
        title: format!("speaker attribution, {k} speakers"),
        unit: "speeches".into(),
        names,
        train,
        val,
        test,
    })
}

/// ("NAME", "the speech") if the piece opens with a line "NAME:" and has text after it.
fn name_and_text(piece: &str) -> Option<(String, String)> {
    let mut lines = piece.trim().lines();
    let name = lines.next()?.strip_suffix(':')?;
    let text = lines.collect::<Vec<_>>().join(" ");
    (!name.is_empty() && !text.trim().is_empty()).then(|| (name.to_string(), text))
}
