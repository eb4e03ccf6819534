//! Style resolution: merged MotionText styles → concrete CSS-pixel values (SPEC §8–§10).

use crate::compose::display::Color;
use crate::scene::{CssLength, LineHeight, Padding, Radius, Shadow, Style, TextAlign};

/// Host-page defaults (SPEC §1.6).
pub const ROOT_FONT_PX: f64 = 16.0;
pub const HOST_TEXT_COLOR: Color = Color {
    r: 0x1f as f32 / 255.0,
    g: 0x29 as f32 / 255.0,
    b: 0x37 as f32 / 255.0,
    a: 1.0,
};

/// A text shadow in CSS px.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowSpec {
    pub x: f64,
    pub y: f64,
    pub blur: f64,
    pub color: Color,
}

/// Everything needed to lay out and paint one text node.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLook {
    pub family_list: Option<String>,
    pub weight: u16,
    pub font_px: f64,
    /// `None` = `normal` (from the font's metrics).
    pub line_height_px: Option<f64>,
    pub color: Color,
    /// First entry is drawn on top.
    pub shadows: Vec<ShadowSpec>,
    pub stroke: Option<(f64, Color)>,
    pub align: TextAlign,
    pub wrap: bool,
}

/// A group's box in CSS px.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxLook {
    pub background: Option<Color>,
    pub border_width: f64,
    pub border_color: Color,
    pub radius: f64,
    /// top, right, bottom, left; `None` = no box padding (constraint padding applies).
    pub padding: Option<[f64; 4]>,
    pub opacity: f64,
}

impl BoxLook {
    pub fn is_visible(&self) -> bool {
        self.background.is_some_and(|c| c.a > 0.0)
            || (self.border_width > 0.0 && self.border_color.a > 0.0)
    }
}

fn round(v: f64) -> f64 {
    v.round()
}

pub fn length_px(len: CssLength, font_px: f64, parent_font_px: f64) -> f64 {
    match len {
        CssLength::Px(v) => v,
        CssLength::Em(v) => v * font_px,
        CssLength::Rem(v) => v * ROOT_FONT_PX,
        CssLength::Percent(p) => p / 100.0 * parent_font_px,
    }
}

/// Font size of a text node (SPEC §9): `fontSize` wins over `fontSizeRel`; neither → 32 px.
pub fn font_px(style: &Style, stage_h: f64, parent_font_px: f64) -> Option<f64> {
    if let Some(len) = style.font_size {
        let px = match len {
            CssLength::Px(v) => v,
            CssLength::Em(v) => v * parent_font_px,
            CssLength::Rem(v) => v * ROOT_FONT_PX,
            CssLength::Percent(p) => p / 100.0 * parent_font_px,
        };
        return Some(px.max(0.0));
    }
    match style.font_size_rel {
        Some(rel) if rel != 0.0 => Some(round(stage_h * rel).max(1.0)),
        _ => None,
    }
}

/// The reference's default glow (SPEC §9): three stacked black glows.
fn default_glow() -> Vec<ShadowSpec> {
    [2.0, 4.0, 8.0]
        .into_iter()
        .map(|blur| ShadowSpec {
            x: 0.0,
            y: 0.0,
            blur,
            color: Color::BLACK,
        })
        .collect()
}

pub fn text_look(style: &Style, stage_h: f64, parent_font_px: f64) -> TextLook {
    let sized = font_px(style, stage_h, parent_font_px);
    let font = sized.unwrap_or(32.0);
    let unsized_defaults = sized.is_none();
    let weight = style
        .font_weight
        .unwrap_or(if unsized_defaults { 700 } else { 400 });
    let color = style.color.unwrap_or(if unsized_defaults {
        Color::WHITE
    } else {
        HOST_TEXT_COLOR
    });
    let line_height_px = match style.line_height {
        Some(LineHeight::Factor(f)) => Some(f * font),
        Some(LineHeight::Length(len)) => Some(length_px(len, font, parent_font_px)),
        Some(LineHeight::Normal) | None => None,
    };
    let stroke = style
        .stroke
        .map(|s| (round(stage_h * s.width_rel).max(1.0), s.color));
    let shadows = match &style.text_shadow {
        Some(list) => list
            .iter()
            .map(|s| shadow_px(s, font, parent_font_px, color))
            .collect(),
        None if stroke.is_none() => default_glow(),
        None => Vec::new(),
    };
    TextLook {
        family_list: style.font_family.clone(),
        weight,
        font_px: font,
        line_height_px,
        color,
        shadows,
        stroke,
        align: style.align.unwrap_or(TextAlign::Left),
        wrap: !matches!(
            style.white_space,
            Some(crate::scene::WhiteSpace::NoWrap | crate::scene::WhiteSpace::Pre)
        ),
    }
}

