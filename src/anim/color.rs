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

/// `#rgb` / `#rrggbb` only (the CWI plugins' notion of a hex colour), opaque.
pub fn parse_hex_rgb(s: &str) -> Option<Color> {
    let hex = s.trim().strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
    let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    match hex.len() {
        3 => Some(Color::rgba8(
            digit(0)? * 17,
            digit(1)? * 17,
            digit(2)? * 17,
            1.0,
        )),
        6 => Some(Color::rgba8(pair(0)?, pair(2)?, pair(4)?, 1.0)),
        _ => None,
    }
}

/// A CSS colour: hex (3, 4, 6, 8 digits), `rgb()`/`rgba()` (comma or space syntax,
/// numbers or percentages), `transparent`, or a CSS named colour. `None` when the
/// browser would reject the value.
pub fn parse_css_color(s: &str) -> Option<Color> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let nib = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok().map(|v| v * 17);
        let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return match hex.len() {
            3 => Some(Color::rgba8(nib(0)?, nib(1)?, nib(2)?, 1.0)),
            4 => Some(Color::rgba8(
                nib(0)?,
                nib(1)?,
                nib(2)?,
                f32::from(nib(3)?) / 255.0,
            )),
            6 => Some(Color::rgba8(pair(0)?, pair(2)?, pair(4)?, 1.0)),
            8 => Some(Color::rgba8(
                pair(0)?,
                pair(2)?,
                pair(4)?,
                f32::from(pair(6)?) / 255.0,
            )),
            _ => None,
        };
    }
    let lower = s.to_ascii_lowercase();
    if let Some(args) = lower
        .strip_prefix("rgba(")
        .or_else(|| lower.strip_prefix("rgb("))
    {
        return parse_rgb_args(args.strip_suffix(')')?);
    }
    if lower == "transparent" {
        return Some(Color::TRANSPARENT);
    }
    NAMED
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|&(_, v)| Color::rgba8((v >> 16) as u8, (v >> 8) as u8, v as u8, 1.0))
}

fn parse_rgb_args(args: &str) -> Option<Color> {
    let (rgb, alpha) = match args.split_once('/') {
        Some((rgb, a)) => (rgb, Some(a.trim())),
        None => (args, None),
    };
    let mut parts: Vec<&str> = if rgb.contains(',') {
        rgb.split(',').map(str::trim).collect()
    } else {
        rgb.split_whitespace().collect()
    };
    let alpha = match (alpha, parts.len()) {
        (Some(a), 3) => Some(a),
        (None, 4) => parts.pop(),
        (None, 3) => None,
        _ => return None,
    };
    let channel = |p: &str| -> Option<f64> {
        let v = match p.strip_suffix('%') {
            Some(pct) => pct.trim().parse::<f64>().ok()? * 2.55,
            None => p.parse::<f64>().ok()?,
        };
        v.is_finite().then(|| v.round().clamp(0.0, 255.0))
    };
    let a = match alpha {
        Some(a) => {
            let v = match a.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
                None => a.parse::<f64>().ok()?,
            };
            if !v.is_finite() {
                return None;
            }
            v.clamp(0.0, 1.0)
        }
        None => 1.0,
    };
    let (r, g, b) = (channel(parts[0])?, channel(parts[1])?, channel(parts[2])?);
    Some(Rgba8::new(r, g, b, a).to_color())
}

