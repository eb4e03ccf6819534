//! `layout` objects (SPEC §11) → [`Layout`], and track `defaultConstraints` (§5, §11.8).

use serde_json::Value;

use super::css::parse_transform_origin;
use super::define::key_path;
use super::model::{
    Anchor, ChildrenLayout, ConstraintMode, Constraints, Direction, FlexAlign, Insets, Justify,
    Layout, LayoutMode, LayoutTransform, Warning,
};
use super::style::{loose_number, show, warn};
use super::ParseOptions;

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// `{x, y}` with numeric members (missing members take `default`).
fn xy(v: &Value, default: f64) -> Option<(f64, f64)> {
    let m = v.as_object()?;
    let x = m.get("x").map_or(Some(default), |x| x.as_f64())?;
    let y = m.get("y").map_or(Some(default), |y| y.as_f64())?;
    Some((x, y))
}

pub(crate) fn parse_mode(v: &Value) -> Option<LayoutMode> {
    match v.as_str()? {
        "absolute" => Some(LayoutMode::Absolute),
        "flow" => Some(LayoutMode::Flow),
        "grid" => Some(LayoutMode::Grid),
        "stack" => Some(LayoutMode::Stack),
        _ => None,
    }
}

fn direction(v: &Value) -> Option<Direction> {
    match v.as_str()? {
        "horizontal" | "row" => Some(Direction::Horizontal),
        "vertical" | "column" => Some(Direction::Vertical),
        _ => None,
    }
}

pub(crate) fn parse_insets(v: &Value) -> Option<Insets> {
    let m = v.as_object()?;
    let side = |k: &str| num(m.get(k)).unwrap_or(0.0);
    Some(Insets {
        top: side("top"),
        bottom: side("bottom"),
        left: side("left"),
        right: side("right"),
    })
}

fn position(
    v: &Value,
    path: &str,
    opts: &ParseOptions,
    warnings: &mut Vec<Warning>,
) -> Option<(f64, f64)> {
    match v {
        Value::Object(m) => match (num(m.get("x")), num(m.get("y"))) {
            (Some(x), Some(y)) => Some((round4(x), round4(y))),
            _ => {
                warn(warnings, path, "position needs numeric x and y; the node is not positioned (reference behaviour)");
                None
            }
        },
        Value::Array(a) if opts.accept_array_positions => match a.as_slice() {
            [x, y] => match (loose_number(x), loose_number(y)) {
                (Some(x), Some(y)) => Some((round4(x), round4(y))),
                _ => {
                    warn(
                        warnings,
                        path,
                        format!("invalid position {}; the node is not positioned", show(v)),
                    );
                    None
                }
            },
            _ => {
                warn(
                    warnings,
                    path,
                    format!("invalid position {}; the node is not positioned", show(v)),
                );
                None
            }
        },
        Value::Null => None,
        other => {
            warn(
                warnings,
                path,
                format!("position {} is not an {{x, y}} object; the node is not positioned (reference behaviour)", show(other)),
            );
            None
        }
    }
}

