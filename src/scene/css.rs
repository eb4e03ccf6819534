//! Small CSS value parsers: lengths, `text-shadow`, the `padding` shorthand,
//! `transform-origin`. Each returns `None` for a value the browser would reject.

use super::color::parse_color;
use super::model::{CssLength, OriginComponent, Shadow};

fn finite(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A CSS length: `24px`, `1.5em`, `2.4rem`, `50%`; a bare number counts as px.
pub fn parse_length(input: &str) -> Option<CssLength> {
    let s = input.trim().to_ascii_lowercase();
    if let Some(v) = s.strip_suffix("rem") {
        return finite(v).map(CssLength::Rem);
    }
    if let Some(v) = s.strip_suffix("em") {
        return finite(v).map(CssLength::Em);
    }
    if let Some(v) = s.strip_suffix("px") {
        return finite(v).map(CssLength::Px);
    }
    if let Some(v) = s.strip_suffix('%') {
        return finite(v).map(CssLength::Percent);
    }
    finite(&s).map(CssLength::Px)
}

/// A strict CSS length for shadow offsets: a unit is required except for `0`.
fn parse_shadow_length(token: &str) -> Option<CssLength> {
    if token.parse::<f64>().ok() == Some(0.0) {
        return Some(CssLength::Px(0.0));
    }
    if finite(token).is_some() {
        return None;
    }
    parse_length(token).filter(|l| !matches!(l, CssLength::Percent(_)))
}

/// Splits at `sep` characters that are not inside parentheses.
pub fn split_top_level(input: &str, is_sep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in input.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 && is_sep(c) => {
                out.push(&input[start..i]);
                start = i + ch.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&input[start..]);
    out
}

fn tokens(input: &str) -> Vec<&str> {
    split_top_level(input, char::is_whitespace)
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect()
}

/// `text-shadow`: a comma-separated list (commas inside `rgba()` do not split) of
/// `x y [blur] [colour]`, the colour first or last. `none` → an empty list.
pub fn parse_text_shadow(input: &str) -> Option<Vec<Shadow>> {
    let s = input.trim();
    if s.eq_ignore_ascii_case("none") {
        return Some(Vec::new());
    }
    split_top_level(s, |c| c == ',')
        .into_iter()
        .map(parse_one_shadow)
        .collect()
}

fn parse_one_shadow(part: &str) -> Option<Shadow> {
    let mut toks = tokens(part);
    let mut color = None;
    if let Some(first) = toks.first() {
        if parse_shadow_length(first).is_none() {
            color = Some(parse_color(first)?);
            toks.remove(0);
        }
    }
    if color.is_none() {
        if let Some(last) = toks.last() {
            if parse_shadow_length(last).is_none() {
                color = Some(parse_color(last)?);
                toks.pop();
            }
        }
    }
    let lengths: Option<Vec<CssLength>> = toks.iter().map(|t| parse_shadow_length(t)).collect();
    let lengths = lengths?;
    let (x, y, blur) = match lengths[..] {
        [x, y] => (x, y, CssLength::Px(0.0)),
        [x, y, b] => (x, y, b),
        _ => return None,
    };
    let negative_blur = match blur {
        CssLength::Px(v) | CssLength::Em(v) | CssLength::Rem(v) | CssLength::Percent(v) => v < 0.0,
    };
    if negative_blur {
        return None;
    }
    Some(Shadow {
        offset_x: x,
        offset_y: y,
        blur,
        color,
    })
}

/// `padding` shorthand with 1–4 values in CSS px (`rem` = 16 px, unitless only for 0):
/// returns top, right, bottom, left.
pub fn parse_padding_shorthand(input: &str) -> Option<[f64; 4]> {
    let px: Option<Vec<f64>> = tokens(input.trim())
        .into_iter()
        .map(|t| match parse_length(t)? {
            CssLength::Px(v)
                if v >= 0.0
                    && (v == 0.0 || !t.trim().chars().all(|c| c.is_ascii_digit() || c == '.')) =>
            {
                Some(v)
            }
            CssLength::Rem(v) if v >= 0.0 => Some(v * 16.0),
            _ => None,
        })
        .collect();
    match px?[..] {
        [a] => Some([a, a, a, a]),
        [v, h] => Some([v, h, v, h]),
        [t, h, b] => Some([t, h, b, h]),
        [t, r, b, l] => Some([t, r, b, l]),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum OriginToken {
    Left,
    Right,
    Top,
    Bottom,
    Center,
    Value(OriginComponent),
}

fn origin_token(t: &str) -> Option<OriginToken> {
    Some(match t.to_ascii_lowercase().as_str() {
        "left" => OriginToken::Left,
        "right" => OriginToken::Right,
        "top" => OriginToken::Top,
        "bottom" => OriginToken::Bottom,
        "center" => OriginToken::Center,
        other => {
            if let Some(p) = other.strip_suffix('%') {
                return finite(p).map(|p| OriginToken::Value(OriginComponent::Fraction(p / 100.0)));
            }
            match parse_shadow_length(other)? {
                CssLength::Px(v) => OriginToken::Value(OriginComponent::Px(v)),
                CssLength::Rem(v) => OriginToken::Value(OriginComponent::Px(v * 16.0)),
                _ => return None,
            }
        }
    })
}

/// `transform-origin` (keywords, `%`, px); a third (z) value is accepted and ignored.
/// Returns (x, y); `None` for invalid CSS (the caller then uses the centre).
pub fn parse_transform_origin(input: &str) -> Option<(OriginComponent, OriginComponent)> {
    use OriginToken::*;
    let half = OriginComponent::Fraction(0.5);
    let horiz = |t: OriginToken| match t {
        Left => Some(OriginComponent::Fraction(0.0)),
        Right => Some(OriginComponent::Fraction(1.0)),
        Center => Some(half),
        Value(v) => Some(v),
        Top | Bottom => None,
    };
    let vert = |t: OriginToken| match t {
        Top => Some(OriginComponent::Fraction(0.0)),
        Bottom => Some(OriginComponent::Fraction(1.0)),
        Center => Some(half),
        Value(v) => Some(v),
        Left | Right => None,
    };
    let toks: Option<Vec<OriginToken>> =
        tokens(input.trim()).into_iter().map(origin_token).collect();
    let toks = toks?;
    match toks[..] {
        [t] => match t {
            Top | Bottom => Some((half, vert(t)?)),
            _ => Some((horiz(t)?, half)),
        },
        [a, b] | [a, b, Value(OriginComponent::Px(_))] => {
            let swapped = matches!(a, Top | Bottom) || matches!(b, Left | Right);
            if swapped {
                if matches!(a, Value(_)) || matches!(b, Value(_)) {
                    return None;
                }
                Some((horiz(b)?, vert(a)?))
            } else {
                Some((horiz(a)?, vert(b)?))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::display::Color;

    #[test]
    fn lengths() {
        assert_eq!(parse_length("24px"), Some(CssLength::Px(24.0)));
        assert_eq!(parse_length("1.5em"), Some(CssLength::Em(1.5)));
        assert_eq!(parse_length("2.4rem"), Some(CssLength::Rem(2.4)));
        assert_eq!(parse_length("80%"), Some(CssLength::Percent(80.0)));
        assert_eq!(parse_length("12"), Some(CssLength::Px(12.0)));
        assert_eq!(parse_length("big"), None);
        assert_eq!(parse_length("px"), None);
    }

    #[test]
    fn shadow_list_keeps_rgba_commas_together() {
        let list = parse_text_shadow("2px 2px 4px rgba(0,0,0,0.8), 0 0 8px #000").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].offset_x, CssLength::Px(2.0));
        assert_eq!(list[0].blur, CssLength::Px(4.0));
        assert_eq!(list[0].color, Some(Color::rgba8(0, 0, 0, 0.8)));
        assert_eq!(list[1].offset_x, CssLength::Px(0.0));
        assert_eq!(list[1].color, Some(Color::BLACK));
    }

    #[test]
    fn shadow_colour_first_or_missing() {
        let list = parse_text_shadow("red 1px 2px").unwrap();
        assert_eq!(list[0].color, parse_color("red"));
        assert_eq!(list[0].offset_y, CssLength::Px(2.0));
        assert_eq!(list[0].blur, CssLength::Px(0.0));
        let list = parse_text_shadow("0 0 0.5em").unwrap();
        assert_eq!(list[0].color, None);
        assert_eq!(list[0].blur, CssLength::Em(0.5));
        assert_eq!(parse_text_shadow("none"), Some(vec![]));
    }

    #[test]
    fn invalid_shadows() {
        assert_eq!(parse_text_shadow("2px"), None);
        assert_eq!(parse_text_shadow("1px 1px 1px 1px 1px"), None);
        assert_eq!(parse_text_shadow("1px 1px -2px black"), None);
        assert_eq!(parse_text_shadow("1 1 black"), None);
        assert_eq!(parse_text_shadow("1px 1px notcolour"), None);
        assert_eq!(parse_text_shadow("red 1px 1px blue"), None);
    }

    #[test]
    fn padding_shorthand() {
        assert_eq!(
            parse_padding_shorthand("8px 16px"),
            Some([8.0, 16.0, 8.0, 16.0])
        );
        assert_eq!(parse_padding_shorthand("4px"), Some([4.0; 4]));
        assert_eq!(
            parse_padding_shorthand("1px 2px 3px"),
            Some([1.0, 2.0, 3.0, 2.0])
        );
        assert_eq!(
            parse_padding_shorthand("1px 2px 3px 4px"),
            Some([1.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(
            parse_padding_shorthand("0 1rem"),
            Some([0.0, 16.0, 0.0, 16.0])
        );
        assert_eq!(parse_padding_shorthand("8"), None);
        assert_eq!(parse_padding_shorthand("-1px"), None);
        assert_eq!(parse_padding_shorthand("1px 2px 3px 4px 5px"), None);
        assert_eq!(parse_padding_shorthand(""), None);
    }

    #[test]
    fn transform_origin() {
        use OriginComponent::{Fraction as F, Px};
        assert_eq!(parse_transform_origin("center"), Some((F(0.5), F(0.5))));
        assert_eq!(parse_transform_origin("50% 50%"), Some((F(0.5), F(0.5))));
        assert_eq!(parse_transform_origin("left top"), Some((F(0.0), F(0.0))));
        assert_eq!(parse_transform_origin("top left"), Some((F(0.0), F(0.0))));
        assert_eq!(parse_transform_origin("bottom"), Some((F(0.5), F(1.0))));
        assert_eq!(
            parse_transform_origin("10px 20px"),
            Some((Px(10.0), Px(20.0)))
        );
        assert_eq!(parse_transform_origin("right 25%"), Some((F(1.0), F(0.25))));
        assert_eq!(parse_transform_origin("0 0 5px"), Some((Px(0.0), Px(0.0))));
        assert_eq!(parse_transform_origin("top-left"), None);
        assert_eq!(parse_transform_origin("left right"), None);
        assert_eq!(parse_transform_origin("top 10px"), None);
    }
}
