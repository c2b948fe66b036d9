//! Speeches as units of meaning: two parts of one speech talk about the same thing, so they are
//! a related pair that no one had to label.
//!
//! - The **body** of a speech is its spoken lines: the name line (`ROMEO:`) left out, each line
//!   trimmed, empty lines dropped ([`body_lines`]).
//! - A **part** is a run of whole consecutive body lines joined by `\n`, at most `max_chars`
//!   characters; a first line longer than that is cut to `max_chars` ([`part`]).
//! - **Held-out halves** ([`speech_halves`]): for each speech of the validation text with at
//!   least 2 body lines, its first ⌈n/2⌉ lines and its last ⌊n/2⌋ lines. The first half is kept
//!   as the part that ends at the middle ([`part_ending`]), the second as the part that starts
//!   there. The relatedness task gives the first half and asks for the second among all
//!   held-out speeches' second halves: what this speaker says next.
//! - **Span positives** ([`span_pair`]), after DeCLUTR (Giorgi et al., 2021, §3: anchor and
//!   positive spans sampled from one document, in-batch negatives; its "adjacent" strategy puts
//!   the positive right before or after the anchor): a cut c between two body lines, drawn
//!   uniformly; the anchor is the part ending before c, the positive the part starting at c. The
//!   two never share a line (DeCLUTR also allows overlapping spans; an overlap would let the
//!   encoder match characters rather than meaning).

use super::documents::split_speeches;
use super::plays::speaker;
use rand::Rng;

/// The spoken lines of `speech`: its name line left out, each line trimmed, empty ones dropped.
///
/// ```
/// use microlm::data::speeches::body_lines;
/// assert_eq!(body_lines("ROMEO:\n  Ay, me!\n\nShe speaks.\n"), ["Ay, me!", "She speaks."]);
/// ```
pub fn body_lines(speech: &str) -> Vec<&str> {
    let skip = usize::from(speaker(speech).is_some());
    speech
        .lines()
        .skip(skip)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whole lines of `lines` from the first on, joined by `\n`, while the text stays within
/// `max_chars` characters; at least the first line, cut to `max_chars` characters if longer.
///
/// ```
/// use microlm::data::speeches::part;
/// assert_eq!(part(&["Ay, me!", "She speaks.", "O!"], 20), "Ay, me!\nShe speaks.");
/// assert_eq!(part(&["Ay, me!"], 4), "Ay, ");
/// ```
pub fn part(lines: &[&str], max_chars: usize) -> String {
    let mut out: String = lines
        .first()
        .map_or(String::new(), |l| l.chars().take(max_chars).collect());
    let mut chars = out.chars().count();
    for line in lines.iter().skip(1) {
        let more = 1 + line.chars().count();
        if chars + more > max_chars {
            break;
        }
        out.push('\n');
        out.push_str(line);
        chars += more;
    }
    out
}

/// Whole lines of `lines` from the last one back, joined by `\n` in their order, while the text
/// stays within `max_chars` characters; at least the last line, cut to its last `max_chars`
/// characters if longer: the part that ends where `lines` ends.
///
/// ```
/// use microlm::data::speeches::part_ending;
/// assert_eq!(part_ending(&["Ay, me!", "She speaks.", "O!"], 15), "She speaks.\nO!");
/// assert_eq!(part_ending(&["Ay, me!"], 3), "me!");
/// ```
pub fn part_ending(lines: &[&str], max_chars: usize) -> String {
    let reversed: Vec<String> = lines.iter().rev().map(|l| l.chars().rev().collect()).collect();
    let reversed: Vec<&str> = reversed.iter().map(String::as_str).collect();
    part(&reversed, max_chars).chars().rev().collect()
}

/// The speeches of `text` with at least 2 body lines, as their body lines.
pub fn speeches_of_two_lines_or_more(text: &str) -> Vec<Vec<String>> {
    split_speeches(text)
        .into_iter()
        .map(body_lines)
        .filter(|lines| lines.len() >= 2)
        .map(|lines| lines.into_iter().map(str::to_string).collect())
        .collect()
}

/// First halves and second halves of held-out speeches: half i of `first` and half i of
/// `second` come from the same speech.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeechHalves {
    /// The queries: each speech's first ⌈n/2⌉ lines, as the part ending at the middle.
    pub first: Vec<String>,
    /// The candidates: each speech's last ⌊n/2⌋ lines, as the part starting at the middle.
    pub second: Vec<String>,
}

/// The halves of the first `limit` speeches of `text` with 2 or more body lines, each half a
/// part of at most `max_chars` characters. A speech whose pair of halves was already taken
/// (a repeated exchange) is skipped, so every query has exactly one right answer.
pub fn speech_halves(text: &str, max_chars: usize, limit: usize) -> SpeechHalves {
    let mut seen = std::collections::HashSet::new();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for lines in speeches_of_two_lines_or_more(text) {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mid = lines.len().div_ceil(2);
        let (a, b) = (part_ending(&lines[..mid], max_chars), part(&lines[mid..], max_chars));
        if first.len() < limit && !second.contains(&b) && seen.insert(a.clone()) {
            first.push(a);
            second.push(b);
        }
    }
    SpeechHalves { first, second }
}

/// An anchor and a positive from one speech's body `lines` (2 or more): a cut c drawn
/// uniformly in 1..n, the anchor the [`part_ending`] before c, the positive the [`part`] from
/// c. Panics on fewer than 2 lines.
pub fn span_pair(lines: &[String], max_chars: usize, rng: &mut impl Rng) -> (String, String) {
    let n = lines.len();
    assert!(n >= 2, "span_pair: a speech of {n} line(s); 2 or more are needed");
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let c = rng.random_range(1..n);
    (part_ending(&lines[..c], max_chars), part(&lines[c..], max_chars))
}
