//! The multimodal masked LM with image-text matching (`objectives/mmlm.rs`, `itm.rs`,
//! `image_text.rs`, `nn/patch_embedding.rs`) against `docs/objectives.md` §1 and §3: the worked
//! example, the pixels reaching the stream unchanged, the layout of the one stream, the
//! gradient reaching W_patch, the masking statistics over caption positions only, scoring the
//! matched rows only, the pairing of images, a gradcheck of the patch embedding, the errors,
//! and a checkpoint round trip. Every expected value is worked out here, not read from the code.

mod common;

use common::{fresh_dir, tiny_encoder_config};
use microlm::checkpoint;
use microlm::data::shapes::{self, Example, Image};
use microlm::gradcheck::{gradcheck_params, GradcheckConfig};
use microlm::nn::{PatchEmbedding, TransformerConfig};
use microlm::objectives::image_text::{rows_at, stack_images, ImageTextBatch, OneStream};
use microlm::objectives::itm::{itm_batch, pair_images, ItmBatch, ItmLabel};
use microlm::objectives::mlm::Selection;
use microlm::objectives::{mask_tokens, mlm_loss, Branch, Mmlm};
use microlm::tokenizer::{Tokenizer, WordTokenizer, CLS, MASK, PAD, SEP};
use microlm::{Params, Tape};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The shapes world's words after the five specials.
fn tokenizer() -> Tokenizer {
    Tokenizer::Word(WordTokenizer::new(&shapes::vocabulary()))
}

/// The tiny encoder ([`tiny_encoder_config`]: one layer, 8 wide) with the two type ids of the
/// stream (text, image).
fn config(vocab: usize) -> TransformerConfig {
    TransformerConfig {
        type_vocab_size: 2,
        ..tiny_encoder_config(vocab)
    }
}

fn model(image_size: usize, patch: usize, use_itm: bool, seed: u64) -> (Mmlm, Params, Tokenizer) {
    let tok = tokenizer();
    let mut params = Params::new();
    let c = config(tok.vocab_size());
    let m = Mmlm::new(
        &mut params,
        &c,
        &tok,
        image_size,
        patch,
        use_itm,
        &mut StdRng::seed_from_u64(seed),
    )
    .unwrap();
    (m, params, tok)
}

/// Pixels uniform in [0, 1).
fn random_image(size: usize, rng: &mut StdRng) -> Image {
    Image {
        size,
        rgb: (0..size * size * 3).map(|_| rng.random::<f32>()).collect(),
    }
}

/// Variant A's count, written out again: k = max(1, round_half_even(0.15 n)), n counting
/// [CLS] and [SEP] (max_predictions 20 is never reached by a caption of at most 12).
fn k_of(n: usize) -> usize {
    ((0.15 * n as f64).round_ties_even() as usize).max(1)
}

/// n for a caption: its words plus [CLS] and [SEP].
fn text_len(caption: &str) -> usize {
    caption.split(' ').count() + 2
}

fn captions_and_images(ex: &[Example]) -> (Vec<&str>, Vec<&Image>) {
    (
        ex.iter().map(|e| e.caption.as_str()).collect(),
        ex.iter().map(|e| &e.image).collect(),
    )
}

fn bits(t: &ArrayD<f32>) -> Vec<u32> {
    t.iter().map(|x| x.to_bits()).collect()
}

/// `docs/objectives.md` §3: `[CLS] a [MASK] [SEP] v0 v1`, V = 4, position 2 labelled 3 with
/// uniform logits: L = ln 4 = 1.3862944 whatever the logits at the other positions, the two
/// image positions included; dL/dz is (1/4, 1/4, 1/4, -3/4) at position 2 and exactly 0
/// everywhere else.
#[test]
fn worked_example_ignores_the_image_positions() {
    let (t, v) = (6, 4);
    let expected = 4f64.ln();
    assert!((expected - 1.3862944).abs() < 1e-7);
    let mut rng = StdRng::seed_from_u64(1);
    for trial in 0..6 {
        // trial 0: every logit 0; then arbitrary logits everywhere but at position 2, and at
        // trials 4 and 5 huge ones at the image positions 4 and 5.
        let z = ArrayD::from_shape_fn(IxDyn(&[1, t, v]), |ix| match (trial, ix[1]) {
            (0, _) | (_, 2) => 0.0,
            (4 | 5, 4 | 5) => rng.random_range(-80.0f32..80.0),
            _ => rng.random_range(-5.0f32..5.0),
        });
        let mut tape = Tape::new();
        let z = tape.input(z);
        let z_m = rows_at(&mut tape, z, &[2]);
        let l = mlm_loss(&mut tape, z_m, &[3]);
        assert_eq!(l.count, 1);
        let got = tape.scalar(l.mean);
        assert!((got as f64 - expected).abs() < 1e-6, "trial {trial}: {got}");
        let g = tape.backward(l.mean);
        let dz = g.wrt(z).unwrap();
        for p in 0..t {
            for c in 0..v {
                let want = match (p, c) {
                    (2, 3) => -0.75,
                    (2, _) => 0.25,
                    _ => 0.0,
                };
                assert!(
                    (dz[[0, p, c]] - want).abs() < 1e-6,
                    "trial {trial}: dL/dz[{p}, {c}] = {}",
                    dz[[0, p, c]]
                );
            }
        }
    }
}

