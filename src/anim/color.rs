//! CSS colour strings as plugins write them (`#ffd400`, `rgba(255,255,255,0.9)`, `orange`),
//! and the sRGB per-channel mixes that GSAP and the CWI plugins use.

use crate::compose::display::Color;

/// 8-bit sRGB channels plus a linear alpha (0..1): the representation GSAP interpolates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgba8 {
    pub r: f64,
    pub g: f64,
    pub b: f64,
    pub a: f64,
}

impl Rgba8 {
    pub const fn new(r: f64, g: f64, b: f64, a: f64) -> Self {
        Rgba8 { r, g, b, a }
    }

    pub fn from_color(c: Color) -> Self {
        Rgba8 {
            r: f64::from(c.r) * 255.0,
            g: f64::from(c.g) * 255.0,
            b: f64::from(c.b) * 255.0,
            a: f64::from(c.a),
        }
    }

    /// Rounds r, g, b to integers and clamps everything into range.
    pub fn to_color(self) -> Color {
        let ch = |v: f64| v.round().clamp(0.0, 255.0) as f32 / 255.0;
        Color {
            r: ch(self.r),
            g: ch(self.g),
            b: ch(self.b),
            a: self.a.clamp(0.0, 1.0) as f32,
        }
    }
}

/// GSAP colour interpolation: r, g, b lerped and rounded per channel, alpha linear,
/// overshoot (back/elastic eases) clamped.
pub fn lerp_color(from: Color, to: Color, w: f64) -> Color {
    let a = Rgba8::from_color(from);
    let b = Rgba8::from_color(to);
    let l = |x: f64, y: f64| x + (y - x) * w;
    Rgba8::new(l(a.r, b.r), l(a.g, b.g), l(a.b, b.b), l(a.a, b.a)).to_color()
}

/// `#rgb` / `#rrggbb` only (the CWI plugins' notion of a hex colour), opaque; the digits are
/// read by the one CSS colour parser.
pub fn parse_hex_rgb(s: &str) -> Option<Color> {
    let hex = s.trim().strip_prefix('#')?;
    if !matches!(hex.len(), 3 | 6) {
        return None;
    }
    parse_css_color(s.trim())
}

/// Plugins parse colours exactly as scenario styles are parsed.
pub use crate::scene::color::parse_color as parse_css_color;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_plugins_write() {
        assert_eq!(
            parse_css_color("#ffd400"),
            Some(Color::rgba8(255, 212, 0, 1.0))
        );
        assert_eq!(parse_css_color("#FFF"), Some(Color::WHITE));
        assert_eq!(
            parse_css_color("rgba(255,255,255,0.9)"),
            Some(Color::rgba8(255, 255, 255, 0.9))
        );
        assert_eq!(
            parse_css_color("rgb(10 20 30 / 50%)"),
            Some(Color::rgba8(10, 20, 30, 0.5))
        );
        assert_eq!(
            parse_css_color("Orange"),
            Some(Color::rgba8(255, 165, 0, 1.0))
        );
        assert_eq!(parse_css_color("transparent"), Some(Color::TRANSPARENT));
        assert_eq!(
            parse_css_color("#ff00"),
            Some(Color::rgba8(255, 255, 0, 0.0))
        );
        assert_eq!(parse_css_color("notacolour"), None);
        assert_eq!(parse_css_color("#12345"), None);
        assert_eq!(parse_css_color("rgb(1,2)"), None);
        assert_eq!(parse_css_color("#é12"), None);
    }

    #[test]
    fn hex_rgb_rejects_other_forms() {
        assert_eq!(parse_hex_rgb("#00ff00"), Some(Color::rgba8(0, 255, 0, 1.0)));
        assert_eq!(parse_hex_rgb("#0f0"), Some(Color::rgba8(0, 255, 0, 1.0)));
        assert_eq!(parse_hex_rgb("red"), None);
        assert_eq!(parse_hex_rgb("#ff000080"), None);
    }

    #[test]
    fn lerp_rounds_channels_and_clamps() {
        let grey = Color::rgba8(0x99, 0x99, 0x99, 1.0);
        let mid = lerp_color(grey, Color::WHITE, 0.5);
        // 153 + 51 = 204 exactly; 0.3 → 153 + 30.6 = 183.6 → 184.
        assert_eq!(mid, Color::rgba8(204, 204, 204, 1.0));
        assert_eq!(
            lerp_color(grey, Color::WHITE, 0.3),
            Color::rgba8(184, 184, 184, 1.0)
        );
        assert_eq!(lerp_color(grey, Color::WHITE, 1.4), Color::WHITE);
        let a = lerp_color(Color::TRANSPARENT, Color::WHITE, 0.25);
        assert!((a.a - 0.25).abs() < 1e-6);
    }
}
