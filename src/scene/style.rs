//! Text and box style objects (SPEC §8–§10) → [`Style`]. An unparsable value is dropped
//! with a warning naming its path, as a browser ignores invalid CSS.

use serde_json::Value;

use super::color::parse_color;
use super::css::{parse_length, parse_padding_shorthand, parse_text_shadow};
use super::define::key_path;
use super::model::{
    Border, CssLength, LineHeight, Padding, Radius, Stroke, Style, TextAlign, Warning, WhiteSpace,
};
use crate::compose::display::Color;

pub(crate) fn warn(warnings: &mut Vec<Warning>, path: &str, message: impl Into<String>) {
    warnings.push(Warning {
        path: path.to_string(),
        message: message.into(),
    });
}

/// Short JSON rendering of a value for messages.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// A number, or a string holding one.
pub(crate) fn loose_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

fn color_value(v: &Value) -> Option<Color> {
    v.as_str().and_then(parse_color)
}

fn font_weight(v: &Value) -> Result<Option<u16>, ()> {
    let n = match v {
        Value::Number(n) => n.as_f64().ok_or(())?,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(None),
            "normal" => 400.0,
            "bold" => 700.0,
            // Relative keywords resolved against the host default weight 400.
            "bolder" => 700.0,
            "lighter" => 100.0,
            other => other.parse::<f64>().map_err(|_| ())?,
        },
        _ => return Err(()),
    };
    if n == 0.0 {
        return Ok(None);
    }
    if !(1.0..=1000.0).contains(&n) {
        return Err(());
    }
    Ok(Some(n.round() as u16))
}

fn text_align(v: &Value) -> Option<TextAlign> {
    match v.as_str()?.trim().to_ascii_lowercase().as_str() {
        "left" | "start" | "justify" => Some(TextAlign::Left),
        "center" => Some(TextAlign::Center),
        "right" | "end" => Some(TextAlign::Right),
        _ => None,
    }
}

fn white_space(v: &Value) -> Option<WhiteSpace> {
    match v.as_str()?.trim().to_ascii_lowercase().as_str() {
        "wrap" | "normal" => Some(WhiteSpace::Normal),
        "nowrap" => Some(WhiteSpace::NoWrap),
        "pre" => Some(WhiteSpace::Pre),
        "pre-line" => Some(WhiteSpace::PreLine),
        "pre-wrap" | "break-spaces" => Some(WhiteSpace::PreWrap),
        _ => None,
    }
}

fn line_height(v: &Value) -> Option<LineHeight> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(LineHeight::Factor),
        Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("normal") {
                return Some(LineHeight::Normal);
            }
            if let Ok(f) = s.parse::<f64>() {
                return (f.is_finite() && f >= 0.0).then_some(LineHeight::Factor(f));
            }
            parse_length(s).map(LineHeight::Length)
        }
        _ => None,
    }
}

fn font_family(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        // A define asset object (§4.9, recommended): its family plus fallbacks; a font asset
        // without a family is named by its source (the asset loader registers it so).
        Value::Object(asset) => {
            let family = match asset.get("family") {
                Some(f) => f.as_str()?,
                None if asset.get("type").and_then(Value::as_str) == Some("font") => asset
                    .get("src")
                    .or_else(|| asset.get("url"))
                    .and_then(Value::as_str)?,
                None => return None,
            };
            let mut list = vec![family.to_string()];
            match asset.get("fallback") {
                Some(Value::String(f)) => list.push(f.clone()),
                Some(Value::Array(fs)) => {
                    list.extend(fs.iter().filter_map(|f| f.as_str().map(str::to_string)))
                }
                _ => {}
            }
            Some(list.join(", "))
        }
        _ => None,
    }
}

fn stroke(v: &Value, path: &str, warnings: &mut Vec<Warning>) -> Option<Stroke> {
    let width_rel = v.get("widthRel").and_then(Value::as_f64)?;
    let color = match v.get("color") {
        None | Some(Value::Null) => Color::BLACK,
        Some(c) => color_value(c).unwrap_or_else(|| {
            warn(
                warnings,
                &key_path(path, "color"),
                format!("invalid colour {}; using #000", show(c)),
            );
            Color::BLACK
        }),
    };
    Some(Stroke { width_rel, color })
}

fn border(v: &Value, path: &str, warnings: &mut Vec<Warning>) -> Option<Border> {
    let map = v.as_object()?;
    let width_rel = map.get("widthRel").and_then(Value::as_f64).unwrap_or(0.0);
    let color = match map.get("color") {
        None | Some(Value::Null) => Color::BLACK,
        Some(c) => color_value(c).unwrap_or_else(|| {
            warn(
                warnings,
                &key_path(path, "color"),
                format!("invalid colour {}; using #000", show(c)),
            );
            Color::BLACK
        }),
    };
    let radius_rel = map.get("radiusRel").and_then(Value::as_f64);
    Some(Border {
        width_rel,
        color,
        radius_rel,
    })
}

