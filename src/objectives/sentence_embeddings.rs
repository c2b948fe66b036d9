//! What a sentence embedding is good for, measured: alignment and uniformity (Wang and Isola,
//! 2020, "Understanding Contrastive Representation Learning through Alignment and Uniformity on
//! the Hypersphere", §4), retrieval of a lightly corrupted copy, and nearest neighbours. Every
//! measure reads L2-normalised embeddings f(x) = e(x) / |e(x)|.
//!
//! - alignment = mean over positive pairs of |f(x) - f(x+)|^2 (lower: positives closer);
//! - uniformity = log mean over pairs i < j of e^{-2 |f(x_i) - f(x_j)|^2} (lower: spread out);
//! - retrieval: for query i, rank every candidate by cosine; top-k accuracy is the share of
//!   queries whose own candidate i is among the k best.
//! - retrieval from a similarity matrix S (query i's own candidate is column i), which bags of
//!   words can tie on: with g_i = #{j != i : S_ij > S_ii} candidates strictly better and e_i =
//!   #{j != i : S_ij = S_ii} tied, the tied ones are taken in random order, so the expected
//!   rank is r_i = g_i + 1 + e_i/2 and the chance of a top-k hit is clamp(k - g_i, 0, e_i + 1)
//!   / (e_i + 1) ([`retrieval`]).

use crate::data::Batch;
use crate::nn::Encoder;
use crate::params::Params;
use crate::tape::Tape;
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a sentence's vector is read from the encoder's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The state at `[CLS]` (position 0).
    Cls,
    /// The mean of the states at the sentence's real positions, `[CLS]` included.
    Mean,
}

/// Lines embedded per forward pass by [`embed`].
pub const EMBED_CHUNK: usize = 16;

/// `[CLS]` + each line's ids, cut to `max_len`, padded into one batch with lengths.
pub fn line_batch(lines: &[&str], tokenizer: &Tokenizer, max_len: usize) -> Batch {
    let specials = tokenizer.specials();
    let rows: Vec<Vec<usize>> = lines
        .iter()
        .map(|l| {
            let mut ids = vec![specials.cls];
            ids.extend(tokenizer.encode(l));
            ids.truncate(max_len);
            ids
        })
        .collect();
    let t = rows.iter().map(Vec::len).max().unwrap_or(1);
    let lengths = rows.iter().map(Vec::len).collect();
    let ids = rows
        .into_iter()
        .flat_map(|r| r.into_iter().chain(std::iter::repeat(specials.pad)).take(t))
        .collect();
    Batch::new(ids, lines.len(), t).with_lengths(lengths)
}

/// Unit-length embeddings of `lines` from `encoder` in evaluation mode, [`EMBED_CHUNK`] at a
/// time (an evaluation tape keeps every value it computes, so the chunk bounds the memory).
pub fn embed(
    encoder: &Encoder,
    params: &Params,
    tokenizer: &Tokenizer,
    lines: &[&str],
    pooling: Pooling,
) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in lines.chunks(EMBED_CHUNK) {
        let x = line_batch(chunk, tokenizer, encoder.config.max_len);
        let mut tape = Tape::no_grad();
        let h = encoder.forward(&mut tape, params, &x, &mut StdRng::seed_from_u64(0));
        let h = tape.value(h); // [N, T, D]
        for (b, _) in chunk.iter().enumerate() {
            let positions = match pooling {
                Pooling::Cls => 0..1,
                Pooling::Mean => 0..x.length(b),
            };
            let d = h.shape()[2];
            let mut v = vec![0.0f32; d];
            for t in positions.clone() {
                for (k, vk) in v.iter_mut().enumerate() {
                    *vk += h[[b, t, k]] / positions.len() as f32;
                }
            }
            out.push(unit(v));
        }
    }
    out
}

/// v / |v| (a zero vector stays zero).
pub fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / (norm + 1e-8)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mean |f(x_i) - f(x_i+)|^2 over the pairs (unit vectors, so it is 2 - 2 cos).
pub fn alignment(f: &[Vec<f32>], f_plus: &[Vec<f32>]) -> f64 {
    let total: f64 = f.iter().zip(f_plus).map(|(a, b)| (2.0 - 2.0 * dot(a, b)) as f64).sum();
    total / f.len().max(1) as f64
}

/// log mean over i < j of e^{-2 |f_i - f_j|^2}.
pub fn uniformity(f: &[Vec<f32>]) -> f64 {
    let (mut sum, mut pairs) = (0.0f64, 0usize);
    for i in 0..f.len() {
        for j in i + 1..f.len() {
            let distance2 = (2.0 - 2.0 * dot(&f[i], &f[j])) as f64;
            sum += (-2.0 * distance2).exp();
            pairs += 1;
        }
    }
    (sum / pairs.max(1) as f64).ln()
}

