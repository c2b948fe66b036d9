//! The shapes world: determinism, captions against scenes and images, the priors, the word
//! tokenizer, the SVG drawings. Expected values come from the world's specification (module
//! docs of `data/shapes/`), written out again here, not from the code under test.

use microlm::data::image_svg::{heatmap_svg, image_svg};
use microlm::data::shapes::{examples, vocabulary, Colour, Example, Object, Relation, Role, Scene, Shape, Size};
use microlm::tokenizer::{Tokenizer, WordTokenizer, MASK, UNK};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The test's own reading of a caption word, by the grammar in the docs.
fn parse_shape(w: &str) -> Shape {
    match w {
        "circle" => Shape::Circle,
        "square" => Shape::Square,
        "triangle" => Shape::Triangle,
        "cross" => Shape::Cross,
        _ => panic!("not a shape: {w}"),
    }
}

fn parse_colour(w: &str) -> Colour {
    match w {
        "red" => Colour::Red,
        "green" => Colour::Green,
        "blue" => Colour::Blue,
        "yellow" => Colour::Yellow,
        "purple" => Colour::Purple,
        "orange" => Colour::Orange,
        "white" => Colour::White,
        _ => panic!("not a colour: {w}"),
    }
}

fn parse_size(w: &str) -> Size {
    match w {
        "small" => Size::Small,
        "large" => Size::Large,
        _ => panic!("not a size: {w}"),
    }
}

/// "a {size} {colour} {shape}" from four words.
fn parse_phrase(words: &[&str]) -> (Size, Colour, Shape) {
    assert_eq!(words.len(), 4, "{words:?}");
    assert_eq!(words[0], "a");
    (parse_size(words[1]), parse_colour(words[2]), parse_shape(words[3]))
}

/// The caption as (first phrase, maybe (relation, second phrase)).
type Parsed = ((Size, Colour, Shape), Option<(Relation, (Size, Colour, Shape))>);

fn parse_caption(caption: &str) -> Parsed {
    let w: Vec<&str> = caption.split(' ').collect();
    let first = parse_phrase(&w[..4.min(w.len())]);
    if w.len() == 4 {
        return (first, None);
    }
    let (relation, rest) = match (w[4], w.get(5)) {
        ("left", Some(&"of")) => (Relation::LeftOf, &w[6..]),
        ("right", Some(&"of")) => (Relation::RightOf, &w[6..]),
        ("above", _) => (Relation::Above, &w[5..]),
        ("below", _) => (Relation::Below, &w[5..]),
        _ => panic!("no relation in {caption:?}"),
    };
    (first, Some((relation, parse_phrase(rest))))
}

/// Ideal named colours; the caption's colour must be the nearest of these to the pixel.
const NAMED: [(Colour, [f32; 3]); 7] = [
    (Colour::Red, [1.0, 0.0, 0.0]),
    (Colour::Green, [0.0, 1.0, 0.0]),
    (Colour::Blue, [0.0, 0.0, 1.0]),
    (Colour::Yellow, [1.0, 1.0, 0.0]),
    (Colour::Purple, [0.5, 0.0, 0.5]),
    (Colour::Orange, [1.0, 0.5, 0.0]),
    (Colour::White, [1.0, 1.0, 1.0]),
];

fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f32>().sqrt()
}

fn nearest_named(p: [f32; 3]) -> Colour {
    NAMED
        .iter()
        .min_by(|a, b| dist(p, a.1).total_cmp(&dist(p, b.1)))
        .unwrap()
        .0
}

/// The radius the docs give each size.
fn radius(size: Size) -> f32 {
    match size {
        Size::Small => 3.5,
        Size::Large => 6.5,
    }
}

#[test]
fn examples_are_deterministic_per_seed() {
    let (a, b, c) = (examples(50, 7), examples(50, 7), examples(50, 8));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.caption, y.caption);
        let bits = |e: &Example| e.image.rgb.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(x), bits(y));
    }
    assert_ne!(a, c, "a different seed gives different examples");
}