fn transform(v: &Value, path: &str, warnings: &mut Vec<Warning>) -> LayoutTransform {
    let mut t = LayoutTransform::default();
    let Some(m) = v.as_object() else {
        if !v.is_null() {
            warn(
                warnings,
                path,
                format!("transform must be an object, got {}; ignored", show(v)),
            );
        }
        return t;
    };
    if let Some(tr) = m.get("translate") {
        t.translate = xy(tr, 0.0);
        if t.translate.is_none() {
            warn(
                warnings,
                &key_path(path, "translate"),
                format!("invalid translate {}; ignored", show(tr)),
            );
        }
    }
    if let Some(sc) = m.get("scale") {
        t.scale = match sc {
            Value::Number(n) => n.as_f64().map(|s| (s, s)),
            Value::Array(a) => match a.as_slice() {
                [x, y] => x.as_f64().zip(y.as_f64()),
                _ => None,
            },
            other => xy(other, 1.0),
        };
        if t.scale.is_none() {
            warn(
                warnings,
                &key_path(path, "scale"),
                format!("invalid scale {}; ignored", show(sc)),
            );
        }
    }
    if let Some(rot) = m.get("rotate") {
        t.rotate_deg = num(rot.get("deg"));
        if t.rotate_deg.is_none() {
            warn(
                warnings,
                &key_path(path, "rotate"),
                format!(
                    "rotate {} ignored: only {{\"deg\": n}} is applied by the reference",
                    show(rot)
                ),
            );
        }
    }
    if let Some(sk) = m.get("skew") {
        let x = num(sk.get("xDeg"));
        let y = num(sk.get("yDeg"));
        t.skew_deg = (x.is_some() || y.is_some()).then(|| (x.unwrap_or(0.0), y.unwrap_or(0.0)));
        if t.skew_deg.is_none() {
            warn(
                warnings,
                &key_path(path, "skew"),
                format!("skew {} ignored: use {{xDeg, yDeg}}", show(sk)),
            );
        }
    }
    t
}

fn flex_align(v: Option<&Value>) -> Option<FlexAlign> {
    match v?.as_str()? {
        "start" | "flex-start" => Some(FlexAlign::Start),
        "center" => Some(FlexAlign::Center),
        "end" | "flex-end" => Some(FlexAlign::End),
        _ => None,
    }
}

fn justify(v: Option<&Value>) -> Option<Justify> {
    match v?.as_str()? {
        "start" | "flex-start" => Some(Justify::Start),
        "center" => Some(Justify::Center),
        "end" | "flex-end" => Some(Justify::End),
        "space-between" => Some(Justify::SpaceBetween),
        _ => None,
    }
}

fn children_layout(v: &Value, path: &str, warnings: &mut Vec<Warning>) -> Option<ChildrenLayout> {
    let Some(m) = v.as_object() else {
        warn(
            warnings,
            path,
            format!("childrenLayout must be an object, got {}; ignored", show(v)),
        );
        return None;
    };
    let mut bad = |key: &str| {
        if let Some(val) = m.get(key) {
            warn(
                warnings,
                &key_path(path, key),
                format!("invalid value {}; default used", show(val)),
            );
        }
    };
    let mode = m.get("mode").and_then(parse_mode);
    if mode.is_none() {
        bad("mode");
    }
    let dir = m.get("direction").and_then(direction);
    if dir.is_none() {
        bad("direction");
    }
    let align = flex_align(m.get("align"));
    if align.is_none() {
        bad("align");
    }
    let just = justify(m.get("justify"));
    if just.is_none() {
        bad("justify");
    }
    let (max_width_pct, max_width_px) = match m.get("maxWidth") {
        Some(Value::String(s)) => (
            s.trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| (p / 100.0).clamp(0.0, 1.0)),
            None,
        ),
        Some(Value::Number(n)) => (None, n.as_f64()),
        _ => (None, None),
    };
    Some(ChildrenLayout {
        mode: mode.unwrap_or(LayoutMode::Flow),
        direction: dir,
        gap: num(m.get("gap")).unwrap_or(0.0),
        wrap: m.get("wrap").and_then(Value::as_bool),
        max_width_pct,
        max_width_px,
        max_width_rel: num(m.get("maxWidthRel")),
        align: align.unwrap_or(FlexAlign::Center),
        justify: just.unwrap_or(Justify::Center),
    })
}