fn padding(v: &Value) -> Option<Padding> {
    match v {
        Value::String(s) => parse_padding_shorthand(s).map(Padding::Css),
        Value::Number(n) => n
            .as_f64()
            .filter(|p| *p >= 0.0)
            .map(|p| Padding::Css([p; 4])),
        Value::Object(m) => {
            let x = m.get("x").map_or(Some(0.0), Value::as_f64)?;
            let y = m.get("y").map_or(Some(0.0), Value::as_f64)?;
            Some(Padding::Rel { x, y })
        }
        _ => None,
    }
}

fn radius(v: &Value) -> Option<Radius> {
    match v {
        Value::Number(n) => n.as_f64().map(Radius::Rel),
        Value::String(s) => match parse_length(s)? {
            CssLength::Px(p) if p >= 0.0 => Some(Radius::Css(CssLength::Px(p))),
            CssLength::Px(_) => None,
            other => Some(Radius::Css(other)),
        },
        _ => None,
    }
}

/// Parses a style object. `null`/absent → the empty style.
pub(crate) fn parse_style(v: &Value, path: &str, warnings: &mut Vec<Warning>) -> Style {
    let mut style = Style::default();
    let map = match v {
        Value::Object(m) => m,
        Value::Null => return style,
        other => {
            warn(
                warnings,
                path,
                format!("style must be an object, got {}; ignored", show(other)),
            );
            return style;
        }
    };
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let at = key_path(path, key);
        let ok = match key.as_str() {
            "fontFamily" => font_family(value)
                .map(|f| style.font_family = Some(f))
                .is_some(),
            "fontWeight" => match font_weight(value) {
                Ok(w) => {
                    style.font_weight = w;
                    true
                }
                Err(()) => false,
            },
            "fontSizeRel" => loose_number(value)
                .map(|f| style.font_size_rel = Some(f))
                .is_some(),
            "fontSize" => match value {
                Value::Number(n) => n
                    .as_f64()
                    .map(|f| style.font_size = Some(CssLength::Px(f)))
                    .is_some(),
                Value::String(s) => parse_length(s).map(|l| style.font_size = Some(l)).is_some(),
                _ => false,
            },
            "lineHeight" => line_height(value)
                .map(|l| style.line_height = Some(l))
                .is_some(),
            "color" => color_value(value).map(|c| style.color = Some(c)).is_some(),
            "textShadow" => value
                .as_str()
                .and_then(parse_text_shadow)
                .map(|s| style.text_shadow = Some(s))
                .is_some(),
            "stroke" => {
                let parsed = stroke(value, &at, warnings);
                if parsed.is_none() {
                    warn(warnings, &at, "stroke ignored: widthRel must be a number");
                }
                style.stroke = parsed;
                true
            }
            "align" => text_align(value).map(|a| style.align = Some(a)).is_some(),
            "textAlign" => text_align(value)
                .map(|a| style.text_align = Some(a))
                .is_some(),
            "whiteSpace" => white_space(value)
                .map(|w| style.white_space = Some(w))
                .is_some(),
            "backgroundColor" => color_value(value)
                .map(|c| style.background_color = Some(c))
                .is_some(),
            "boxBg" => color_value(value).map(|c| style.box_bg = Some(c)).is_some(),
            "border" => border(value, &at, warnings)
                .map(|b| style.border = Some(b))
                .is_some(),
            "borderRadius" => radius(value)
                .map(|r| style.border_radius = Some(r))
                .is_some(),
            "padding" => padding(value).map(|p| style.padding = Some(p)).is_some(),
            "opacity" => loose_number(value)
                .map(|o| style.opacity = Some(o.clamp(0.0, 1.0)))
                .is_some(),
            // Everything else (letterSpacing, fontStyle, filter, …) is ignored by the
            // reference (§9) and by us.
            _ => true,
        };
        if !ok {
            warn(
                warnings,
                &at,
                format!("invalid value {}; ignored", show(value)),
            );
        }
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> (Style, Vec<Warning>) {
        let mut w = Vec::new();
        let s = parse_style(&v, "s", &mut w);
        (s, w)
    }

    #[test]
    fn text_keys() {
        let (s, w) = parse(json!({
            "fontFamily": "Arial, sans-serif", "fontWeight": "bold", "fontSizeRel": 0.07,
            "fontSize": "1.5em", "lineHeight": "1.2", "color": "rgba(255, 0, 0, 0.5)",
            "textShadow": "none", "stroke": {"widthRel": 0.002}, "align": "end", "textAlign": "justify",
            "whiteSpace": "pre-line", "letterSpacing": "2px"
        }));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.font_family.as_deref(), Some("Arial, sans-serif"));
        assert_eq!(s.font_weight, Some(700));
        assert_eq!(s.font_size_rel, Some(0.07));
        assert_eq!(s.font_size, Some(CssLength::Em(1.5)));
        assert_eq!(s.line_height, Some(LineHeight::Factor(1.2)));
        assert_eq!(s.color, Some(Color::rgba8(255, 0, 0, 0.5)));
        assert_eq!(s.text_shadow, Some(vec![]));
        assert_eq!(
            s.stroke,
            Some(Stroke {
                width_rel: 0.002,
                color: Color::BLACK
            })
        );
        assert_eq!(s.align, Some(TextAlign::Right));
        assert_eq!(s.text_align, Some(TextAlign::Left));
        assert_eq!(s.white_space, Some(WhiteSpace::PreLine));
    }

    #[test]
    fn weights_and_line_heights() {
        assert_eq!(parse(json!({"fontWeight": "600"})).0.font_weight, Some(600));
        assert_eq!(parse(json!({"fontWeight": 0})).0.font_weight, None);
        assert_eq!(parse(json!({"fontWeight": ""})).0.font_weight, None);
        assert_eq!(
            parse(json!({"fontWeight": "normal"})).0.font_weight,
            Some(400)
        );
        assert_eq!(
            parse(json!({"lineHeight": 1.6})).0.line_height,
            Some(LineHeight::Factor(1.6))
        );
        assert_eq!(
            parse(json!({"lineHeight": "24px"})).0.line_height,
            Some(LineHeight::Length(CssLength::Px(24.0)))
        );
        assert_eq!(
            parse(json!({"lineHeight": "normal"})).0.line_height,
            Some(LineHeight::Normal)
        );
        assert_eq!(
            parse(json!({"fontSize": 20})).0.font_size,
            Some(CssLength::Px(20.0))
        );
    }

    #[test]
    fn box_keys() {
        let (s, w) = parse(json!({
            "backgroundColor": "#000000cc", "boxBg": "black",
            "border": {"widthRel": 0.002, "color": "#fff", "radiusRel": 0.01},
            "borderRadius": 0.02, "padding": "8px 16px", "opacity": 0.5
        }));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            s.border,
            Some(Border {
                width_rel: 0.002,
                color: Color::WHITE,
                radius_rel: Some(0.01)
            })
        );
        assert_eq!(s.border_radius, Some(Radius::Rel(0.02)));
        assert_eq!(s.padding, Some(Padding::Css([8.0, 16.0, 8.0, 16.0])));
        assert_eq!(s.opacity, Some(0.5));
        assert!(s.has_box_keys());
        let (s, _) =
            parse(json!({"padding": {"x": 0.03, "y": 0.01}, "borderRadius": "8px", "border": {}}));
        assert_eq!(s.padding, Some(Padding::Rel { x: 0.03, y: 0.01 }));
        assert_eq!(s.border_radius, Some(Radius::Css(CssLength::Px(8.0))));
        assert_eq!(
            s.border,
            Some(Border {
                width_rel: 0.0,
                color: Color::BLACK,
                radius_rel: None
            })
        );
    }

    #[test]
    fn invalid_values_are_dropped_with_a_warning() {
        let (s, w) = parse(
            json!({"color": "nope", "stroke": {"widthRel": "2px"}, "fontWeight": "heavy", "textShadow": "2px"}),
        );
        assert_eq!(s, Style::default());
        let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
        assert!(paths.contains(&"s.color") && paths.contains(&"s.stroke"));
        assert!(paths.contains(&"s.fontWeight") && paths.contains(&"s.textShadow"));
        let (_, w) = parse(json!("bold"));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn font_asset_object_uses_family() {
        let (s, _) = parse(
            json!({"fontFamily": {"type": "font", "family": "Pretendard", "fallback": ["sans-serif"]}}),
        );
        assert_eq!(s.font_family.as_deref(), Some("Pretendard, sans-serif"));
        // Without a family, a font asset is named by its source (registered so by the loader).
        let (s, _) = parse(json!({"fontFamily": {"type": "font", "url": "fonts/b.ttf"}}));
        assert_eq!(s.font_family.as_deref(), Some("fonts/b.ttf"));
        let (s, _) = parse(json!({"fontFamily": {"type": "image", "src": "a.png"}}));
        assert_eq!(s.font_family, None);
    }
}
