//! The shapes world's pictures: a [`Scene`] rendered to pixels.
//!
//! **Images.** 32 by 32 RGB, f32 in 0..=1, a dark background (0.1) with uniform noise of
//! plus or minus 0.05 on every channel of every pixel, shapes filled in their colour. Pixel
//! (y, x) covers the square from (x, y) to (x + 1, y + 1) and is painted when its centre
//! (x + 0.5, y + 0.5) lies inside a shape. An object of radius r (3.5 px small, 6.5 px large)
//! centred at (cx, cy) stays inside the box of half-width r around its centre: a circle of
//! radius r, a square of half-side 0.85 r, a triangle pointing up (apex at cy - r, base of width
//! 2r at cy + r), a plus sign of two bars of half-width r/3.

use super::grammar::{uniform, Colour, Object, Scene, Shape, IMAGE_SIZE};
use rand::Rng;

/// The grey level of the background.
pub const BACKGROUND: f32 = 0.1;
/// The noise amplitude: every channel of every pixel moves by a uniform draw in ±NOISE.
pub const NOISE: f32 = 0.05;

/// A square RGB image, channel-last and row-major: channel c of pixel (y, x) is
/// `rgb[(y * size + x) * 3 + c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width and height in pixels.
    pub size: usize,
    /// size * size * 3 values in 0..=1.
    pub rgb: Vec<f32>,
}

impl Image {
    /// An all-black image.
    pub fn blank(size: usize) -> Image {
        let rgb = vec![0.0; size * size * 3];
        Image { size, rgb }
    }

    /// The red, green and blue of pixel (y, x).
    pub fn pixel(&self, y: usize, x: usize) -> [f32; 3] {
        let i = (y * self.size + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

impl Colour {
    /// The fill: any two colours differ by at least 0.4 in RGB distance, and each is far from
    /// the background grey.
    pub fn rgb(self) -> [f32; 3] {
        match self {
            Colour::Red => [0.90, 0.10, 0.10],
            Colour::Green => [0.10, 0.80, 0.20],
            Colour::Blue => [0.15, 0.30, 1.00],
            Colour::Yellow => [0.95, 0.95, 0.10],
            Colour::Purple => [0.60, 0.20, 0.90],
            Colour::Orange => [1.00, 0.50, 0.00],
            Colour::White => [0.95, 0.95, 0.95],
        }
    }
}

impl Object {
    /// Whether the point (x, y), in pixels, is inside the shape (see the module docs).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy, r) = (x - self.cx, y - self.cy, self.size.radius());
        if dx.abs() > r || dy.abs() > r {
            return false;
        }
        match self.shape {
            Shape::Circle => dx * dx + dy * dy <= r * r,
            Shape::Square => dx.abs() <= 0.85 * r && dy.abs() <= 0.85 * r,
            Shape::Triangle => dx.abs() <= (dy + r) / 2.0,
            Shape::Cross => dx.abs() <= r / 3.0 || dy.abs() <= r / 3.0,
        }
    }
}

impl Scene {
    /// The picture: background and noise (drawn from `rng`), the shapes, clamped to 0..=1.
    pub fn render(&self, rng: &mut impl Rng) -> Image {
        let mut image = Image::blank(IMAGE_SIZE);
        let objects = self.objects();
        for y in 0..IMAGE_SIZE {
            for x in 0..IMAGE_SIZE {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let fill = objects.iter().find(|o| o.contains(px, py));
                let base = fill.map_or([BACKGROUND; 3], |o| o.colour.rgb());
                for (c, value) in base.into_iter().enumerate() {
                    let noisy = value + uniform(-NOISE, NOISE, rng);
                    image.rgb[(y * IMAGE_SIZE + x) * 3 + c] = noisy.clamp(0.0, 1.0);
                }
            }
        }
        image
    }
}