/// Parses `layout`; `null`/absent → the default layout.
pub(crate) fn parse_layout(
    v: &Value,
    path: &str,
    opts: &ParseOptions,
    warnings: &mut Vec<Warning>,
) -> Layout {
    let mut layout = Layout::default();
    let m = match v {
        Value::Object(m) => m,
        Value::Null => return layout,
        other => {
            warn(
                warnings,
                path,
                format!("layout must be an object, got {}; ignored", show(other)),
            );
            return layout;
        }
    };
    if let Some(p) = m.get("position") {
        layout.position = position(p, &key_path(path, "position"), opts, warnings);
    }
    if let Some(a) = m.get("anchor") {
        match a.as_str() {
            Some(code) => layout.anchor = Some(Anchor::from_code(code)),
            None => warn(
                warnings,
                &key_path(path, "anchor"),
                format!("anchor {} is not a code; ignored", show(a)),
            ),
        }
    }
    if let Some(size) = m.get("size").and_then(Value::as_object) {
        layout.size = (num(size.get("width")), num(size.get("height")));
    }
    if let Some(t) = m.get("transform") {
        layout.transform = transform(t, &key_path(path, "transform"), warnings);
    }
    if let Some(o) = m.get("transformOrigin") {
        layout.transform_origin = o.as_str().and_then(parse_transform_origin);
        if layout.transform_origin.is_none() {
            warn(
                warnings,
                &key_path(path, "transformOrigin"),
                format!("invalid transform-origin {}; the centre is used", show(o)),
            );
        }
    }
    layout.clip = matches!(
        m.get("overflow").and_then(Value::as_str),
        Some("hidden" | "clip")
    );
    layout.safe_area_clamp = m
        .get("safeAreaClamp")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    layout.mode = m.get("mode").and_then(parse_mode);
    layout.gap_rel = num(m.get("gapRel"));
    layout.padding = m.get("padding").and_then(|p| xy(p, 0.0));
    if let Some(cl) = m.get("childrenLayout") {
        layout.children_layout = children_layout(cl, &key_path(path, "childrenLayout"), warnings);
    }
    if let Some(ov) = m.get("override").and_then(Value::as_object) {
        if ov.get("mode").and_then(Value::as_str) == Some("absolute") {
            let offset = ov
                .get("offset")
                .and_then(|o| xy(o, 0.0))
                .unwrap_or((0.0, 0.0));
            let t = ov
                .get("transform")
                .map(|t| transform(t, &key_path(path, "override.transform"), warnings))
                .unwrap_or_default();
            layout.override_absolute = Some((offset, t));
        }
    }
    layout
}