#[test]
fn a_worked_caption_and_its_roles() {
    let object = |shape, colour, size| Object {
        shape,
        colour,
        size,
        cx: 0.0,
        cy: 0.0,
    };
    let scene = Scene {
        first: object(Shape::Circle, Colour::Red, Size::Large),
        second: Some((Relation::LeftOf, object(Shape::Square, Colour::Blue, Size::Small))),
    };
    assert_eq!(scene.caption(), "a large red circle left of a small blue square");
    let phrase = [Role::Article, Role::Size, Role::Colour, Role::Shape];
    let expected = [&phrase[..], &[Role::Relation; 2], &phrase[..]].concat();
    assert_eq!(scene.roles(), expected);
    let alone = Scene {
        first: object(Shape::Cross, Colour::White, Size::Small),
        second: None,
    };
    assert_eq!(alone.caption(), "a small white cross");
    assert_eq!(alone.roles(), phrase);
    let above = Scene {
        second: Some((Relation::Above, alone.first)),
        ..scene
    };
    assert_eq!(above.caption(), "a large red circle above a small white cross");
    assert_eq!(above.roles().len(), 9);
}

#[test]
fn vocabulary_is_the_grammars_words_once_each() {
    let v = vocabulary();
    let mut expected = vec![
        "a", "small", "large", "red", "green", "blue", "yellow", "purple", "orange", "white",
    ];
    expected.extend([
        "circle", "square", "triangle", "cross", "left", "of", "right", "above", "below",
    ]);
    assert_eq!(v, expected);
}

/// Check one object of an example against the caption's phrase and the picture.
fn check_object(e: &Example, o: &Object, phrase: (Size, Colour, Shape)) {
    assert_eq!((o.size, o.colour, o.shape), phrase, "{}", e.caption);
    // A point inside every shape: the centre, or just below it for the triangle (narrow at top).
    let below = if o.shape == Shape::Triangle { 1.0 } else { 0.0 };
    let (x, y) = (o.cx as usize, (o.cy + below) as usize);
    let p = e.image.pixel(y, x);
    assert_eq!(nearest_named(p), o.colour, "{} at ({x}, {y}): {p:?}", e.caption);
    let want = o.colour.rgb();
    assert!(
        (0..3).all(|c| (p[c] - want[c]).abs() <= 0.05 + 1e-6),
        "{p:?} vs {want:?}"
    );
}

#[test]
fn captions_match_scenes_and_images() {
    for e in examples(1000, 1) {
        let (first, rest) = parse_caption(&e.caption);
        assert_eq!(e.scene.roles().len(), e.caption.split(' ').count());
        check_object(&e, &e.scene.first, first);
        let o = e.scene.objects();
        for a in &o {
            // The box lies inside the image and inside one grid block of 8 (small) or 16 (large)
            // pixels whose start is a multiple of 8, across and down.
            let (r, block) = (radius(a.size), if a.size == Size::Small { 8.0 } else { 16.0 });
            for c in [a.cx, a.cy] {
                let start = 8.0 * ((c - r) / 8.0).floor();
                assert!(c - r >= 0.0 && c + r <= 32.0, "{a:?}");
                assert!(c + r <= start + block, "{a:?} crosses its grid block");
            }
        }
        match (rest, e.scene.second) {
            (None, None) => assert_eq!(o.len(), 1),
            (Some((relation, phrase)), Some((r, second))) => {
                assert_eq!(relation, r, "{}", e.caption);
                check_object(&e, &second, phrase);
                let (a, b) = (&e.scene.first, &second);
                let (ra, rb) = (radius(a.size), radius(b.size));
                match relation {
                    Relation::LeftOf => assert!(a.cx + ra <= 16.0 && b.cx - rb >= 16.0),
                    Relation::RightOf => assert!(a.cx - ra >= 16.0 && b.cx + rb <= 16.0),
                    Relation::Above => assert!(a.cy + ra <= 16.0 && b.cy - rb >= 16.0),
                    Relation::Below => assert!(a.cy - ra >= 16.0 && b.cy + rb <= 16.0),
                }
                let apart_x = (a.cx - b.cx).abs() >= ra + rb;
                let apart_y = (a.cy - b.cy).abs() >= ra + rb;
                assert!(apart_x || apart_y, "boxes overlap: {}", e.caption);
            }
            _ => panic!("caption and scene disagree on the second object: {}", e.caption),
        }
    }
}

