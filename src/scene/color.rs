//! CSS colour values (`color`, `backgroundColor`, shadow and stroke colours): every syntax
//! CSS Color 4 allows for sRGB — hex, `rgb()`/`rgba()`, `hsl()`/`hsla()` (comma and space
//! syntax, percentages, `/ alpha`), the 148 named colours and `transparent`.

use crate::compose::display::Color;

/// Parses one CSS colour. `None` when the value is not a colour the browser would accept
/// (the caller drops the key with a warning, as the browser ignores invalid CSS).
pub fn parse_color(input: &str) -> Option<Color> {
    let s = input.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    if s == "transparent" {
        return Some(Color::TRANSPARENT);
    }
    if let Some(hex) = s.strip_prefix('#') {
        return parse_hex(hex);
    }
    if let Some(open) = s.find('(') {
        let name = s[..open].trim();
        let inner = s[open + 1..].strip_suffix(')')?;
        return match name {
            "rgb" | "rgba" => parse_rgb_args(inner),
            "hsl" | "hsla" => parse_hsl_args(inner),
            _ => None,
        };
    }
    named_color(&s)
}

/// A named CSS colour (lower case), `None` if unknown.
pub fn named_color(name: &str) -> Option<Color> {
    NAMED_COLORS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| {
            let [r, g, b] = NAMED_COLORS[i].1;
            Color::rgba8(r, g, b, 1.0)
        })
}

fn parse_hex(hex: &str) -> Option<Color> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
    let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    let (r, g, b, a) = match hex.len() {
        3 | 4 => {
            let expand = |v: u8| v * 17;
            let a = if hex.len() == 4 {
                expand(digit(3)?)
            } else {
                255
            };
            (expand(digit(0)?), expand(digit(1)?), expand(digit(2)?), a)
        }
        6 | 8 => {
            let a = if hex.len() == 8 { pair(6)? } else { 255 };
            (pair(0)?, pair(2)?, pair(4)?, a)
        }
        _ => return None,
    };
    Some(Color::rgba8(r, g, b, f32::from(a) / 255.0))
}

/// Splits function arguments: comma syntax `a, b, c[, d]` or space syntax `a b c[ / d]`.
/// Returns the three components and the optional alpha.
fn split_args(inner: &str) -> Option<([&str; 3], Option<&str>)> {
    let (parts, alpha): (Vec<&str>, Option<&str>) = if inner.contains(',') {
        if inner.contains('/') {
            return None;
        }
        let mut parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let alpha = match parts.len() {
            3 => None,
            4 => parts.pop(),
            _ => return None,
        };
        (parts, alpha)
    } else {
        let (main, alpha) = match inner.split_once('/') {
            Some((m, a)) => (m, Some(a.trim())),
            None => (inner, None),
        };
        (main.split_whitespace().collect(), alpha)
    };
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) || alpha == Some("") {
        return None;
    }
    Some(([parts[0], parts[1], parts[2]], alpha))
}