/// CSS Color Module level 4 named colours.
const NAMED: &[(&str, u32)] = &[
    ("aliceblue", 0xf0f8ff),
    ("antiquewhite", 0xfaebd7),
    ("aqua", 0x00ffff),
    ("aquamarine", 0x7fffd4),
    ("azure", 0xf0ffff),
    ("beige", 0xf5f5dc),
    ("bisque", 0xffe4c4),
    ("black", 0x000000),
    ("blanchedalmond", 0xffebcd),
    ("blue", 0x0000ff),
    ("blueviolet", 0x8a2be2),
    ("brown", 0xa52a2a),
    ("burlywood", 0xdeb887),
    ("cadetblue", 0x5f9ea0),
    ("chartreuse", 0x7fff00),
    ("chocolate", 0xd2691e),
    ("coral", 0xff7f50),
    ("cornflowerblue", 0x6495ed),
    ("cornsilk", 0xfff8dc),
    ("crimson", 0xdc143c),
    ("cyan", 0x00ffff),
    ("darkblue", 0x00008b),
    ("darkcyan", 0x008b8b),
    ("darkgoldenrod", 0xb8860b),
    ("darkgray", 0xa9a9a9),
    ("darkgreen", 0x006400),
    ("darkgrey", 0xa9a9a9),
    ("darkkhaki", 0xbdb76b),
    ("darkmagenta", 0x8b008b),
    ("darkolivegreen", 0x556b2f),
    ("darkorange", 0xff8c00),
    ("darkorchid", 0x9932cc),
    ("darkred", 0x8b0000),
    ("darksalmon", 0xe9967a),
    ("darkseagreen", 0x8fbc8f),
    ("darkslateblue", 0x483d8b),
    ("darkslategray", 0x2f4f4f),
    ("darkslategrey", 0x2f4f4f),
    ("darkturquoise", 0x00ced1),
    ("darkviolet", 0x9400d3),
    ("deeppink", 0xff1493),
    ("deepskyblue", 0x00bfff),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("dodgerblue", 0x1e90ff),
    ("firebrick", 0xb22222),
    ("floralwhite", 0xfffaf0),
    ("forestgreen", 0x228b22),
    ("fuchsia", 0xff00ff),
    ("gainsboro", 0xdcdcdc),
    ("ghostwhite", 0xf8f8ff),
    ("gold", 0xffd700),
    ("goldenrod", 0xdaa520),
    ("gray", 0x808080),
    ("green", 0x008000),
    ("greenyellow", 0xadff2f),
    ("grey", 0x808080),
    ("honeydew", 0xf0fff0),
    ("hotpink", 0xff69b4),
    ("indianred", 0xcd5c5c),
    ("indigo", 0x4b0082),
    ("ivory", 0xfffff0),
    ("khaki", 0xf0e68c),
    ("lavender", 0xe6e6fa),
    ("lavenderblush", 0xfff0f5),
    ("lawngreen", 0x7cfc00),
    ("lemonchiffon", 0xfffacd),
    ("lightblue", 0xadd8e6),
    ("lightcoral", 0xf08080),
    ("lightcyan", 0xe0ffff),
    ("lightgoldenrodyellow", 0xfafad2),
    ("lightgray", 0xd3d3d3),
    ("lightgreen", 0x90ee90),
    ("lightgrey", 0xd3d3d3),
    ("lightpink", 0xffb6c1),
    ("lightsalmon", 0xffa07a),
    ("lightseagreen", 0x20b2aa),
    ("lightskyblue", 0x87cefa),
    ("lightslategray", 0x778899),
    ("lightslategrey", 0x778899),
    ("lightsteelblue", 0xb0c4de),
    ("lightyellow", 0xffffe0),
    ("lime", 0x00ff00),
    ("limegreen", 0x32cd32),
    ("linen", 0xfaf0e6),
    ("magenta", 0xff00ff),
    ("maroon", 0x800000),
    ("mediumaquamarine", 0x66cdaa),
    ("mediumblue", 0x0000cd),
    ("mediumorchid", 0xba55d3),
    ("mediumpurple", 0x9370db),
    ("mediumseagreen", 0x3cb371),
    ("mediumslateblue", 0x7b68ee),
    ("mediumspringgreen", 0x00fa9a),
    ("mediumturquoise", 0x48d1cc),
    ("mediumvioletred", 0xc71585),
    ("midnightblue", 0x191970),
    ("mintcream", 0xf5fffa),
    ("mistyrose", 0xffe4e1),
    ("moccasin", 0xffe4b5),
    ("navajowhite", 0xffdead),
    ("navy", 0x000080),
    ("oldlace", 0xfdf5e6),
    ("olive", 0x808000),
    ("olivedrab", 0x6b8e23),
    ("orange", 0xffa500),
    ("orangered", 0xff4500),
    ("orchid", 0xda70d6),
    ("palegoldenrod", 0xeee8aa),
    ("palegreen", 0x98fb98),
    ("paleturquoise", 0xafeeee),
    ("palevioletred", 0xdb7093),
    ("papayawhip", 0xffefd5),
    ("peachpuff", 0xffdab9),
    ("peru", 0xcd853f),
    ("pink", 0xffc0cb),
    ("plum", 0xdda0dd),
    ("powderblue", 0xb0e0e6),
    ("purple", 0x800080),
    ("rebeccapurple", 0x663399),
    ("red", 0xff0000),
    ("rosybrown", 0xbc8f8f),
    ("royalblue", 0x4169e1),
    ("saddlebrown", 0x8b4513),
    ("salmon", 0xfa8072),
    ("sandybrown", 0xf4a460),
    ("seagreen", 0x2e8b57),
    ("seashell", 0xfff5ee),
    ("sienna", 0xa0522d),
    ("silver", 0xc0c0c0),
    ("skyblue", 0x87ceeb),
    ("slateblue", 0x6a5acd),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("snow", 0xfffafa),
    ("springgreen", 0x00ff7f),
    ("steelblue", 0x4682b4),
    ("tan", 0xd2b48c),
    ("teal", 0x008080),
    ("thistle", 0xd8bfd8),
    ("tomato", 0xff6347),
    ("turquoise", 0x40e0d0),
    ("violet", 0xee82ee),
    ("wheat", 0xf5deb3),
    ("white", 0xffffff),
    ("whitesmoke", 0xf5f5f5),
    ("yellow", 0xffff00),
    ("yellowgreen", 0x9acd32),
];

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