fn shadow_px(s: &Shadow, font: f64, parent_font: f64, text_color: Color) -> ShadowSpec {
    ShadowSpec {
        x: length_px(s.offset_x, font, parent_font),
        y: length_px(s.offset_y, font, parent_font),
        blur: length_px(s.blur, font, parent_font).max(0.0),
        color: s.color.unwrap_or(text_color),
    }
}

/// Box style of a group (SPEC §10), lengths relative to the stage height `stage_h`.
pub fn box_look(style: &Style, stage_h: f64) -> BoxLook {
    let background = style.background_color.or(style.box_bg);
    let (border_width, border_color, radius_rel) = match style.border {
        Some(b) => (round(stage_h * b.width_rel).max(0.0), b.color, b.radius_rel),
        None => (0.0, Color::BLACK, None),
    };
    let radius = match style.border_radius {
        Some(Radius::Css(len)) => length_px(len, ROOT_FONT_PX, ROOT_FONT_PX),
        Some(Radius::Rel(n)) => round(stage_h * n),
        None => radius_rel.map(|r| round(stage_h * r)).unwrap_or(0.0),
    };
    let padding = style.padding.map(|p| match p {
        Padding::Css(v) => v,
        Padding::Rel { x, y } => {
            let (h, v) = (round(stage_h * x), round(stage_h * y));
            [v, h, v, h]
        }
    });
    BoxLook {
        background,
        border_width,
        border_color,
        radius,
        padding,
        opacity: style.opacity.unwrap_or(1.0).clamp(0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::Stroke;

    #[test]
    fn font_size_rel_is_rounded_from_stage_height() {
        let s = Style {
            font_size_rel: Some(0.07),
            ..Default::default()
        };
        assert_eq!(font_px(&s, 720.0, 16.0), Some(50.0));
        let s = Style {
            font_size_rel: Some(0.07),
            font_size: Some(CssLength::Px(24.0)),
            ..Default::default()
        };
        assert_eq!(font_px(&s, 720.0, 16.0), Some(24.0), "fontSize wins");
        let s = Style {
            font_size: Some(CssLength::Em(1.5)),
            ..Default::default()
        };
        assert_eq!(font_px(&s, 720.0, 20.0), Some(30.0));
    }

    #[test]
    fn unsized_text_gets_32px_white_bold() {
        let look = text_look(&Style::default(), 720.0, 16.0);
        assert_eq!(
            (look.font_px, look.weight, look.color),
            (32.0, 700, Color::WHITE)
        );
        assert_eq!(look.shadows.len(), 3, "default triple glow");
    }

    #[test]
    fn stroke_disables_the_default_glow() {
        let s = Style {
            font_size_rel: Some(0.05),
            stroke: Some(Stroke {
                width_rel: 0.004,
                color: Color::BLACK,
            }),
            ..Default::default()
        };
        let look = text_look(&s, 720.0, 16.0);
        assert!(look.shadows.is_empty());
        assert_eq!(look.stroke, Some((3.0, Color::BLACK)));
        assert_eq!(look.color, HOST_TEXT_COLOR);
    }

    #[test]
    fn box_padding_forms() {
        let s = Style {
            padding: Some(Padding::Rel { x: 0.02, y: 0.01 }),
            ..Default::default()
        };
        assert_eq!(box_look(&s, 720.0).padding, Some([7.0, 14.0, 7.0, 14.0]));
    }
}
