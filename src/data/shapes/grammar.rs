//! The shapes world's scenes and their captions: the words, the grammar, and where objects
//! may sit ([`Scene::random`]). The pixels are `render.rs`'s.
//!
//! **Grammar.** One object or, with probability 1/2, two objects and a relation, read from the
//! first object to the second:
//!
//! ```text
//! a {size} {colour} {shape}
//! a {size} {colour} {shape} {relation} a {size} {colour} {shape}
//! ```
//!
//! for example "a large red circle left of a small blue square".
//!
//! **Placement.** Objects sit on a grid of 8 x 8 cells, the patches of the multimodal
//! examples: a small object's box lies inside one cell, a large one's inside a block of 2 x 2
//! cells, so a patch sees a whole small object or a quarter of a large one, never a slice of
//! two. The cell (or block) is uniform among those the rule allows, and the centre uniform
//! among those that keep the box inside it (a jitter of up to 1 px for small objects, 3 px for
//! large). A lone object goes anywhere on the grid. For "A left of B", A's block lies in the
//! left half and B's in the right half (so the two never overlap and the relation is never in
//! doubt); "right of" swaps the halves, and "above" and "below" use the top and bottom halves
//! (y grows downwards).
//!
//! Why the grid: with objects anywhere, a vision Transformer trained from scratch must learn
//! what a circle looks like at every offset within a patch, and in a few minutes it does not:
//! masked shape words were right 51% of the time after 2,000 updates and 65% after 6,000
//! (NOTES.md §11.7), against 88% after 2,000 on the grid. Colour, which needs no spatial
//! pattern, was right 100% of the time either way.

use rand::Rng;

/// The side of every image, in pixels.
pub const IMAGE_SIZE: usize = 32;
/// The grid objects sit on, in pixels: a small object inside one cell, a large one inside a
/// block of 2 x 2 cells (the 8 x 8 patches of the multimodal examples).
pub const CELL: usize = 8;

/// What an object looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A disc.
    Circle,
    /// An axis-aligned square.
    Square,
    /// A triangle pointing up.
    Triangle,
    /// A plus sign.
    Cross,
}

impl Shape {
    /// Every shape, in caption-vocabulary order.
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Cross];

    /// The caption word (the table is in declaration order, as is `ALL`).
    pub fn word(self) -> &'static str {
        ["circle", "square", "triangle", "cross"][self as usize]
    }
}

/// An object's fill colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// (0.90, 0.10, 0.10)
    Red,
    /// (0.10, 0.80, 0.20)
    Green,
    /// (0.15, 0.30, 1.00)
    Blue,
    /// (0.95, 0.95, 0.10)
    Yellow,
    /// (0.60, 0.20, 0.90)
    Purple,
    /// (1.00, 0.50, 0.00)
    Orange,
    /// (0.95, 0.95, 0.95)
    White,
}

impl Colour {
    /// Every colour, in caption-vocabulary order.
    pub const ALL: [Colour; 7] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
        Colour::White,
    ];

    /// The caption word (the table is in declaration order, as is `ALL`).
    pub fn word(self) -> &'static str {
        ["red", "green", "blue", "yellow", "purple", "orange", "white"][self as usize]
    }
}

/// How big an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Radius 3.5 px.
    Small,
    /// Radius 6.5 px.
    Large,
}

impl Size {
    /// Both sizes, in caption-vocabulary order.
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    /// The caption word (the table is in declaration order, as is `ALL`).
    pub fn word(self) -> &'static str {
        ["small", "large"][self as usize]
    }

    /// The side of the block of grid cells the object sits in: 1 (small) or 2 (large).
    pub fn cells(self) -> usize {
        [1, 2][self as usize]
    }

    /// Half the width of the object's box, in pixels (table in declaration order).
    pub fn radius(self) -> f32 {
        [3.5, 6.5][self as usize]
    }
}

/// Where the first object of a scene is, seen from the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The first is in the left half, the second in the right.
    LeftOf,
    /// The first is in the right half, the second in the left.
    RightOf,
    /// The first is in the top half, the second in the bottom.
    Above,
    /// The first is in the bottom half, the second in the top.
    Below,
}

impl Relation {
    /// Every relation, in caption-vocabulary order.
    pub const ALL: [Relation; 4] = [Relation::LeftOf, Relation::RightOf, Relation::Above, Relation::Below];

    /// The caption words (the table is in declaration order, as is `ALL`).
    pub fn word(self) -> &'static str {
        ["left of", "right of", "above", "below"][self as usize]
    }
}

/// What a word of a caption describes; see [`Scene::roles`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// "a"
    Article,
    /// "small" or "large"
    Size,
    /// One of the seven colours.
    Colour,
    /// One of the four shapes.
    Shape,
    /// "left", "right", "of", "above" or "below".
    Relation,
}

/// One shape in a scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Object {
    /// What it looks like.
    pub shape: Shape,
    /// Its fill.
    pub colour: Colour,
    /// Its size.
    pub size: Size,
    /// Centre, in pixels from the left edge.
    pub cx: f32,
    /// Centre, in pixels from the top edge.
    pub cy: f32,
}