/// The candidates for `query`, best first (ties to the lower index), by cosine.
pub fn ranking(query: &[f32], candidates: &[Vec<f32>]) -> Vec<usize> {
    let scores: Vec<f32> = candidates.iter().map(|c| dot(query, c)).collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Share of queries i whose candidate i is among the top `k` (one entry per k in `ks`).
pub fn retrieval_accuracy(queries: &[Vec<f32>], candidates: &[Vec<f32>], ks: &[usize]) -> Vec<f64> {
    let mut hits = vec![0usize; ks.len()];
    for (i, q) in queries.iter().enumerate() {
        let rank = ranking(q, candidates)
            .iter()
            .position(|&c| c == i)
            .unwrap_or(usize::MAX);
        for (h, &k) in hits.iter_mut().zip(ks) {
            *h += usize::from(rank < k);
        }
    }
    hits.iter().map(|&h| h as f64 / queries.len().max(1) as f64).collect()
}

/// A lightly corrupted copy of `line`: max(1, ⌊rate · chars⌋) edits, each either dropping one
/// character or swapping two neighbours (half the time each), at random places.
pub fn corrupt_lightly(line: &str, rate: f64, rng: &mut impl Rng) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    let edits = ((chars.len() as f64 * rate) as usize).max(1);
    for _ in 0..edits {
        if chars.len() < 2 {
            break;
        }
        let i = rng.random_range(0..chars.len() - 1);
        if rng.random::<bool>() {
            chars.remove(i);
        } else {
            chars.swap(i, i + 1);
        }
    }
    chars.into_iter().collect()
}

/// The four figures of one embedding on (lines, copies).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbeddingScores {
    /// [`alignment`] of each line with its copy.
    pub alignment: f64,
    /// [`uniformity`] of the lines.
    pub uniformity: f64,
    /// Share of lines whose copy is the nearest of all copies.
    pub top1: f64,
    /// Share whose copy is among the 5 nearest.
    pub top5: f64,
}

/// Score the embeddings `f` of some lines and `f_plus` of their copies.
pub fn score(f: &[Vec<f32>], f_plus: &[Vec<f32>]) -> EmbeddingScores {
    let top = retrieval_accuracy(f, f_plus, &[1, 5]);
    EmbeddingScores {
        alignment: alignment(f, f_plus),
        uniformity: uniformity(f),
        top1: top[0],
        top5: top[1],
    }
}

/// Top-1, top-5 and mean rank of a retrieval, ties taken in random order (the module's doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retrieval {
    /// Expected share of queries whose own candidate is ranked first.
    pub top1: f64,
    /// Expected share whose own candidate is among the 5 best.
    pub top5: f64,
    /// Mean expected rank of the own candidate (1 is best).
    pub mean_rank: f64,
}

/// The expected accuracy of a `k`-way choice on the square similarity matrix `s`: query i
/// against its own candidate and k - 1 others drawn uniformly without replacement from the
/// other n - 1, the best score chosen, ties taken in random order. With g_i candidates better
/// than the own one, e_i tied and r_i = n - 1 - g_i - e_i worse, the choice is right when no
/// better one is drawn and the own candidate wins among the t tied ones drawn:
///
///   P_i = sum_t C(e_i, t) C(r_i, k-1-t) / C(n-1, k-1) · 1/(t+1).
pub fn choice_accuracy(s: &[Vec<f32>], k: usize) -> f64 {
    let binomial = |n: usize, j: usize| -> f64 {
        if j > n {
            return 0.0;
        }
        (0..j).map(|a| (n - a) as f64 / (j - a) as f64).product()
    };
    let n = s.len();
    let k = k.clamp(1, n.max(1));
    let mut total = 0.0;
    for (i, row) in s.iter().enumerate() {
        let own = row[i];
        let better = row.iter().filter(|&&v| v > own).count();
        let tied = row.iter().enumerate().filter(|&(j, &v)| j != i && v == own).count();
        let worse = n - 1 - better - tied;
        let draws = binomial(n - 1, k - 1);
        total += (0..k)
            .map(|t| binomial(tied, t) * binomial(worse, k - 1 - t) / draws / (t + 1) as f64)
            .sum::<f64>();
    }
    total / n.max(1) as f64
}

/// Score the square similarity matrix `s` (query i's right answer is candidate i).
pub fn retrieval(s: &[Vec<f32>]) -> Retrieval {
    let (mut top1, mut top5, mut rank) = (0.0f64, 0.0f64, 0.0f64);
    for (i, row) in s.iter().enumerate() {
        let own = row[i];
        let better = row.iter().filter(|&&v| v > own).count() as f64;
        let tied = row.iter().enumerate().filter(|&(j, &v)| j != i && v == own).count() as f64;
        let hit = |k: f64| (k - better).clamp(0.0, tied + 1.0) / (tied + 1.0);
        top1 += hit(1.0);
        top5 += hit(5.0);
        rank += better + 1.0 + tied / 2.0;
    }
    let n = s.len().max(1) as f64;
    Retrieval {
        top1: top1 / n,
        top5: top5 / n,
        mean_rank: rank / n,
    }
}

/// The cosines of unit vectors: entry `[i][j]` is f_i · g_j.
pub fn cosines(f: &[Vec<f32>], g: &[Vec<f32>]) -> Vec<Vec<f32>> {
    f.iter().map(|a| g.iter().map(|b| dot(a, b)).collect()).collect()
}

/// Alignment and uniformity read from cosines: `pairs[i][i]` is the cosine of query i with its
/// positive, `queries` the cosines between queries. Unit vectors, so |f - g|^2 = 2 - 2 cos.
pub fn alignment_uniformity(pairs: &[Vec<f32>], queries: &[Vec<f32>]) -> (f64, f64) {
    let n = pairs.len();
    let alignment = (0..n).map(|i| (2.0 - 2.0 * pairs[i][i]) as f64).sum::<f64>() / n.max(1) as f64;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (i, row) in queries.iter().enumerate() {
        for &cos in &row[i + 1..] {
            sum += (-2.0 * (2.0 - 2.0 * cos) as f64).exp();
            count += 1;
        }
    }
    (alignment, (sum / count.max(1) as f64).ln())
}
