//! Looking at what a trained model predicts, printed the way the examples show them: its top
//! guesses at masked positions, P(IsNext) for sentence pairs, a denoiser's reconstructions,
//! P(replaced) from ELECTRA's discriminator.

use crate::data::Batch;
use crate::objectives::{Denoiser, Electra, Evaluation, Example, MaskedLm, Noise};
use crate::params::Params;
use crate::recipe::denoise_scoring::DenoiseScoring;
use crate::recipe::relatedness::EmbeddingRow;
use crate::recipe::LinePairs;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `k` most probable ids of a probability row, most probable first (ties to the lower id).
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The ids of the tokenizer's five special tokens (`[PAD]` `[UNK]` `[CLS]` `[SEP]` `[MASK]`):
/// never text a model should produce, so never sampled or suggested.
pub fn special_ids(tokenizer: &Tokenizer) -> Vec<usize> {
    tokenizer.special_ids()
}

/// [`top_k`] leaving out the `banned` ids (for example [`special_ids`]).
pub fn top_k_excluding(row: &[f32], k: usize, banned: &[usize]) -> Vec<usize> {
    crate::generate::top_ids_excluding(row, k, banned)
}

/// The characters of `text` the tokenizer has no token for (each becomes `[UNK]`), in order
/// of first appearance, each once. Always empty for byte-level BPE, which encodes every byte.
pub fn unknown_chars(tokenizer: &Tokenizer, text: &str) -> Vec<char> {
    let unk = tokenizer.specials().unk;
    let mut unknown = Vec::new();
    for c in text.chars() {
        if !unknown.contains(&c) && tokenizer.encode(c.encode_utf8(&mut [0; 4])).contains(&unk) {
            unknown.push(c);
        }
    }
    unknown
}

/// A warning for stderr if `text` has characters outside the vocabulary, naming them; `what`
/// is what the text is ("the prompt").
pub fn unknown_chars_warning(tokenizer: &Tokenizer, text: &str, what: &str) -> Option<String> {
    let unknown = unknown_chars(tokenizer, text);
    if unknown.is_empty() {
        return None;
    }
    let listed: Vec<String> = unknown.iter().map(|c| format!("{c:?}")).collect();
    Some(format!(
        "warning: {what} has characters outside the model's vocabulary, read as [UNK]: {}",
        listed.join(" ")
    ))
}

/// `ids` as text with `_` at the `blanks` (positions counted from `first`, the position of
/// `ids[0]`), each run of tokens between them decoded whole: a character that byte-level BPE
/// split over several tokens reads as itself, not as one U+FFFD (�) per piece.
pub fn blanked_text(tokenizer: &Tokenizer, ids: &[usize], blanks: &[usize], first: usize) -> String {
    let mut out = String::new();
    let mut run = 0;
    for i in 0..ids.len() {
        if blanks.contains(&(first + i)) {
            out.push_str(&tokenizer.decode(&ids[run..i]));
            out.push('_');
            run = i + 1;
        }
    }
    out.push_str(&tokenizer.decode(&ids[run..]));
    out
}

/// For `lines` validation lines of at least 24 characters: mask 3 of their letters, give the
/// model the line with the text before it as context (`seq_len` tokens in all), and print its
/// top 5 guesses at each masked position (special tokens left out), `*` marking the right
/// answer.
pub fn show_fill_mask(
    model: &MaskedLm,
    params: &Params,
    tokenizer: &Tokenizer,
    val_text: &str,
    seq_len: usize,
    lines: usize,
) {
    println!("\nfill-mask on validation lines (_ = masked; top 5 guesses, * = the right answer):");
    let mut rng = StdRng::seed_from_u64(7);
    let specials = special_ids(tokenizer);
    let candidates: Vec<(usize, &str)> = val_text
        .match_indices('\n')
        .zip(val_text.split('\n').skip(1))
        .map(|((i, _), line)| (i + 1, line))
        .filter(|(start, line)| line.chars().count() >= 24 && *start > 2 * seq_len)
        .collect();
    if candidates.is_empty() {
        println!("  (the validation text has no line of 24 characters or more to show)");
        return;
    }
    for _ in 0..lines {
        let (start, line) = candidates[rng.random_range(0..candidates.len())];
        // Context: the tokens that end with this line, seq_len of them.
        let before = tokenizer.encode(&val_text[..start]);
        let line_ids = tokenizer.encode(line);
        let keep = seq_len.saturating_sub(line_ids.len()).min(before.len());
        let mut ids: Vec<usize> = before[before.len() - keep..].to_vec();
        let offset = ids.len();
        ids.extend(&line_ids[..line_ids.len().min(seq_len - offset)]);
        let is_letter = |p: &usize| tokenizer.decode(&ids[*p..*p + 1]).chars().all(char::is_alphabetic);
        let letters: Vec<usize> = (offset..ids.len()).filter(is_letter).collect();
        if letters.is_empty() {
            continue;
        }
        let mut positions: Vec<usize> = (0..3).map(|_| letters[rng.random_range(0..letters.len())]).collect();
        positions.sort_unstable();
        positions.dedup();
        let mut x_masked = ids.clone();
        for &p in &positions {
            x_masked[p] = model.vocab.mask;
        }
        println!("\n  {}", blanked_text(tokenizer, &ids[offset..], &positions, offset));
        let n = x_masked.len();
        let probs = model.probabilities(params, &Batch::new(x_masked, 1, n), &positions);
        for (&p, row) in positions.iter().zip(&probs) {
            let original = ids[p];
            let guesses: Vec<String> = top_k_excluding(row, 5, &specials)
                .iter()
                .map(|&v| {
                    let mark = if v == original { "*" } else { "" };
                    format!("{mark}{:?} {:.2}", tokenizer.token_text(v), row[v])
                })
                .collect();
            let rank = top_k_excluding(row, row.len(), &specials)
                .iter()
                .position(|&v| v == original)
                .expect("every id is ranked")
                + 1;
            let right = tokenizer.token_text(original);
            println!(
                "    position {:>2}: {}   (right: {right:?}, ranked {rank})",
                p - offset,
                guesses.join("  ")
            );
        }
    }
}