impl Object {
    /// "a {size} {colour} {shape}".
    pub fn phrase(&self) -> String {
        format!("a {} {} {}", self.size.word(), self.colour.word(), self.shape.word())
    }

    /// Uniform shape, colour and size, centred uniformly so that its box lies in the span `xs`
    /// across and `ys` down.
    fn random((xs, ys): Region, rng: &mut impl Rng) -> Object {
        let (shape, colour, size) = (pick(&Shape::ALL, rng), pick(&Colour::ALL, rng), pick(&Size::ALL, rng));
        let r = size.radius();
        let block = (size.cells() * CELL) as f32;
        let (cx, cy) = (on_grid(xs, block, r, rng), on_grid(ys, block, r, rng));
        Object {
            shape,
            colour,
            size,
            cx,
            cy,
        }
    }
}

/// Where an object's box may go: the span across and the span down, in pixels.
type Region = ((f32, f32), (f32, f32));

/// One of `all`, uniformly.
fn pick<T: Copy>(all: &[T], rng: &mut impl Rng) -> T {
    all[rng.random_range(0..all.len())]
}

/// A centre, across or down, for a box of half-width `r` inside a block of side `block` that
/// starts on the grid (a multiple of [`CELL`]) within lo..hi: the start uniform among those
/// that fit, the centre uniform among those that keep the box inside the block.
fn on_grid((lo, hi): (f32, f32), block: f32, r: f32, rng: &mut impl Rng) -> f32 {
    let starts: Vec<f32> = (0..IMAGE_SIZE)
        .step_by(CELL)
        .map(|s| s as f32)
        .filter(|&s| s >= lo && s + block <= hi)
        .collect();
    let start = pick(&starts, rng);
    uniform(start + r, start + block - r, rng)
}

/// A uniform draw from lo..hi.
pub(super) fn uniform(lo: f32, hi: f32, rng: &mut impl Rng) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// One picture's contents: an object, and maybe a second one with its relation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scene {
    /// The object the caption names first.
    pub first: Object,
    /// How the first object lies relative to this one, and the object.
    pub second: Option<(Relation, Object)>,
}

impl Scene {
    /// A scene drawn as the module docs describe: one or two objects with probability 1/2
    /// each; shape, colour, size and relation uniform and independent; centres uniform within
    /// the placement rule.
    pub fn random(rng: &mut impl Rng) -> Scene {
        let s = IMAGE_SIZE as f32;
        let whole = (0.0, s);
        if !rng.random_bool(0.5) {
            let first = Object::random((whole, whole), rng);
            return Scene { first, second: None };
        }
        let (low, high) = ((0.0, s / 2.0), (s / 2.0, s));
        let relation = pick(&Relation::ALL, rng);
        let (region_first, region_second) = match relation {
            Relation::LeftOf => ((low, whole), (high, whole)),
            Relation::RightOf => ((high, whole), (low, whole)),
            Relation::Above => ((whole, low), (whole, high)),
            Relation::Below => ((whole, high), (whole, low)),
        };
        let first = Object::random(region_first, rng);
        let second = Some((relation, Object::random(region_second, rng)));
        Scene { first, second }
    }

    /// The scene's objects, first then second.
    pub fn objects(&self) -> Vec<Object> {
        let mut objects = vec![self.first];
        objects.extend(self.second.map(|(_, o)| o));
        objects
    }

    /// The caption, all lowercase, one space between words (see the grammar above).
    pub fn caption(&self) -> String {
        match &self.second {
            None => self.first.phrase(),
            Some((relation, second)) => format!("{} {} {}", self.first.phrase(), relation.word(), second.phrase()),
        }
    }

    /// What each word of [`Scene::caption`] describes, aligned with `caption().split(' ')`.
    /// "left of" and "right of" are two words, both [`Role::Relation`].
    pub fn roles(&self) -> Vec<Role> {
        let phrase = [Role::Article, Role::Size, Role::Colour, Role::Shape];
        let mut roles = phrase.to_vec();
        if let Some((relation, _)) = &self.second {
            let words = relation.word().split(' ').count();
            roles.extend(std::iter::repeat_n(Role::Relation, words));
            roles.extend(phrase);
        }
        roles
    }
}

/// Every word a caption can contain, each once, in a fixed order: "a", the sizes, the colours,
/// the shapes, then the relation words ("left", "of", "right", "above", "below").
pub fn vocabulary() -> Vec<&'static str> {
    let mut phrases = vec!["a"];
    phrases.extend(Size::ALL.map(Size::word));
    phrases.extend(Colour::ALL.map(Colour::word));
    phrases.extend(Shape::ALL.map(Shape::word));
    phrases.extend(Relation::ALL.map(Relation::word));
    let mut words: Vec<&'static str> = Vec::new();
    for word in phrases.into_iter().flat_map(|p| p.split(' ')) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}
