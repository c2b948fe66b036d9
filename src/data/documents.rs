//! Documents and sentences: the units that sentence-pair objectives (next-sentence prediction)
//! read, cut from plain text by fixed rules.
//!
//! Tiny Shakespeare has no scene or act markers. It is a sequence of **speeches**: a `NAME:`
//! line, the lines spoken, then a blank line. From that:
//!
//! - A **speech** is the text between two blank lines (runs of `\n\n`), its name line included.
//! - A **document** is [`SPEECHES_PER_DOCUMENT`] consecutive speeches (the last may hold fewer),
//!   about 1,200 characters, a stretch of one conversation. So a "NotNext" segment, drawn from
//!   another document, comes from elsewhere in the plays, almost never from the same exchange.
//! - A **sentence** ends after `.`, `!` or `?` followed by white space, or at a line end. It
//!   keeps its terminator and the white space after it, so a document's sentences, put back
//!   together, give its text exactly. A verse line that runs on is thus a sentence of its own;
//!   a name line (`ROMEO:\n`) is one too.
//!
//! On Tiny Shakespeare (1,115,394 characters): 7,222 speeches, 903 documents, 35,394 sentences
//! of 31.5 characters on average (figures checked by `tests/pairs.rs`).

use crate::tokenizer::Tokenizer;

/// Consecutive speeches per document.
pub const SPEECHES_PER_DOCUMENT: usize = 8;

/// A document as token ids, sentence by sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Each sentence's ids, in order; none is empty.
    pub sentences: Vec<Vec<usize>>,
}

/// The speeches of `text`: the pieces between blank lines, each ending with its own white space
/// (so that the speeches put back together give `text` minus any leading white space).
pub fn split_speeches(text: &str) -> Vec<&str> {
    let mut speeches = Vec::new();
    let mut start = text.len() - text.trim_start().len();
    let mut rest = &text[start..];
    while let Some(gap) = rest.find("\n\n") {
        // The speech runs to the end of the blank lines after it.
        let after = &rest[gap..];
        let end = gap + (after.len() - after.trim_start_matches('\n').len());
        speeches.push(&rest[..end]);
        start += end;
        rest = &text[start..];
    }
    if !rest.is_empty() {
        speeches.push(rest);
    }
    speeches
}

/// The documents of `text`: runs of `speeches_per_document` consecutive speeches, each a slice
/// of `text`.
pub fn split_documents(text: &str, speeches_per_document: usize) -> Vec<&str> {
    assert!(
        speeches_per_document >= 1,
        "split_documents: at least one speech per document"
    );
    let speeches = split_speeches(text);
    speeches
        .chunks(speeches_per_document)
        .map(|run| {
            let first = run[0].as_ptr() as usize - text.as_ptr() as usize;
            let last = run[run.len() - 1];
            let end = last.as_ptr() as usize - text.as_ptr() as usize + last.len();
            &text[first..end]
        })
        .collect()
}

/// The sentences of `text`: each ends after `.`, `!` or `?` followed by white space (or the end
/// of the text), or after a `\n`, and carries the white space that follows it.
///
/// ```
/// let s = microlm::data::documents::split_sentences("ROMEO:\nIs the day so young? Ay.\nHa!");
/// assert_eq!(s, ["ROMEO:\n", "Is the day so young? ", "Ay.\n", "Ha!"]);
/// ```
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let ends = c == '\n' || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
        if !ends {
            continue;
        }
        // Take the white space after the end into this sentence.
        let mut end = i + c.len_utf8();
        while let Some(&(j, w)) = chars.peek() {
            if !w.is_whitespace() {
                break;
            }
            end = j + w.len_utf8();
            chars.next();
        }
        sentences.push(&text[start..end]);
        start = end;
    }
    if start < text.len() {
        sentences.push(&text[start..]);
    }
    sentences
}

/// `text` cut into documents of `speeches_per_document` speeches, each cut into sentences and
/// tokenized sentence by sentence.
pub fn tokenize_documents(text: &str, speeches_per_document: usize, tokenizer: &Tokenizer) -> Vec<Document> {
    split_documents(text, speeches_per_document)
        .into_iter()
        .map(|doc| Document {
            sentences: split_sentences(doc)
                .into_iter()
                .map(|s| tokenizer.encode(s))
                .filter(|ids| !ids.is_empty())
                .collect(),
        })
        .filter(|doc| !doc.sentences.is_empty())
        .collect()
}

/// Short documents for the denoising objectives: the lines of each speech, its `NAME:` line left
/// out, run together into documents of whole lines holding at most `max_tokens` tokens (a single
/// line longer than that is cut to it). Each is cut into sentences as above. A speech never
/// shares a document with another, so a document is a few lines said by one speaker.
pub fn line_documents(text: &str, max_tokens: usize, tokenizer: &Tokenizer) -> Vec<Document> {
    assert!(max_tokens >= 1, "line_documents: max_tokens must be at least 1");
    let mut docs = Vec::new();
    for speech in split_speeches(text) {
        let mut lines = speech.split_inclusive('\n').filter(|l| !l.trim().is_empty());
        let mut current: Vec<Vec<usize>> = Vec::new();
        let mut len = 0;
        if let Some(first) = lines.next() {
            let is_name = first.trim_end().ends_with(':'); // "First Citizen:"
            let rest = (!is_name).then_some(first);
            for line in rest.into_iter().chain(lines) {
                let mut sentences: Vec<Vec<usize>> =
                    split_sentences(line).into_iter().map(|s| tokenizer.encode(s)).collect();
                let n: usize = sentences.iter().map(Vec::len).sum();
                if n > max_tokens {
                    sentences = vec![sentences.concat()[..max_tokens].to_vec()];
                    // one cut line
                }
                let n = n.min(max_tokens);
                if len + n > max_tokens && !current.is_empty() {
                    docs.push(Document {
                        sentences: std::mem::take(&mut current),
                    });
                    len = 0;
                }
                current.extend(sentences.into_iter().filter(|s| !s.is_empty()));
                len += n;
            }
        }
        if !current.is_empty() {
            docs.push(Document { sentences: current });
        }
    }
    docs
}

/// The distinct spoken lines of `text` with at least `min_chars` characters, in order of first
/// appearance: name lines (`ROMEO:`) and blank lines left out, each line trimmed, a repeated
/// line kept once (so a batch of distinct lines never holds one twice).
pub fn distinct_lines(text: &str, min_chars: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|l| l.chars().count() >= min_chars && !l.ends_with(':'))
        .filter(|l| seen.insert(l.to_string()))
        .map(str::to_string)
        .collect()
}