/// Print the first `n` pairs of a validation batch with their true label and the model's
/// P(IsNext), as the bert example does at the end of training.
pub fn show_next_sentence(
    model: &crate::objectives::Bert,
    params: &Params,
    pairs: &[crate::data::Pair],
    batch: &crate::data::PairBatch,
    tokenizer: &Tokenizer,
    n: usize,
) {
    let p_is_next = model.is_next_probabilities(params, batch);
    for (pair, p) in pairs.iter().zip(&p_is_next).take(n) {
        println!(
            "\nA: {:?}\nB: {:?}\n   truth {:?}, P(IsNext) = {p:.3}",
            tokenizer.decode(&pair.a),
            tokenizer.decode(&pair.b),
            pair.label
        );
    }
}

/// Reconstruct the first `scoring.scored` held-out `examples` with each of `scoring.decodings`
/// (a name and a beam; width 1 is greedy) and print the first `scoring.shown` of them (input, target, what the model
/// wrote); then one table row per decoding: the character error rate and exact-match rate
/// beside the identity baseline's, and the measure that fits the noise (`denoise_scores.rs`):
/// hidden characters restored, sentence order recovered, rotation point found. Under T5, also
/// the span-token accuracy of `evaluation` beside always guessing the most frequent token of
/// `train_ids`. The rows start with `| ` so that a script can gather them.
pub fn show_denoising(
    model: &Denoiser,
    params: &Params,
    tokenizer: &Tokenizer,
    examples: &[Example],
    train_ids: &[usize],
    evaluation: Option<&Evaluation>,
    scoring: &DenoiseScoring,
) -> Result<(), String> {
    let (shown, scored, decodings) = (scoring.shown, scoring.scored, &scoring.decodings);
    let scored_examples = &examples[..scored.min(examples.len())];
    let mut rows = Vec::new();
    for (d, (name, beam)) in decodings.iter().enumerate() {
        let mut printed = 0;
        let scores = model.score_reconstructions(params, scored_examples, tokenizer, beam, |e, written| {
            if d == 0 && printed < shown {
                printed += 1;
                println!("\ninput    {:?}", model.display(tokenizer, &e.source));
                println!("target   {:?}", model.display(tokenizer, &e.target));
                println!("written  {:?}", model.display(tokenizer, written));
            }
        })?;
        rows.push((name, scores));
    }
    let noise = model.noise.short_name();
    println!(
        "\non {} held-out documents (identity: the corrupted input handed back, masks removed):",
        scored_examples.len()
    );
    println!("| noise | decoding | CER | identity CER | exact | identity exact | fits the noise |");
    println!("|---|---|---|---|---|---|---|");
    for (name, s) in &rows {
        let mut fits = Vec::new();
        if s.restored.hidden > 0 {
            fits.push(format!("hidden characters restored {:.3}", s.restored.share()));
        }
        if s.order.documents > 0 {
            let (ours, identity) = s.order.shares();
            fits.push(format!(
                "order recovered {ours:.3} (identity {identity:.3}, {} documents)",
                s.order.documents
            ));
        }
        if s.rotation.documents > 0 {
            let (ours, identity) = s.rotation.shares();
            fits.push(format!(
                "start found {ours:.3} (identity {identity:.3}, {} documents)",
                s.rotation.documents
            ));
        }
        println!(
            "| {noise} | {name} | {:.4} | {:.4} | {:.3} | {:.3} | {} |",
            s.model.cer(),
            s.identity.cer(),
            s.model.exact_match(),
            s.identity.exact_match(),
            fits.join("; ")
        );
    }
    if matches!(model.noise, Noise::T5(_)) {
        let span = evaluation.and_then(|e| e.extra.iter().find(|(name, _)| name == "span_token_accuracy"));
        let (top, share) = model.most_frequent_baseline(train_ids, examples);
        println!(
            "\nspan-token accuracy {:.4} (teacher-forced, {} held-out documents); always {:?}: {share:.4}",
            span.map_or(0.0, |s| s.1),
            examples.len(),
            tokenizer.token_text(top)
        );
    }
    Ok(())
}