fn number(s: &str) -> Option<f64> {
    if s == "none" {
        return Some(0.0);
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A number or a percentage; percentages are scaled so that 100% = `full`.
fn number_or_percent(s: &str, full: f64) -> Option<f64> {
    match s.strip_suffix('%') {
        Some(p) => number(p).map(|v| v / 100.0 * full),
        None => number(s),
    }
}

fn alpha_value(alpha: Option<&str>) -> Option<f32> {
    match alpha {
        None => Some(1.0),
        Some(a) => number_or_percent(a, 1.0).map(|v| v.clamp(0.0, 1.0) as f32),
    }
}

fn parse_rgb_args(inner: &str) -> Option<Color> {
    let (parts, alpha) = split_args(inner)?;
    let mut c = [0f32; 3];
    for (slot, p) in c.iter_mut().zip(parts) {
        *slot = (number_or_percent(p, 255.0)?.clamp(0.0, 255.0) / 255.0) as f32;
    }
    Some(Color {
        r: c[0],
        g: c[1],
        b: c[2],
        a: alpha_value(alpha)?,
    })
}

fn hue_degrees(s: &str) -> Option<f64> {
    let units: [(&str, f64); 4] = [
        ("deg", 1.0),
        ("grad", 0.9),
        ("rad", 180.0 / std::f64::consts::PI),
        ("turn", 360.0),
    ];
    for (unit, k) in units {
        if let Some(v) = s.strip_suffix(unit) {
            return number(v).map(|v| v * k);
        }
    }
    number(s)
}

fn parse_hsl_args(inner: &str) -> Option<Color> {
    let (parts, alpha) = split_args(inner)?;
    let h = hue_degrees(parts[0])?.rem_euclid(360.0) / 360.0;
    let s = number_or_percent(parts[1], 100.0)?.clamp(0.0, 100.0) / 100.0;
    let l = number_or_percent(parts[2], 100.0)?.clamp(0.0, 100.0) / 100.0;
    let (r, g, b) = hsl_to_rgb(h, s, l);
    Some(Color {
        r: r as f32,
        g: g as f32,
        b: b as f32,
        a: alpha_value(alpha)?,
    })
}

/// CSS Color 4 `hslToRgb`, all inputs and outputs 0..1.
fn hsl_to_rgb(h: f64, s: f64, l: f64) -> (f64, f64, f64) {
    let f = |n: f64| {
        let k = (n + h * 12.0) % 12.0;
        let a = s * l.min(1.0 - l);
        l - a * (k - 3.0).min(9.0 - k).clamp(-1.0, 1.0)
    };
    (f(0.0), f(8.0), f(4.0))
}

/// The CSS named colours, sorted by name (binary-searched).
const NAMED_COLORS: [(&str, [u8; 3]); 148] = [
    ("aliceblue", [0xf0, 0xf8, 0xff]),
    ("antiquewhite", [0xfa, 0xeb, 0xd7]),
    ("aqua", [0x00, 0xff, 0xff]),
    ("aquamarine", [0x7f, 0xff, 0xd4]),
    ("azure", [0xf0, 0xff, 0xff]),
    ("beige", [0xf5, 0xf5, 0xdc]),
    ("bisque", [0xff, 0xe4, 0xc4]),
    ("black", [0x00, 0x00, 0x00]),
    ("blanchedalmond", [0xff, 0xeb, 0xcd]),
    ("blue", [0x00, 0x00, 0xff]),
    ("blueviolet", [0x8a, 0x2b, 0xe2]),
    ("brown", [0xa5, 0x2a, 0x2a]),
    ("burlywood", [0xde, 0xb8, 0x87]),
    ("cadetblue", [0x5f, 0x9e, 0xa0]),
    ("chartreuse", [0x7f, 0xff, 0x00]),
    ("chocolate", [0xd2, 0x69, 0x1e]),
    ("coral", [0xff, 0x7f, 0x50]),
    ("cornflowerblue", [0x64, 0x95, 0xed]),
    ("cornsilk", [0xff, 0xf8, 0xdc]),
    ("crimson", [0xdc, 0x14, 0x3c]),
    ("cyan", [0x00, 0xff, 0xff]),
    ("darkblue", [0x00, 0x00, 0x8b]),
    ("darkcyan", [0x00, 0x8b, 0x8b]),
    ("darkgoldenrod", [0xb8, 0x86, 0x0b]),
    ("darkgray", [0xa9, 0xa9, 0xa9]),
    ("darkgreen", [0x00, 0x64, 0x00]),
    ("darkgrey", [0xa9, 0xa9, 0xa9]),
    ("darkkhaki", [0xbd, 0xb7, 0x6b]),
    ("darkmagenta", [0x8b, 0x00, 0x8b]),
    ("darkolivegreen", [0x55, 0x6b, 0x2f]),
    ("darkorange", [0xff, 0x8c, 0x00]),
    ("darkorchid", [0x99, 0x32, 0xcc]),
    ("darkred", [0x8b, 0x00, 0x00]),
    ("darksalmon", [0xe9, 0x96, 0x7a]),
    ("darkseagreen", [0x8f, 0xbc, 0x8f]),
    ("darkslateblue", [0x48, 0x3d, 0x8b]),
    ("darkslategray", [0x2f, 0x4f, 0x4f]),
    ("darkslategrey", [0x2f, 0x4f, 0x4f]),
    ("darkturquoise", [0x00, 0xce, 0xd1]),
    ("darkviolet", [0x94, 0x00, 0xd3]),
    ("deeppink", [0xff, 0x14, 0x93]),
    ("deepskyblue", [0x00, 0xbf, 0xff]),
    ("dimgray", [0x69, 0x69, 0x69]),
    ("dimgrey", [0x69, 0x69, 0x69]),
    ("dodgerblue", [0x1e, 0x90, 0xff]),
    ("firebrick", [0xb2, 0x22, 0x22]),
    ("floralwhite", [0xff, 0xfa, 0xf0]),
    ("forestgreen", [0x22, 0x8b, 0x22]),
    ("fuchsia", [0xff, 0x00, 0xff]),
    ("gainsboro", [0xdc, 0xdc, 0xdc]),
    ("ghostwhite", [0xf8, 0xf8, 0xff]),
    ("gold", [0xff, 0xd7, 0x00]),
    ("goldenrod", [0xda, 0xa5, 0x20]),
    ("gray", [0x80, 0x80, 0x80]),
    ("green", [0x00, 0x80, 0x00]),
    ("greenyellow", [0xad, 0xff, 0x2f]),
    ("grey", [0x80, 0x80, 0x80]),
    ("honeydew", [0xf0, 0xff, 0xf0]),
    ("hotpink", [0xff, 0x69, 0xb4]),
    ("indianred", [0xcd, 0x5c, 0x5c]),
    ("indigo", [0x4b, 0x00, 0x82]),
    ("ivory", [0xff, 0xff, 0xf0]),
    ("khaki", [0xf0, 0xe6, 0x8c]),
    ("lavender", [0xe6, 0xe6, 0xfa]),
    ("lavenderblush", [0xff, 0xf0, 0xf5]),
    ("lawngreen", [0x7c, 0xfc, 0x00]),
    ("lemonchiffon", [0xff, 0xfa, 0xcd]),
    ("lightblue", [0xad, 0xd8, 0xe6]),
    ("lightcoral", [0xf0, 0x80, 0x80]),
    ("lightcyan", [0xe0, 0xff, 0xff]),
    ("lightgoldenrodyellow", [0xfa, 0xfa, 0xd2]),
    ("lightgray", [0xd3, 0xd3, 0xd3]),
    ("lightgreen", [0x90, 0xee, 0x90]),
    ("lightgrey", [0xd3, 0xd3, 0xd3]),
    ("lightpink", [0xff, 0xb6, 0xc1]),
    ("lightsalmon", [0xff, 0xa0, 0x7a]),
    ("lightseagreen", [0x20, 0xb2, 0xaa]),
    ("lightskyblue", [0x87, 0xce, 0xfa]),
    ("lightslategray", [0x77, 0x88, 0x99]),
    ("lightslategrey", [0x77, 0x88, 0x99]),
    ("lightsteelblue", [0xb0, 0xc4, 0xde]),
    ("lightyellow", [0xff, 0xff, 0xe0]),
    ("lime", [0x00, 0xff, 0x00]),
    ("limegreen", [0x32, 0xcd, 0x32]),
    ("linen", [0xfa, 0xf0, 0xe6]),
    ("magenta", [0xff, 0x00, 0xff]),
    ("maroon", [0x80, 0x00, 0x00]),
    ("mediumaquamarine", [0x66, 0xcd, 0xaa]),
    ("mediumblue", [0x00, 0x00, 0xcd]),
    ("mediumorchid", [0xba, 0x55, 0xd3]),
    ("mediumpurple", [0x93, 0x70, 0xdb]),
    ("mediumseagreen", [0x3c, 0xb3, 0x71]),
    ("mediumslateblue", [0x7b, 0x68, 0xee]),
    ("mediumspringgreen", [0x00, 0xfa, 0x9a]),
    ("mediumturquoise", [0x48, 0xd1, 0xcc]),
    ("mediumvioletred", [0xc7, 0x15, 0x85]),
    ("midnightblue", [0x19, 0x19, 0x70]),
    ("mintcream", [0xf5, 0xff, 0xfa]),
    ("mistyrose", [0xff, 0xe4, 0xe1]),
    ("moccasin", [0xff, 0xe4, 0xb5]),
    ("navajowhite", [0xff, 0xde, 0xad]),
    ("navy", [0x00, 0x00, 0x80]),
    ("oldlace", [0xfd, 0xf5, 0xe6]),
    ("olive", [0x80, 0x80, 0x00]),
    ("olivedrab", [0x6b, 0x8e, 0x23]),
    ("orange", [0xff, 0xa5, 0x00]),
    ("orangered", [0xff, 0x45, 0x00]),
    ("orchid", [0xda, 0x70, 0xd6]),
    ("palegoldenrod", [0xee, 0xe8, 0xaa]),
    ("palegreen", [0x98, 0xfb, 0x98]),
    ("paleturquoise", [0xaf, 0xee, 0xee]),
    ("palevioletred", [0xdb, 0x70, 0x93]),
    ("papayawhip", [0xff, 0xef, 0xd5]),
    ("peachpuff", [0xff, 0xda, 0xb9]),
    ("peru", [0xcd, 0x85, 0x3f]),
    ("pink", [0xff, 0xc0, 0xcb]),
    ("plum", [0xdd, 0xa0, 0xdd]),
    ("powderblue", [0xb0, 0xe0, 0xe6]),
    ("purple", [0x80, 0x00, 0x80]),
    ("rebeccapurple", [0x66, 0x33, 0x99]),
    ("red", [0xff, 0x00, 0x00]),
    ("rosybrown", [0xbc, 0x8f, 0x8f]),
    ("royalblue", [0x41, 0x69, 0xe1]),
    ("saddlebrown", [0x8b, 0x45, 0x13]),
    ("salmon", [0xfa, 0x80, 0x72]),
    ("sandybrown", [0xf4, 0xa4, 0x60]),
    ("seagreen", [0x2e, 0x8b, 0x57]),
    ("seashell", [0xff, 0xf5, 0xee]),
    ("sienna", [0xa0, 0x52, 0x2d]),
    ("silver", [0xc0, 0xc0, 0xc0]),
    ("skyblue", [0x87, 0xce, 0xeb]),
    ("slateblue", [0x6a, 0x5a, 0xcd]),
    ("slategray", [0x70, 0x80, 0x90]),
    ("slategrey", [0x70, 0x80, 0x90]),
    ("snow", [0xff, 0xfa, 0xfa]),
    ("springgreen", [0x00, 0xff, 0x7f]),
    ("steelblue", [0x46, 0x82, 0xb4]),
    ("tan", [0xd2, 0xb4, 0x8c]),
    ("teal", [0x00, 0x80, 0x80]),
    ("thistle", [0xd8, 0xbf, 0xd8]),
    ("tomato", [0xff, 0x63, 0x47]),
    ("turquoise", [0x40, 0xe0, 0xd0]),
    ("violet", [0xee, 0x82, 0xee]),
    ("wheat", [0xf5, 0xde, 0xb3]),
    ("white", [0xff, 0xff, 0xff]),
    ("whitesmoke", [0xf5, 0xf5, 0xf5]),
    ("yellow", [0xff, 0xff, 0x00]),
    ("yellowgreen", [0x9a, 0xcd, 0x32]),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rgba(r: u8, g: u8, b: u8, a: f32) -> Color {
        Color::rgba8(r, g, b, a)
    }

    fn close(a: Color, b: Color) -> bool {
        (a.r - b.r).abs() < 3e-3
            && (a.g - b.g).abs() < 3e-3
            && (a.b - b.b).abs() < 3e-3
            && (a.a - b.a).abs() < 3e-3
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse_color("#fff"), Some(Color::WHITE));
        assert_eq!(parse_color("#FFD400"), Some(rgba(255, 212, 0, 1.0)));
        assert_eq!(parse_color("#0008"), Some(rgba(0, 0, 0, 136.0 / 255.0)));
        assert_eq!(
            parse_color("#11223380"),
            Some(rgba(0x11, 0x22, 0x33, 128.0 / 255.0))
        );
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(parse_color("#ggg"), None);
        assert_eq!(parse_color("#"), None);
    }

    #[test]
    fn rgb_comma_and_space_syntax() {
        assert_eq!(parse_color("rgba(0,0,0,0.8)"), Some(rgba(0, 0, 0, 0.8)));
        assert_eq!(
            parse_color(" RGB( 255 , 0 , 0 ) "),
            Some(rgba(255, 0, 0, 1.0))
        );
        assert_eq!(
            parse_color("rgb(255 128 0 / 50%)"),
            Some(rgba(255, 128, 0, 0.5))
        );
        assert_eq!(parse_color("rgb(100%, 0%, 0%)"), Some(rgba(255, 0, 0, 1.0)));
        assert_eq!(
            parse_color("rgba(255 255 255 / 0.3)"),
            Some(rgba(255, 255, 255, 0.3))
        );
        assert_eq!(parse_color("rgb(300, -5, 0)"), Some(rgba(255, 0, 0, 1.0)));
        assert_eq!(parse_color("rgb(1, 2)"), None);
        assert_eq!(parse_color("rgb(1, 2, 3 / 1)"), None);
        assert_eq!(parse_color("rgb(a, b, c)"), None);
        assert_eq!(parse_color("rgb(1 2 3"), None);
    }

    #[test]
    fn hsl_forms() {
        let red = rgba(255, 0, 0, 1.0);
        assert!(close(parse_color("hsl(0, 100%, 50%)").unwrap(), red));
        assert!(close(
            parse_color("hsl(120deg 100% 25%)").unwrap(),
            rgba(0, 128, 0, 1.0)
        ));
        assert!(close(
            parse_color("hsla(240, 100%, 50%, 0.5)").unwrap(),
            rgba(0, 0, 255, 0.5)
        ));
        assert!(close(
            parse_color("hsl(0.5turn 100% 50% / 25%)").unwrap(),
            rgba(0, 255, 255, 0.25)
        ));
        assert!(close(
            parse_color("hsl(-120, 100%, 50%)").unwrap(),
            rgba(0, 0, 255, 1.0)
        ));
        assert!(close(
            parse_color("hsl(0, 0%, 100%)").unwrap(),
            Color::WHITE
        ));
    }

    #[test]
    fn named_and_transparent() {
        assert_eq!(NAMED_COLORS.len(), 148);
        assert!(
            NAMED_COLORS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted for binary search"
        );
        assert_eq!(parse_color("transparent"), Some(Color::TRANSPARENT));
        assert_eq!(parse_color("Black"), Some(Color::BLACK));
        assert_eq!(
            parse_color("rebeccapurple"),
            Some(rgba(0x66, 0x33, 0x99, 1.0))
        );
        assert_eq!(parse_color("gray"), parse_color("grey"));
        assert_eq!(parse_color("green"), Some(rgba(0, 128, 0, 1.0)));
        assert_eq!(
            parse_color("yellowgreen"),
            Some(rgba(0x9a, 0xcd, 0x32, 1.0))
        );
        assert_eq!(parse_color("aliceblue"), Some(rgba(0xf0, 0xf8, 0xff, 1.0)));
        assert_eq!(parse_color("notacolour"), None);
        assert_eq!(parse_color(""), None);
    }
}