/// patchify against the index arithmetic done here: patch j = (row r, column c) of the 4 x 4
/// grid, j = 4 r + c; element k = (y, x, ch) within it, k = (4 y + x) 3 + ch; the value is
/// pixel (4 r + y, 4 c + x), channel ch, of the image, bit for bit. stack_images copies the
/// pixels bit for bit too.
#[test]
fn patchify_and_stack_copy_the_pixels_exactly() {
    let mut params = Params::new();
    let rng = &mut StdRng::seed_from_u64(3);
    let pe = PatchEmbedding::new(&mut params, "patches", 16, 4, 3, 8, rng).unwrap();
    assert_eq!(pe.num_patches(), 16);
    let images: Vec<Image> = (0..3).map(|_| random_image(16, rng)).collect();
    let refs: Vec<&Image> = images.iter().collect();
    let stacked = stack_images(&refs);
    assert_eq!(stacked.shape(), &[3, 16, 16, 3]);
    for (b, im) in images.iter().enumerate() {
        for y in 0..16 {
            for x in 0..16 {
                for ch in 0..3 {
                    assert_eq!(
                        stacked[[b, y, x, ch]].to_bits(),
                        im.rgb[(y * 16 + x) * 3 + ch].to_bits()
                    );
                }
            }
        }
    }
    let patches = pe.patchify(&stacked);
    assert_eq!(patches.shape(), &[3, 16, 48]);
    let mut seen = ArrayD::from_elem(IxDyn(&[3, 16, 48]), 0u32);
    for (b, im) in images.iter().enumerate() {
        for r in 0..4 {
            for c in 0..4 {
                for y in 0..4 {
                    for x in 0..4 {
                        for ch in 0..3 {
                            let (j, k) = (4 * r + c, (4 * y + x) * 3 + ch);
                            let pixel = im.pixel(4 * r + y, 4 * c + x)[ch];
                            assert_eq!(
                                patches[[b, j, k]].to_bits(),
                                pixel.to_bits(),
                                "image {b}, patch {j}, element {k}"
                            );
                            seen[[b, j, k]] += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        seen.iter().all(|&s| s == 1),
        "every element of every patch is one pixel"
    );
}

/// The batch holds the given pixels bit for bit and `[CLS] caption [SEP] [PAD]..` with the
/// word ids of the vocabulary (5 + its index), lengths and type ids 0; `Mmlm::loss` leaves the
/// batch as it was, pixels and ids.
#[test]
fn the_batch_carries_the_inputs_unchanged() {
    let (model, params, tok) = model(8, 4, true, 5);
    let rng = &mut StdRng::seed_from_u64(6);
    let images: Vec<Image> = (0..3).map(|_| random_image(8, rng)).collect();
    let refs: Vec<&Image> = images.iter().collect();
    let captions = [
        "a small red circle",
        "a large blue square left of a small green cross",
        "a small white triangle above a large yellow circle",
    ];
    let batch = ImageTextBatch::new(&captions, &refs, &tok, 16).unwrap();
    let want_pixels: Vec<u32> = images
        .iter()
        .flat_map(|im| im.rgb.iter().map(|x| x.to_bits()))
        .collect();
    assert_eq!(batch.images.shape(), &[3, 8, 8, 3]);
    assert_eq!(bits(&batch.images.to_owned()), want_pixels);
    let words = shapes::vocabulary();
    let id = |w: &str| 5 + words.iter().position(|&v| v == w).unwrap();
    let tt = 12; // the longest caption: 10 words + [CLS] + [SEP]
    assert_eq!(batch.text.seq_len, tt);
    for (b, caption) in captions.iter().enumerate() {
        let mut row = vec![CLS];
        row.extend(caption.split(' ').map(id));
        row.push(SEP);
        assert_eq!(batch.text.length(b), row.len());
        row.resize(tt, PAD);
        assert_eq!(batch.text.row(b), &row[..], "row {b}");
    }
    assert_eq!(batch.text.segments, Some(vec![0; 3 * tt]));

    let itm = ItmBatch {
        pairs: batch.clone(),
        labels: vec![ItmLabel::Matched; 3],
    };
    let mut tape = Tape::new();
    let l = model.loss(&mut tape, &params, &itm, &mut StdRng::seed_from_u64(7));
    let _ = tape.backward(l.total);
    assert_eq!(
        bits(&itm.pairs.images.to_owned()),
        want_pixels,
        "the loss changed the pixels"
    );
    assert_eq!(itm.pairs.text, batch.text, "the loss changed the clean captions");
}

/// The stream x_0 computed here from the parameters: at text position i < n,
/// E_tok[x_i] sqrt(d) + PE[i] + E_type[0]; at n + j, W vec(patch_j) + b + E_imgpos[j] +
/// E_type[1] with patch_j read from the pixels here; after n + P, the text's padding slot
/// n..Tt in order. The mask's lengths are n + P per row.
#[test]
fn the_stream_is_text_then_patches_then_padding() {
    let (model, params, tok) = model(8, 4, true, 5);
    let rng = &mut StdRng::seed_from_u64(8);
    let images: Vec<Image> = (0..3).map(|_| random_image(8, rng)).collect();
    let refs: Vec<&Image> = images.iter().collect();
    let captions = [
        "a small red circle",
        "a large blue square left of a small green cross",
        "a large cross",
    ];
    let batch = ImageTextBatch::new(&captions, &refs, &tok, 16).unwrap();
    let (tt, p, d) = (12, 4, 8);
    let mut tape = Tape::no_grad();
    let (x0, mask) = model
        .stream
        .embed(&mut tape, &params, &batch, &mut StdRng::seed_from_u64(0));
    let x0 = tape.value(x0);
    assert_eq!(x0.shape(), &[3, tt + p, d]);
    let lengths: Vec<usize> = captions.iter().map(|c| text_len(c)).collect();
    assert_eq!(lengths, [6, 12, 5]);
    assert!(!mask.causal);
    assert_eq!(mask.key_lengths, Some(lengths.iter().map(|n| n + p).collect()));

    let embed = &model.stream.encoder.embed;
    assert!(embed.norm.is_none());
    assert_eq!(embed.scale, (d as f32).sqrt());
    let e_tok = params.value(embed.token.weight);
    let e_type = params.value(embed.segment.as_ref().unwrap().weight);
    let patches = &model.stream.patches;
    let w = params.value(patches.proj.weight); // [D, 48]
    let bias = params.value(patches.proj.bias.unwrap());
    let e_img = params.value(patches.positions);
    let text = |b: usize, i: usize, k: usize| {
        e_tok[[batch.text.ids[b * tt + i], k]] * embed.scale + embed.positions[[i, k]] + e_type[[0, k]]
    };
    let image = |b: usize, j: usize, k: usize| {
        let (r, c) = (j / 2, j % 2);
        let mut v = 0.0f64;
        for y in 0..4 {
            for x in 0..4 {
                for ch in 0..3 {
                    v += w[[k, (y * 4 + x) * 3 + ch]] as f64 * images[b].pixel(4 * r + y, 4 * c + x)[ch] as f64;
                }
            }
        }
        (v + (bias[k] + e_img[[j, k]] + e_type[[1, k]]) as f64) as f32
    };
    for (b, &n) in lengths.iter().enumerate() {
        for t in 0..tt + p {
            for k in 0..d {
                let want = if t < n {
                    text(b, t, k)
                } else if t < n + p {
                    image(b, t - n, k)
                } else {
                    text(b, t - p, k)
                };
                let got = x0[[b, t, k]];
                assert!(
                    (got - want).abs() < 1e-5,
                    "row {b}, stream position {t}, {k}: {got} vs {want}"
                );
            }
        }
    }
    // Text position i of row b is stream position b (Tt + P) + i.
    let flat = [0, 5, tt + 3, 2 * tt + 4];
    assert_eq!(model.stream.stream_positions(&batch, &flat), [0, 5, 16 + 3, 2 * 16 + 4]);
}

/// ∂L/∂W_patch is finite and not zero, through the total and through L_MMLM alone; and with the
/// same captions and the same seed (so the same masks), other images give another L_MMLM.
#[test]
fn the_gradient_reaches_w_patch_and_the_image_changes_the_loss() {
    let ex = shapes::examples(4, 11);
    let (captions, images) = captions_and_images(&ex);
    let other = shapes::examples(4, 12);
    let (_, other_images) = captions_and_images(&other);
    for use_itm in [true, false] {
        let (model, params, tok) = model(32, 8, use_itm, 6);
        let itm = ItmBatch {
            pairs: ImageTextBatch::new(&captions, &images, &tok, 16).unwrap(),
            labels: vec![ItmLabel::Matched; 4],
        };
        let mut tape = Tape::new();
        let l = model.loss(&mut tape, &params, &itm, &mut StdRng::seed_from_u64(9));
        let (mmlm_a, count_a) = (tape.scalar(l.mmlm.mean), l.mmlm.count);
        let g = tape.backward(l.total);
        let dw = g
            .param(model.stream.patches.proj.weight)
            .expect("no gradient for patches.proj.weight");
        assert!(dw.iter().all(|x| x.is_finite()));
        let largest = dw.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(largest > 1e-6, "use_itm {use_itm}: dL/dW_patch is {largest} at most");

        let swapped = ItmBatch {
            pairs: itm.pairs.with_images(&other_images),
            labels: itm.labels.clone(),
        };
        let mut tape = Tape::new();
        let l = model.loss(&mut tape, &params, &swapped, &mut StdRng::seed_from_u64(9));
        let mmlm_b = tape.scalar(l.mmlm.mean);
        assert_eq!(l.mmlm.count, count_a);
        assert!(mmlm_a.is_finite() && mmlm_b.is_finite());
        assert_ne!(mmlm_a, mmlm_b, "use_itm {use_itm}: other images, same L_MMLM");
    }
}

/// §1 counted over caption positions only, 2000 captions of the shapes world x 10 mask draws:
/// never [CLS], [SEP], [PAD] or a position at or past the caption's length n (so never an
/// image slot of the stream); exactly k = max(1, round_half_even(0.15 n)) per caption (so at
/// least one); the branch written where it says; and the 80/10/10 split within 5 binomial
/// standard deviations, sqrt(p (1 - p) / count) with count about 3 * 10^4 (0.012 for the
/// 0.8, 0.009 for each 0.1).
#[test]
fn masking_statistics_over_caption_positions() {
    let (model, _, tok) = model(32, 8, true, 0);
    assert_eq!(
        model.corruption.selection,
        Selection::PerSequence { max_predictions: 20 }
    );
    assert_eq!(
        (model.corruption.mask_rate, model.corruption.mask_token_prob),
        (0.15, 0.8)
    );
    let v = tok.vocab_size();
    let p = 16; // (32 / 8)^2 patches
    let ex = shapes::examples(2000, 21);
    let (mut branches, mut total) = ([0usize; 3], 0usize);
    let mut per_k = [0usize; 3];
    for (c, chunk) in ex.chunks(200).enumerate() {
        let (captions, images) = captions_and_images(chunk);
        let batch = ImageTextBatch::new(&captions, &images, &tok, 16).unwrap();
        let x = &batch.text;
        let tt = x.seq_len;
        let n: Vec<usize> = captions.iter().map(|c| text_len(c)).collect();
        for (b, &n_b) in n.iter().enumerate() {
            assert_eq!(x.length(b), n_b);
        }
        for seed in 0..10u64 {
            let m = mask_tokens(
                x,
                &model.vocab,
                &model.corruption,
                &mut StdRng::seed_from_u64(1000 * seed + c as u64),
            );
            let mut count = vec![0usize; captions.len()];
            let mut in_m = vec![false; x.ids.len()];
            let stream = model.stream.stream_positions(&batch, &m.masked_positions);
            for (((&f, &label), &branch), &s) in m.masked_positions.iter().zip(&m.labels).zip(&m.branches).zip(&stream)
            {
                let (b, i) = (f / tt, f % tt);
                assert!(i > 0 && i < n[b] - 1, "caption {b}: position {i} of {} chosen", n[b]);
                let original = x.ids[f];
                assert!(![CLS, SEP, PAD, MASK].contains(&original), "a special at {f}");
                assert_eq!(label, original);
                assert_eq!((s / (tt + p), s % (tt + p)), (b, i), "the stream slot of a masked word");
                match branch {
                    Branch::Mask => assert_eq!(m.x_masked.ids[f], MASK),
                    Branch::Keep => assert_eq!(m.x_masked.ids[f], original),
                    Branch::Random => assert!(m.x_masked.ids[f] < v),
                }
                branches[branch as usize] += 1;
                count[b] += 1;
                in_m[f] = true;
            }
            for f in (0..x.ids.len()).filter(|&f| !in_m[f]) {
                assert_eq!(m.x_masked.ids[f], x.ids[f], "position {f} outside M changed");
            }
            for (b, &k) in count.iter().enumerate() {
                assert_eq!(k, k_of(n[b]), "caption {b} of length {}: {k} masked", n[b]);
                assert!(k >= 1);
                per_k[k] += 1;
            }
            total += count.iter().sum::<usize>();
        }
    }
    // Captions of 6 positions (one object) get 1, of 11 or 12 (two) get 2: both occur.
    assert!(per_k[1] > 0 && per_k[2] > 0, "{per_k:?}");
    assert_eq!(branches.iter().sum::<usize>(), total);
    let share = |i: usize| branches[i] as f64 / total as f64;
    let sigma = |q: f64| (q * (1.0 - q) / total as f64).sqrt();
    let (mask, random, keep) = (
        share(Branch::Mask as usize),
        share(Branch::Random as usize),
        share(Branch::Keep as usize),
    );
    assert!(
        (mask - 0.8).abs() < 5.0 * sigma(0.8),
        "[MASK] share {mask} over {total}"
    );
    assert!(
        (random - 0.1).abs() < 5.0 * sigma(0.1),
        "random share {random} over {total}"
    );
    assert!((keep - 0.1).abs() < 5.0 * sigma(0.1), "kept share {keep} over {total}");
}

/// L_MMLM counts the masked words of matched rows only: none when every row is mismatched
/// (then L_MMLM = 0 and the total is L_ITM), sum of k_b over all rows when all match, sum over
/// the matched rows in a mix. In the mix, the values are recomputed here from the raw scores of
/// the same masked batch (same seed): L_MMLM = mean over matched masked words of
/// -log softmax(z)_label, L_ITM = mean over rows of -log softmax(s)_y with Matched = 1.
#[test]
fn only_matched_rows_are_scored() {
    let (model, params, tok) = model(32, 8, true, 3);
    let ex = shapes::examples(6, 31);
    let (captions, images) = captions_and_images(&ex);
    let pairs = ImageTextBatch::new(&captions, &images, &tok, 16).unwrap();
    let ks: Vec<usize> = captions.iter().map(|c| k_of(text_len(c))).collect();
    use ItmLabel::{Matched as M, Mismatched as X};
    for labels in [vec![X; 6], vec![M; 6], vec![M, X, M, M, X, X]] {
        let batch = ItmBatch {
            pairs: pairs.clone(),
            labels: labels.clone(),
        };
        let mut tape = Tape::new();
        let l = model.loss(&mut tape, &params, &batch, &mut StdRng::seed_from_u64(4));
        let want: usize = ks.iter().zip(&labels).filter(|(_, &y)| y == M).map(|(k, _)| k).sum();
        assert_eq!(l.mmlm.count, want, "{labels:?}");
        assert_eq!(l.itm.count, 6);
        let (total, mmlm, itm) = (tape.scalar(l.total), tape.scalar(l.mmlm.mean), tape.scalar(l.itm.mean));
        if want == 0 {
            assert_eq!(mmlm, 0.0);
        }
        assert!((total - (mmlm + itm)).abs() < 1e-6);

        // The same masks, scored here.
        let m = mask_tokens(
            &pairs.text,
            &model.vocab,
            &model.corruption,
            &mut StdRng::seed_from_u64(4),
        );
        let tt = pairs.text.seq_len;
        let (positions, targets): (Vec<usize>, Vec<usize>) = m
            .masked_positions
            .iter()
            .zip(&m.labels)
            .filter(|(&f, _)| labels[f / tt] == M)
            .map(|(&f, &y)| (f, y))
            .unzip();
        assert_eq!(positions.len(), want);
        let mut eval = Tape::no_grad();
        let (z, s) = model.scores(
            &mut eval,
            &params,
            &pairs.with_text(m.x_masked),
            &positions,
            &mut StdRng::seed_from_u64(0),
        );
        let ce = |row: Vec<f64>, y: usize| {
            let top = row.iter().cloned().fold(f64::MIN, f64::max);
            top + row.iter().map(|r| (r - top).exp()).sum::<f64>().ln() - row[y]
        };
        let (z, s) = (eval.value(z), eval.value(s));
        let words: f64 = targets
            .iter()
            .enumerate()
            .map(|(j, &y)| ce(row_of(z, j), y))
            .sum::<f64>()
            / want.max(1) as f64;
        let pairs_ce: f64 = labels
            .iter()
            .enumerate()
            .map(|(b, y)| ce(row_of(s, b), if *y == M { 1 } else { 0 }))
            .sum::<f64>()
            / 6.0;
        assert!((mmlm as f64 - words).abs() < 1e-5, "L_MMLM {mmlm} vs {words}");
        assert!((itm as f64 - pairs_ce).abs() < 1e-5, "L_ITM {itm} vs {pairs_ce}");
    }
    // With ITM off the total is L_MMLM alone.
    let (model, params, _) = self::model(32, 8, false, 3);
    let batch = ItmBatch {
        pairs,
        labels: vec![M, X, M, M, X, X],
    };
    let mut tape = Tape::new();
    let l = model.loss(&mut tape, &params, &batch, &mut StdRng::seed_from_u64(4));
    assert_eq!(tape.scalar(l.total), tape.scalar(l.mmlm.mean));
}

/// Row `i` of a [N, C] tensor, in f64.
fn row_of(t: &microlm::Tensor, i: usize) -> Vec<f64> {
    (0..t.shape()[1]).map(|c| t[[i, c]] as f64).collect()
}

/// pair_images: a matched row keeps its own image; a mismatched row's image is another row's
/// whose caption differs from its own; P(Matched) = 0.5 within 5 sigma = 5 sqrt(0.25 / 12000)
/// = 0.023 over 2000 draws of 6 rows; a mismatched row 0 picks each of its 4 candidates with
/// probability 1/4 (5 sigma of about 0.07); captions all equal stay all matched.
#[test]
fn pair_images_never_pairs_a_caption_with_its_own_description() {
    let captions = [
        "a red circle",
        "a red circle",
        "a blue square",
        "a green cross",
        "a blue square",
        "a white cross",
    ];
    let mut rng = StdRng::seed_from_u64(10);
    let (mut matched, mut total) = (0usize, 0usize);
    let mut row0 = [0usize; 6];
    for _ in 0..2000 {
        let pairing = pair_images(&captions, &mut rng);
        assert_eq!(pairing.len(), 6);
        for (i, &(j, y)) in pairing.iter().enumerate() {
            match y {
                ItmLabel::Matched => {
                    assert_eq!(j, i, "a matched row points elsewhere");
                    matched += 1;
                }
                ItmLabel::Mismatched => {
                    assert_ne!(
                        captions[j], captions[i],
                        "row {i} mismatched with image {j} of the same caption"
                    );
                    if i == 0 {
                        row0[j] += 1;
                    }
                }
            }
            total += 1;
        }
    }
    let share = matched as f64 / total as f64;
    assert!(
        (share - 0.5).abs() < 5.0 * (0.25 / total as f64).sqrt(),
        "P(Matched) = {share}"
    );
    let mismatched0: usize = row0.iter().sum();
    assert_eq!(row0[0] + row0[1], 0);
    for &c in &row0[2..] {
        let q = c as f64 / mismatched0 as f64;
        assert!(
            (q - 0.25).abs() < 5.0 * (0.25 * 0.75 / mismatched0 as f64).sqrt(),
            "{row0:?}"
        );
    }
    for _ in 0..50 {
        let same = pair_images(&["a small red circle"; 5], &mut rng);
        assert!(
            same.iter()
                .enumerate()
                .all(|(i, &(j, y))| j == i && y == ItmLabel::Matched),
            "{same:?}"
        );
    }
    // Two equal captions and one other: the equal ones may only take the third's image.
    for _ in 0..50 {
        for (i, (j, y)) in pair_images(&["x", "x", "y"], &mut rng).into_iter().enumerate() {
            if y == ItmLabel::Mismatched {
                assert!(if i < 2 { j == 2 } else { j < 2 }, "row {i} took image {j}");
            }
        }
    }
}

/// itm_batch puts image j of the pairing (the same seed) into row i, bit for bit, with its label.
#[test]
fn itm_batch_stacks_the_paired_images() {
    let tok = tokenizer();
    let ex = shapes::examples(8, 41);
    let (captions, images) = captions_and_images(&ex);
    let pairing = pair_images(&captions, &mut StdRng::seed_from_u64(2));
    let batch = itm_batch(&captions, &images, &tok, 16, &mut StdRng::seed_from_u64(2)).unwrap();
    assert_eq!(batch.labels, pairing.iter().map(|&(_, y)| y).collect::<Vec<_>>());
    let s = 32 * 32 * 3;
    let got = bits(&batch.pairs.images.to_owned());
    for (i, &(j, _)) in pairing.iter().enumerate() {
        let want: Vec<u32> = images[j].rgb.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got[i * s..(i + 1) * s], want[..], "row {i}");
    }
    let captions_ids = ImageTextBatch::new(&captions, &images, &tok, 16).unwrap().text;
    assert_eq!(batch.pairs.text, captions_ids, "the captions stay in their rows");
}

/// Gradcheck of the patch embedding followed by f = sum(R ⊙ v ⊙ v) for a fixed random R, with
/// respect to W, b and E_imgpos; and for the linear f = sum(R ⊙ v) the gradients by hand:
/// dW[d, k] = sum_{b,j} R[b,j,d] patch[b,j,k], db[d] = sum_{b,j} R[b,j,d],
/// dE_imgpos[j, d] = sum_b R[b,j,d].
#[test]
fn patch_embedding_passes_gradcheck() {
    let mut params = Params::new();
    let rng = &mut StdRng::seed_from_u64(12);
    let pe = PatchEmbedding::new(&mut params, "patches", 8, 4, 3, 6, rng).unwrap();
    let ims = [random_image(8, rng), random_image(8, rng)];
    let images = stack_images(&[&ims[0], &ims[1]]);
    let r = ArrayD::from_shape_fn(IxDyn(&[2, 4, 6]), |_| rng.random_range(-1.0f32..1.0));
    let report = gradcheck_params(
        |tape, params| {
            let v = pe.forward(tape, params, &images);
            let rv = tape.constant(r.clone());
            let a = tape.mul(v, rv);
            let b = tape.mul(a, v);
            tape.sum_all(b)
        },
        &params,
        GradcheckConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.checked, 6 * 48 + 6 + 4 * 6);
    assert!(report.g_max > 1e-2, "negligible gradients: {report}");

    let mut tape = Tape::new();
    let v = pe.forward(&mut tape, &params, &images);
    let rv = tape.constant(r.clone());
    let a = tape.mul(v, rv);
    let f = tape.sum_all(a);
    let g = tape.backward(f);
    let (dw, db, de) = (
        g.param(pe.proj.weight).unwrap(),
        g.param(pe.proj.bias.unwrap()).unwrap(),
        g.param(pe.positions).unwrap(),
    );
    let patch = |b: usize, j: usize, k: usize| {
        let (gr, gc, y, x, ch) = (j / 2, j % 2, k / 12, (k / 3) % 4, k % 3);
        ims[b].pixel(4 * gr + y, 4 * gc + x)[ch]
    };
    for d in 0..6 {
        let want_b: f32 = (0..2)
            .flat_map(|b| (0..4).map(move |j| (b, j)))
            .map(|(b, j)| r[[b, j, d]])
            .sum();
        assert!((db[d] - want_b).abs() < 1e-5);
        for j in 0..4 {
            assert!((de[[j, d]] - (r[[0, j, d]] + r[[1, j, d]])).abs() < 1e-5);
        }
        for k in 0..48 {
            let want: f32 = (0..2)
                .flat_map(|b| (0..4).map(move |j| (b, j)))
                .map(|(b, j)| r[[b, j, d]] * patch(b, j, k))
                .sum();
            assert!(
                (dw[[d, k]] - want).abs() < 1e-5,
                "dW[{d}, {k}] = {} vs {want}",
                dw[[d, k]]
            );
        }
    }
}

/// The errors name what is wrong and the setting to change.
#[test]
fn bad_inputs_are_refused_with_the_setting_named() {
    let rng = &mut StdRng::seed_from_u64(0);
    let e = PatchEmbedding::new(&mut Params::new(), "patches", 32, 5, 3, 8, rng).unwrap_err();
    assert!(e.contains("32") && e.contains('5'), "{e}");
    assert!(PatchEmbedding::new(&mut Params::new(), "patches", 32, 0, 3, 8, rng).is_err());
    let tok = tokenizer();
    let e = Mmlm::new(&mut Params::new(), &config(tok.vocab_size()), &tok, 32, 5, true, rng).unwrap_err();
    assert!(e.contains("32") && e.contains('5'), "{e}");

    let long = "a large blue square left of a small green cross"; // 12 positions
    let im = Image::blank(32);
    let e = ImageTextBatch::new(&["a red circle", long], &[&im, &im], &tok, 11).unwrap_err();
    assert!(
        e.contains(long) && e.contains("11") && e.contains("12") && e.contains("max_len"),
        "{e}"
    );
    assert!(ImageTextBatch::new(&[long], &[&im], &tok, 12).is_ok());
    let e = ImageTextBatch::new(&["a red circle"], &[&im, &im], &tok, 12).unwrap_err();
    assert!(e.contains('1') && e.contains('2'), "{e}");

    for types in [0, 1, 3] {
        let c = TransformerConfig {
            type_vocab_size: types,
            ..config(tok.vocab_size())
        };
        let e = OneStream::new(&mut Params::new(), &c, 32, 8, rng).unwrap_err();
        assert!(e.contains("type_vocab_size") && e.contains(&types.to_string()), "{e}");
    }
    let c = TransformerConfig {
        vocab_size: tok.vocab_size() + 1,
        ..config(tok.vocab_size())
    };
    let e = Mmlm::new(&mut Params::new(), &c, &tok, 32, 8, true, rng).unwrap_err();
    assert!(e.contains("vocab_size"), "{e}");
}

/// Saved with its metadata and the tokenizer's, then `Mmlm::load`: the same tokenizer, image
/// geometry, ITM switch and parameters, and the same scores and predictions, bit for bit. A
/// checkpoint without `mmlm.patch` is refused, naming the key.
#[test]
fn checkpoint_round_trip() {
    let (model, params, tok) = model(32, 8, false, 7); // seed 7: load builds with seed 0
    let dir = std::env::temp_dir().join(format!("microlm-mmlm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mmlm.safetensors");
    let mut metadata = model.metadata();
    metadata.extend(tok.to_metadata());
    checkpoint::save(&path, &params, &metadata).unwrap();
    let (loaded, loaded_params, loaded_tok) = Mmlm::load(&path).unwrap();
    assert_eq!(loaded_tok, tok);
    assert!(!loaded.use_itm);
    assert_eq!((loaded.stream.patches.image_size, loaded.stream.patches.patch), (32, 8));
    assert_eq!(loaded_params.len(), params.len());
    for id in params.ids() {
        let name = params.name(id);
        let other = loaded_params.find(name).unwrap_or_else(|| panic!("{name} not loaded"));
        assert_eq!(
            bits(&params.value(id).to_owned()),
            bits(&loaded_params.value(other).to_owned()),
            "{name}"
        );
    }

    let ex = shapes::examples(3, 51);
    let (captions, images) = captions_and_images(&ex);
    let batch = ImageTextBatch::new(&captions, &images, &tok, 16).unwrap();
    let m = mask_tokens(
        &batch.text,
        &model.vocab,
        &model.corruption,
        &mut StdRng::seed_from_u64(1),
    );
    let masked = batch.with_text(m.x_masked);
    let run = |model: &Mmlm, params: &Params| {
        let mut tape = Tape::no_grad();
        let (z, s) = model.scores(
            &mut tape,
            params,
            &masked,
            &m.masked_positions,
            &mut StdRng::seed_from_u64(0),
        );
        (bits(&tape.value(z).to_owned()), bits(&tape.value(s).to_owned()))
    };
    assert_eq!(run(&model, &params), run(&loaded, &loaded_params));
    let (w0, p0) = model.predict(&params, &masked, &m.masked_positions, &[]);
    let (w1, p1) = loaded.predict(&loaded_params, &masked, &m.masked_positions, &[]);
    assert_eq!(w0, w1);
    assert_eq!(
        p0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        p1.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );

    metadata.remove("mmlm.patch");
    let broken = dir.join("no_patch.safetensors");
    checkpoint::save(&broken, &params, &metadata).unwrap();
    let e = match Mmlm::load(&broken) {
        Ok(_) => panic!("loaded a checkpoint without mmlm.patch"),
        Err(e) => e,
    };
    assert!(e.contains("mmlm.patch"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A caption filled in by the model (what the mmlm example draws) never holds a special token:
/// with the MLM head's bias raised far at `[MASK]` and the other specials, the filled words
/// are still words of the grammar (it once drew `[[MASK]]`).
#[test]
fn filled_captions_never_hold_a_special_token() {
    use microlm::objectives::grounding::fill_caption;
    let (m, mut params, tok) = model(shapes::IMAGE_SIZE, 8, true, 0);
    let bias = params.find("mlm_head.output.bias").expect("the MLM head's output bias");
    for id in tok.special_ids() {
        params.value_mut(bias)[id] += 100.0;
    }
    let e = shapes::examples(1, 7).remove(0);
    let filled = fill_caption(&m, &params, &tok, &e, &e.image, 16).unwrap();
    assert!(filled.contains('['), "some word is filled in: {filled}");
    for name in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
        assert!(!filled.contains(name), "{name} in {filled}");
    }
}

/// The `mmlm` example's path from flags to checkpoint (`Recipe::read_without`, `ShapesWorld`,
/// `Recipe::shapes_config`, `Mmlm::metadata`, `Recipe::train_with`), tiny and two updates long:
/// `--activation relu` is written into the checkpoint as `relu` (it once said `gelu`), and
/// `Mmlm::load` builds a ReLU model that scores the held-out pairs exactly as the trained one
/// did. Without the flag the same run writes `gelu`, so the flag is what changed it.
#[test]
fn mmlm_activation_flag_reaches_the_checkpoint_and_comes_back_on_load() {
    use microlm::cli::Flags;
    use microlm::data::shapes::IMAGE_SIZE;
    use microlm::nn::Activation;
    use microlm::recipe::{Recipe, ShapesWorld, SHAPES_UNUSED};
    let run = |activation: Option<&str>| {
        let dir = fresh_dir(&format!("mmlm-activation-{activation:?}"));
        let out = dir.display().to_string();
        let mut args = vec![
            "--steps",
            "2",
            "--warmup",
            "1",
            "--d-model",
            "8",
            "--heads",
            "2",
            "--layers",
            "1",
        ];
        args.extend([
            "--batch",
            "4",
            "--eval-every",
            "2",
            "--eval-batches",
            "1",
            "--out",
            &out,
        ]);
        if let Some(a) = activation {
            args.extend(["--activation", a]);
        }
        let mut flags = Flags::parse(args.iter().map(|a| a.to_string())).unwrap();
        let recipe = Recipe::read_without(&mut flags, Recipe::default(), SHAPES_UNUSED).unwrap();
        let world = ShapesWorld::read(&mut flags).unwrap();
        flags.finish().unwrap();
        let mut params = Params::new();
        let config = recipe.shapes_config(&world, 2, 0.0).unwrap();
        let rng = &mut recipe.init_rng();
        let model = Mmlm::new(
            &mut params,
            &config,
            &world.tokenizer,
            IMAGE_SIZE,
            world.patch,
            true,
            rng,
        )
        .unwrap();
        let val = world.itm_validation(recipe.batch, recipe.eval_batches).unwrap();
        let mut metadata = model.metadata();
        metadata.extend(world.settings(&recipe));
        let report = recipe
            .train_with(
                &mut params,
                &metadata,
                Vec::new(),
                |tape, p, rng| model.loss(tape, p, &world.itm_training_batch(recipe.batch, rng), rng),
                |p| model.validation(p, &val),
            )
            .unwrap();
        let path = dir.join("checkpoint.safetensors");
        let written = checkpoint::read(&path).unwrap().metadata["config.activation"].clone();
        let (loaded, loaded_params, _) = Mmlm::load(&path).unwrap();
        let trained_loss = report.last_eval.unwrap().loss;
        let loaded_loss = loaded.validation(&loaded_params, &val).loss;
        assert_eq!(loaded_loss.to_bits(), trained_loss.to_bits(), "{activation:?}");
        (written, loaded.stream.encoder.config.activation)
    };
    assert_eq!(run(Some("relu")), ("relu".to_string(), Activation::Relu));
    assert_eq!(run(None), ("gelu".to_string(), Activation::Gelu));
}