/// Embed the held-out lines and their copies with each row's encoder, print the table of
/// [`score`](crate::objectives::sentence_embeddings::score) (alignment, uniformity, top-1 and
/// top-5 retrieval of each line's copy among all copies), and return the last row's embeddings
/// of the lines.
pub fn compare_embeddings(rows: &[EmbeddingRow], pairs: &LinePairs, tokenizer: &Tokenizer) -> Vec<Vec<f32>> {
    use crate::objectives::sentence_embeddings::{embed, score};
    let (lines, copies) = (pairs.lines(), pairs.copies());
    println!(
        "\n{:<34} {:>9} {:>10} {:>6} {:>6}",
        "embedding", "alignment", "uniformity", "top-1", "top-5"
    );
    let mut last = Vec::new();
    for (name, encoder, params, pooling) in rows {
        let f = embed(encoder, params, tokenizer, &lines, *pooling);
        let s = score(&f, &embed(encoder, params, tokenizer, &copies, *pooling));
        println!(
            "{name:<34} {:>9.4} {:>10.4} {:>6.3} {:>6.3}",
            s.alignment, s.uniformity, s.top1, s.top5
        );
        last = f;
    }
    println!("(alignment: lower is closer; uniformity: lower is more spread out; top-k: the line's copy among the k nearest of all copies)");
    last
}

/// For each query line, its `k` nearest other lines by cosine of the embeddings `f`.
pub fn show_neighbours(lines: &[&str], f: &[Vec<f32>], queries: &[usize], k: usize) {
    use crate::objectives::sentence_embeddings::ranking;
    for &q in queries.iter().filter(|&&q| q < lines.len()) {
        println!("\nnearest to {:?}:", lines[q]);
        for c in ranking(&f[q], f).into_iter().filter(|&c| c != q).take(k) {
            let cos: f32 = f[q].iter().zip(&f[c]).map(|(a, b)| a * b).sum();
            println!("  {cos:.3}  {:?}", lines[c]);
        }
    }
}

/// Print the discriminator's view of the first `sequences` sequences of `batch` (corrupted with
/// seed 0, as the validation pass corrupts its first batch), `width` tokens a row: the text it
/// reads (newlines as ¶), `^` under each replaced token, P(replaced) as a digit (floor of 10 p;
/// `.` below 0.1), and the replacements with the original token and P(replaced).
pub fn show_replaced_tokens(
    model: &Electra,
    params: &Params,
    tokenizer: &Tokenizer,
    batch: &Batch,
    sequences: usize,
    width: usize,
) {
    let mut tape = Tape::no_grad();
    let step = model.forward(&mut tape, params, batch, &mut StdRng::seed_from_u64(0));
    let z = tape.value(step.z_d).iter().copied().collect::<Vec<f32>>();
    let p = |i: usize| 1.0 / (1.0 + (-z[i] as f64).exp());
    let shown = |id: usize| match tokenizer.token_text(id).replace('\n', "¶") {
        s if s.is_empty() => "□".to_string(),
        s => s,
    };
    println!(
        "\nthe discriminator on validation text (^ = replaced by the generator; P(replaced) as a digit, . below 0.1):"
    );
    let t = batch.seq_len;
    for b in 0..sequences.min(batch.batch) {
        let n = batch.length(b);
        for start in (0..n).step_by(width.max(1)) {
            let (mut text, mut marks, mut digits) = (String::new(), String::new(), String::new());
            for i in b * t + start..b * t + (start + width).min(n) {
                let token = shown(step.x_hat.ids[i]);
                let pad = token.chars().count().saturating_sub(1);
                let digit = match (10.0 * p(i)).floor() as u32 {
                    0 => '.',
                    k => char::from_digit(k.min(9), 10).expect("a digit"),
                };
                text += &token;
                marks += &format!("{}{}", if step.d[i] == Some(1) { '^' } else { ' ' }, " ".repeat(pad));
                digits += &format!("{digit}{}", " ".repeat(pad));
            }
            println!("  {text}\n  {}\n  {digits}", marks.trim_end());
        }
        let replacements: Vec<String> = (b * t..b * t + n)
            .filter(|&i| step.d[i] == Some(1))
            .map(|i| format!("{}->{} {:.2}", shown(batch.ids[i]), shown(step.x_hat.ids[i]), p(i)))
            .collect();
        println!(
            "  replaced (original->sample P(replaced)): {}\n",
            replacements.join(", ")
        );
    }
}