#[test]
fn pixels_are_in_range_and_the_background_is_within_the_noise_band() {
    for e in examples(200, 2) {
        assert!(e.image.rgb.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(e.image.rgb.len(), 32 * 32 * 3);
        for y in 0..32 {
            for x in 0..32 {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let far = e.scene.objects().iter().all(|o| {
                    let r = radius(o.size) + 1.0;
                    (px - o.cx).abs() > r || (py - o.cy).abs() > r
                });
                if far {
                    let p = e.image.pixel(y, x);
                    assert!(p.iter().all(|v| (0.05 - 1e-6..=0.15 + 1e-6).contains(v)), "{p:?}");
                }
            }
        }
    }
}

/// With a centre uniform over many pixels, the expected number of pixel centres inside a shape
/// is its area; averaged over ~60 single-object scenes per (shape, size) the count is within 5%.
#[test]
fn painted_areas_match_the_shapes_geometry() {
    let area = |shape: Shape, r: f32| match shape {
        Shape::Circle => std::f32::consts::PI * r * r,
        Shape::Square => (1.7 * r) * (1.7 * r),
        Shape::Triangle => 2.0 * r * r, // base 2r, height 2r
        Shape::Cross => 2.0 * (2.0 * r) * (2.0 * r / 3.0) - (2.0 * r / 3.0).powi(2), // two bars less their overlap
    };
    let mut sums = std::collections::HashMap::new();
    for e in examples(1000, 3).into_iter().filter(|e| e.scene.second.is_none()) {
        let o = e.scene.first;
        let want = o.colour.rgb();
        let painted = (0..32 * 32)
            .filter(|&i| dist(e.image.pixel(i / 32, i % 32), want) < 0.1)
            .count();
        let s = sums.entry(format!("{:?} {:?}", o.shape, o.size)).or_insert((0.0, 0));
        s.0 += painted as f32 / area(o.shape, radius(o.size));
        s.1 += 1;
    }
    assert_eq!(sums.len(), 8);
    for (k, (sum, n)) in sums {
        let mean = sum / n as f32;
        assert!((mean - 1.0).abs() < 0.05, "{k}: painted / area = {mean:.3} over {n}");
    }
}

#[test]
fn colours_are_far_apart_and_far_from_the_background() {
    for (i, a) in Colour::ALL.iter().enumerate() {
        assert!(dist(a.rgb(), [0.1; 3]) > 0.5, "{a:?}");
        for b in &Colour::ALL[i + 1..] {
            assert!(dist(a.rgb(), b.rgb()) >= 0.4, "{a:?} {b:?}");
        }
    }
}

/// Frequencies over 10^4 scenes. Binomial std: sqrt(p(1-p)/n). Colours over ~1.5e4 objects:
/// 0.0029; shapes 0.0035; sizes 0.0041; two-object share over 1e4 scenes 0.005; relations and
/// equal colours over ~5e3 two-object scenes 0.0061 and 0.0049. ±0.02 is 3.3 std at worst (the
/// relations) and above 4 std for the rest.
#[test]
fn priors_are_uniform_and_independent() {
    let mut rng = StdRng::seed_from_u64(11);
    let scenes: Vec<Scene> = (0..10_000).map(|_| Scene::random(&mut rng)).collect();
    let objects: Vec<Object> = scenes.iter().flat_map(|s| s.objects()).collect();
    let pairs: Vec<(Relation, Object, Object)> = scenes
        .iter()
        .filter_map(|s| s.second.map(|(r, o)| (r, s.first, o)))
        .collect();
    let share = |hits: usize, n: usize| hits as f64 / n as f64;
    let near = |got: f64, want: f64, what: &str| assert!((got - want).abs() < 0.02, "{what}: {got:.4} vs {want:.4}");
    near(share(pairs.len(), scenes.len()), 0.5, "two objects");
    for c in Colour::ALL {
        near(
            share(objects.iter().filter(|o| o.colour == c).count(), objects.len()),
            1.0 / 7.0,
            c.word(),
        );
    }
    for s in Shape::ALL {
        near(
            share(objects.iter().filter(|o| o.shape == s).count(), objects.len()),
            0.25,
            s.word(),
        );
    }
    for z in Size::ALL {
        near(
            share(objects.iter().filter(|o| o.size == z).count(), objects.len()),
            0.5,
            z.word(),
        );
    }
    for r in Relation::ALL {
        near(
            share(pairs.iter().filter(|p| p.0 == r).count(), pairs.len()),
            0.25,
            r.word(),
        );
    }
    let same =
        |f: &dyn Fn(&Object, &Object) -> bool| share(pairs.iter().filter(|p| f(&p.1, &p.2)).count(), pairs.len());
    near(same(&|a, b| a.colour == b.colour), 1.0 / 7.0, "same colour");
    near(same(&|a, b| a.shape == b.shape), 0.25, "same shape");
    near(
        same(&|a, b| a.colour == Colour::Red && b.shape == Shape::Cross),
        1.0 / 28.0,
        "red then cross",
    );
}

#[test]
fn word_tokenizer_round_trips_captions() {
    let tok = WordTokenizer::new(&vocabulary());
    assert_eq!(tok.vocab_size(), 5 + 19);
    assert_eq!(tok.decode(&[0, 1, 2, 3, 4]), "[PAD] [UNK] [CLS] [SEP] [MASK]");
    assert_eq!(tok.encode("a small red"), vec![5, 6, 8]);
    for e in examples(100, 4) {
        let ids = tok.encode(&e.caption);
        assert!(ids.iter().all(|&i| i >= 5), "{}", e.caption);
        assert_eq!(tok.decode(&ids), e.caption);
    }
    let ids = tok.encode("a huge [MASK] circle");
    assert_eq!(ids, vec![5, UNK, MASK, tok.encode("circle")[0]]);
    assert_eq!(UNK, 1);
    assert!(WordTokenizer::try_new(&["a", "b", "a"]).is_err());
    assert!(WordTokenizer::try_new(&["left of"]).is_err());
}

#[test]
fn word_tokenizer_travels_in_metadata() {
    let tok = Tokenizer::Word(WordTokenizer::new(&vocabulary()));
    assert_eq!(tok.kind(), "word");
    assert_eq!(tok.special("[MASK]"), 4);
    let m = tok.to_metadata();
    assert_eq!(m["tokenizer.kind"], "word");
    assert!(m["tokenizer.words"].starts_with("a small large red "));
    let back = Tokenizer::from_metadata(&m).unwrap();
    assert_eq!(back, tok);
    assert_eq!(back.encode("a large cross"), tok.encode("a large cross"));
    let mut missing = m.clone();
    missing.remove("tokenizer.words");
    let e = Tokenizer::from_metadata(&missing).unwrap_err();
    assert!(e.contains("tokenizer.words"), "{e}");
}

#[test]
fn svgs_draw_every_pixel_and_check_the_weights() {
    let e = &examples(1, 5)[0];
    let svg = image_svg(&e.image, 4, "a <caption> & more");
    assert_eq!(svg.matches("<rect").count(), 32 * 32);
    assert!(svg.contains("a &lt;caption&gt; &amp; more"));
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let weights: Vec<f32> = (0..16).map(|k| k as f32).collect();
    let heat = heatmap_svg(&e.image, &weights, 8, 4, "patches").unwrap();
    assert_eq!(heat.matches("<rect").count(), 32 * 32 + 16);
    let err = heatmap_svg(&e.image, &weights[..15], 8, 4, "patches").unwrap_err();
    assert!(err.contains("15") && err.contains("16"), "{err}");
    assert!(heatmap_svg(&e.image, &weights, 5, 4, "patches").is_err());
}