/// Parses track `defaultConstraints`; absent keys get the neutral value (the object
/// replaces the type defaults, §5).
pub(crate) fn parse_constraints(
    v: &Value,
    path: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Constraints> {
    let Some(m) = v.as_object() else {
        if !v.is_null() {
            warn(
                warnings,
                path,
                format!(
                    "defaultConstraints must be an object, got {}; ignored",
                    show(v)
                ),
            );
        }
        return None;
    };
    Some(Constraints {
        mode: m.get("mode").and_then(parse_mode),
        direction: m
            .get("direction")
            .and_then(direction)
            .unwrap_or(Direction::Vertical),
        max_width: num(m.get("maxWidth")),
        max_height: num(m.get("maxHeight")),
        min_width: num(m.get("minWidth")),
        min_height: num(m.get("minHeight")),
        gap: num(m.get("gap")),
        padding: m.get("padding").and_then(|p| xy(p, 0.0)),
        anchor: m
            .get("anchor")
            .and_then(Value::as_str)
            .map(Anchor::from_code),
        constraint_mode: match m.get("constraintMode").and_then(Value::as_str) {
            Some("strict") => ConstraintMode::Strict,
            Some("breakout") => ConstraintMode::Breakout,
            _ => ConstraintMode::Flexible,
        },
        breakout_enabled: m
            .get("breakoutEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        safe_area: m.get("safeArea").and_then(parse_insets),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::model::OriginComponent;
    use serde_json::json;

    fn parse(v: Value, arrays: bool) -> (Layout, Vec<Warning>) {
        let opts = ParseOptions {
            accept_array_positions: arrays,
            ..Default::default()
        };
        let mut w = Vec::new();
        (parse_layout(&v, "l", &opts, &mut w), w)
    }

    #[test]
    fn positions() {
        assert_eq!(
            parse(json!({"position": {"x": 0.123456, "y": 0.5}}), false)
                .0
                .position,
            Some((0.1235, 0.5))
        );
        let (l, w) = parse(json!({"position": [0.5, 0.85]}), false);
        assert_eq!(l.position, None);
        assert_eq!(w[0].path, "l.position");
        assert_eq!(
            parse(json!({"position": [0.5, "0.85"]}), true).0.position,
            Some((0.5, 0.85))
        );
        assert_eq!(
            parse(json!({"position": {"x": "50%", "y": 0.5}}), true)
                .0
                .position,
            None
        );
    }

    #[test]
    fn transform_forms() {
        let (l, w) = parse(
            json!({"transform": {"translate": {"x": -0.5}, "scale": 1.2, "rotate": 15, "skew": {"xDeg": 10}},
                   "transformOrigin": "left top"}),
            false,
        );
        assert_eq!(l.transform.translate, Some((-0.5, 0.0)));
        assert_eq!(l.transform.scale, Some((1.2, 1.2)));
        assert_eq!(l.transform.rotate_deg, None);
        assert_eq!(l.transform.skew_deg, Some((10.0, 0.0)));
        assert_eq!(
            l.transform_origin,
            Some((
                OriginComponent::Fraction(0.0),
                OriginComponent::Fraction(0.0)
            ))
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "l.transform.rotate");
        let (l, _) = parse(
            json!({"transform": {"scale": [1.2, 0.8], "rotate": {"deg": -5}}, "transformOrigin": "top-left"}),
            false,
        );
        assert_eq!(l.transform.scale, Some((1.2, 0.8)));
        assert_eq!(l.transform.rotate_deg, Some(-5.0));
        assert_eq!(l.transform_origin, None);
    }

    #[test]
    fn other_fields() {
        let (l, _) = parse(
            json!({"anchor": "bc", "size": {"width": 0.5, "height": "auto"}, "overflow": "clip", "safeAreaClamp": true,
                   "mode": "flow", "gapRel": 0.01, "padding": {"x": 0.02, "y": 0.01},
                   "childrenLayout": {"direction": "horizontal", "gap": 0.005, "maxWidth": "90%"},
                   "override": {"mode": "absolute", "offset": {"x": 0.1, "y": 0}, "transform": {"rotate": {"deg": 3}}}}),
            false,
        );
        assert_eq!(l.anchor, Some(Anchor::from_code("bc")));
        assert_eq!(l.size, (Some(0.5), None));
        assert!(l.clip && l.safe_area_clamp);
        assert_eq!(l.mode, Some(LayoutMode::Flow));
        assert_eq!(l.padding, Some((0.02, 0.01)));
        let cl = l.children_layout.unwrap();
        assert_eq!(cl.direction, Some(Direction::Horizontal));
        assert_eq!(cl.wrap, None);
        assert!(cl.wraps());
        assert_eq!(cl.max_width_pct, Some(0.9));
        assert_eq!(cl.align, FlexAlign::Center);
        let (off, t) = l.override_absolute.unwrap();
        assert_eq!(off, (0.1, 0.0));
        assert_eq!(t.rotate_deg, Some(3.0));
    }

    #[test]
    fn constraints_replace_defaults() {
        let mut w = Vec::new();
        let c = parse_constraints(
            &json!({"maxWidth": 0.9, "anchor": "bc", "constraintMode": "breakout"}),
            "c",
            &mut w,
        )
        .unwrap();
        assert_eq!(c.mode, None);
        assert_eq!(c.max_width, Some(0.9));
        assert_eq!(c.min_width, None);
        assert_eq!(c.constraint_mode, ConstraintMode::Breakout);
        assert!(parse_constraints(&Value::Null, "c", &mut w).is_none());
        assert!(w.is_empty());
    }
}
