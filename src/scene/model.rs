//! The validated scene: a MotionText scenario (v1.3 or v2.0) after `define` resolution,
//! version mapping and validation. Pure data, no I/O. Semantics follow
//! `shared/motiontext/SPEC.md` (section numbers in the docs below refer to it).

use crate::compose::display::Color;

/// Which format the scenario was written in (the scene itself is always 2.0 semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceVersion {
    V1_3,
    V2_0,
}

#[derive(Debug, Clone)]
pub struct Scene {
    pub source_version: SourceVersion,
    pub stage: Stage,
    pub tracks: Vec<Track>,
    pub cues: Vec<Cue>,
    /// Non-fatal problems found while parsing (unknown plugins, display times outside
    /// the cue lifetime, ...). Each names the JSON path.
    pub warnings: Vec<Warning>,
    /// The `define` assets renderd loads (§4.9): top-level entries of type font or image with
    /// a string `src` or `url`.
    pub assets: Vec<DefineAsset>,
}

// media: define assets and asset sources (SPEC §4.9, §7.4, §7.5).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    Font,
    Image,
    Video,
    Audio,
}

/// A top-level `define` entry that is an asset object.
#[derive(Debug, Clone, PartialEq)]
pub struct DefineAsset {
    /// The define key (a font is registered under it as a family name too).
    pub key: String,
    pub kind: AssetKind,
    /// `src`, else `url`.
    pub src: String,
    /// `family` of a font asset.
    pub family: Option<String>,
}

/// Where an asset `src` points, by the lexical rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetSrc {
    /// Relative to the asset folder: only normal path segments.
    Relative(std::path::PathBuf),
    /// An http(s) URL; its host is checked against the allow-list when it is fetched.
    Remote(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetSrcError {
    #[error("empty source")]
    Empty,
    #[error("scheme '{0}' is not allowed (a relative path inside the asset folder, or https://)")]
    Scheme(String),
    #[error("backslashes and NUL are not allowed in asset paths")]
    BadCharacters,
    #[error("the path leaves the asset folder (absolute, or with '.' / '..' segments)")]
    OutsideBase,
}

/// The lexical rule for an asset `src`: a relative path that stays inside the asset folder
/// (no absolute path, no `.`/`..` segment; a leading `./` is allowed), or an http(s) URL.
/// Used at parse time (a [`Problem`](super::Problem)) and again by the loader.
pub fn classify_asset_src(src: &str) -> Result<AssetSrc, AssetSrcError> {
    let s = src.trim();
    if s.is_empty() {
        return Err(AssetSrcError::Empty);
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(AssetSrc::Remote(s.to_string()));
    }
    if let Some((scheme, _)) = s.split_once(':') {
        let looks_like_scheme = scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme.is_empty() && looks_like_scheme {
            return Err(AssetSrcError::Scheme(scheme.to_string()));
        }
    }
    if s.contains('\\') || s.contains('\0') {
        return Err(AssetSrcError::BadCharacters);
    }
    let rel = s.strip_prefix("./").unwrap_or(s);
    let path = std::path::Path::new(rel);
    let normal = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if s.starts_with('/') || path.is_absolute() || !normal {
        return Err(AssetSrcError::OutsideBase);
    }
    Ok(AssetSrc::Relative(path.to_path_buf()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// JSON path, e.g. `cues[3].root.children[1].pluginChain[0]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseAspect {
    Wide16x9,
    Tall9x16,
    Auto,
}

impl BaseAspect {
    /// Width / height; `Auto` means 16:9 when no video is known (§1.2).
    pub fn ratio(self) -> f64 {
        match self {
            BaseAspect::Tall9x16 => 9.0 / 16.0,
            BaseAspect::Wide16x9 | BaseAspect::Auto => 16.0 / 9.0,
        }
    }
}

/// Insets as fractions 0..1 of the containing box (missing sides are 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Insets {
    pub top: f64,
    pub bottom: f64,
    pub left: f64,
    pub right: f64,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub base_aspect: BaseAspect,
    pub safe_area: Insets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Subtitle,
    /// `free`, and any unknown type (§5).
    Free,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: String,
    pub kind: TrackKind,
    pub layer: i64,
    pub default_style: Style,
    pub default_box_style: Option<Style>,
    /// When present it replaces the type defaults entirely (§5, §11.8).
    pub default_constraints: Option<Constraints>,
    pub safe_area: Insets,
}

#[derive(Debug, Clone)]
pub struct Cue {
    pub id: String,
    /// Index into `Scene::tracks`.
    pub track: usize,
    /// Both ends inclusive (§6.1); computed by §6.2 when absent.
    pub dom_lifetime: (f64, f64),
    pub root: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Group,
    Text { text: String },
    Image { src: String },
    Video { src: String },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// JSON path of the node in the source document (for messages).
    pub path: String,
    pub kind: NodeKind,
    /// The node's own `displayTime`.
    pub display_time: Option<(f64, f64)>,
    /// After inheritance (§7.2.1): own → parent → cue `displayTime`. `None` = no display
    /// time anywhere up the chain.
    pub resolved_display_time: Option<(f64, f64)>,
    pub base_time: Option<(f64, f64)>,
    pub layout: Layout,
    /// The node's own text style (not merged).
    pub style: Style,
    /// The node's own box style (groups only, not merged).
    pub box_style: Option<Style>,
    pub plugins: Vec<PluginEntry>,
    /// `effectScope` present on this node or an ancestor (§11.8 breakout check).
    pub has_effect_scope: bool,
    pub children: Vec<Node>,
}

/// A CSS length as written (`"24px"`, `"1.5em"`, `"2.4rem"`, a bare number = px).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CssLength {
    Px(f64),
    Em(f64),
    Rem(f64),
    Percent(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineHeight {
    /// Multiple of the font size.
    Factor(f64),
    Length(CssLength),
    Normal,
}

/// One `text-shadow` entry; `color: None` means the text colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shadow {
    pub offset_x: CssLength,
    pub offset_y: CssLength,
    pub blur: CssLength,
    pub color: Option<Color>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stroke {
    pub width_rel: f64,
    pub color: Color,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Border {
    pub width_rel: f64,
    pub color: Color,
    pub radius_rel: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Radius {
    Css(CssLength),
    /// A bare number n → round(H × n) px.
    Rel(f64),
}

/// CSS padding: absolute CSS px (`"8px 16px"`) or `{x, y}` fractions of the stage height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Padding {
    /// top, right, bottom, left in CSS px.
    Css([f64; 4]),
    /// horizontal = round(H·x), vertical = round(H·y).
    Rel { x: f64, y: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAlign {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteSpace {
    Normal,
    NoWrap,
    Pre,
    PreLine,
    PreWrap,
}

/// Text style and box style keys (§8, §9, §10). Every field is optional so that styles
/// merge per top-level key, later wins (§8.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Style {
    pub font_family: Option<String>,
    pub font_weight: Option<u16>,
    pub font_size_rel: Option<f64>,
    pub font_size: Option<CssLength>,
    pub line_height: Option<LineHeight>,
    pub color: Option<Color>,
    /// `Some(vec![])` is an explicit `none`.
    pub text_shadow: Option<Vec<Shadow>>,
    pub stroke: Option<Stroke>,
    pub align: Option<TextAlign>,
    /// `textAlign` (ignored by the reference; kept for the compatibility switch).
    pub text_align: Option<TextAlign>,
    pub white_space: Option<WhiteSpace>,
    // Box keys (§10); in a text style they take part in the legacy split (§8.3).
    pub background_color: Option<Color>,
    pub box_bg: Option<Color>,
    pub border: Option<Border>,
    pub border_radius: Option<Radius>,
    pub padding: Option<Padding>,
    pub opacity: Option<f64>,
}

impl Style {
    /// Shallow merge: every key set in `over` replaces the one in `self`.
    pub fn merged(&self, over: &Style) -> Style {
        macro_rules! pick {
            ($($f:ident),*) => { Style { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            font_family,
            font_weight,
            font_size_rel,
            font_size,
            line_height,
            color,
            text_shadow,
            stroke,
            align,
            text_align,
            white_space,
            background_color,
            box_bg,
            border,
            border_radius,
            padding,
            opacity
        )
    }

    /// True when any key that the legacy split moves to the box style is set (§8.3).
    pub fn has_box_keys(&self) -> bool {
        self.background_color.is_some()
            || self.box_bg.is_some()
            || self.border.is_some()
            || self.padding.is_some()
            || self.border_radius.is_some()
            || self.opacity.is_some()
    }

    /// Splits off the box keys (§8.3): returns (text style without them, box style).
    pub fn split_box_keys(&self) -> (Style, Style) {
        let text = Style {
            background_color: None,
            box_bg: None,
            border: None,
            border_radius: None,
            padding: None,
            opacity: None,
            ..self.clone()
        };
        let boxed = Style {
            background_color: self.background_color,
            box_bg: self.box_bg,
            border: self.border,
            border_radius: self.border_radius,
            padding: self.padding,
            opacity: self.opacity,
            ..Style::default()
        };
        (text, boxed)
    }
}

/// Anchor codes of §11.2 as (ax, ay) fractions; unknown codes are `cc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub ax: f64,
    pub ay: f64,
}

impl Anchor {
    pub const CENTER: Anchor = Anchor { ax: 0.5, ay: 0.5 };

    pub fn from_code(code: &str) -> Anchor {
        let (ax, ay) = match code {
            "tl" => (0.0, 0.0),
            "tc" => (0.5, 0.0),
            "tr" => (1.0, 0.0),
            "cl" => (0.0, 0.5),
            "cr" => (1.0, 0.5),
            "bl" => (0.0, 1.0),
            "bc" => (0.5, 1.0),
            "br" => (1.0, 1.0),
            _ => (0.5, 0.5),
        };
        Anchor { ax, ay }
    }
}

/// `transform-origin` resolved to either fractions of the box or CSS px.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OriginComponent {
    Fraction(f64),
    Px(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LayoutTransform {
    /// Fractions of the node's own size (§11.3).
    pub translate: Option<(f64, f64)>,
    pub scale: Option<(f64, f64)>,
    pub rotate_deg: Option<f64>,
    /// (xDeg, yDeg)
    pub skew_deg: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutMode {
    Absolute,
    Flow,
    Grid,
    Stack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Horizontal,
    Vertical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlexAlign {
    Start,
    Center,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Justify {
    Start,
    Center,
    End,
    SpaceBetween,
}

/// `layout.childrenLayout` (§11.6).
#[derive(Debug, Clone, PartialEq)]
pub struct ChildrenLayout {
    pub mode: LayoutMode,
    /// As written; `None` = absent (defaults to horizontal, but the wrap max-width rule
    /// needs to know whether it was explicit).
    pub direction: Option<Direction>,
    pub gap: f64,
    /// As written; `None` = absent.
    pub wrap: Option<bool>,
    /// `"90%"` → 0.9 (clamped 0..1).
    pub max_width_pct: Option<f64>,
    /// Numeric `maxWidth` in CSS px.
    pub max_width_px: Option<f64>,
    pub max_width_rel: Option<f64>,
    pub align: FlexAlign,
    pub justify: Justify,
}

impl ChildrenLayout {
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(Direction::Horizontal)
    }

    pub fn wraps(&self) -> bool {
        self.wrap
            .unwrap_or(self.direction() == Direction::Horizontal)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// Only numeric `{x, y}` (and, recommended, `[x, y]`) positions; `None` = not positioned.
    pub position: Option<(f64, f64)>,
    /// `None` = default (`cc` for positioning).
    pub anchor: Option<Anchor>,
    /// Fractions of the containing block; `None` = auto.
    pub size: (Option<f64>, Option<f64>),
    pub transform: LayoutTransform,
    pub transform_origin: Option<(OriginComponent, OriginComponent)>,
    /// `overflow: hidden | clip`.
    pub clip: bool,
    pub safe_area_clamp: bool,
    pub mode: Option<LayoutMode>,
    pub gap_rel: Option<f64>,
    /// `layout.padding {x, y}` (fractions of the stage height).
    pub padding: Option<(f64, f64)>,
    pub children_layout: Option<ChildrenLayout>,
    /// `override` with mode `absolute`: (offset in own-size fractions, transform).
    pub override_absolute: Option<((f64, f64), LayoutTransform)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintMode {
    Strict,
    Flexible,
    Breakout,
}

/// Track layout constraints (§5, §11.8).
#[derive(Debug, Clone, PartialEq)]
pub struct Constraints {
    pub mode: Option<LayoutMode>,
    pub direction: Direction,
    pub max_width: Option<f64>,
    pub max_height: Option<f64>,
    pub min_width: Option<f64>,
    pub min_height: Option<f64>,
    pub gap: Option<f64>,
    /// (x, y) fractions.
    pub padding: Option<(f64, f64)>,
    pub anchor: Option<Anchor>,
    pub constraint_mode: ConstraintMode,
    pub breakout_enabled: bool,
    pub safe_area: Option<Insets>,
}

impl Constraints {
    /// The type defaults of §5.
    pub fn defaults_for(kind: TrackKind) -> Constraints {
        match kind {
            TrackKind::Subtitle => Constraints {
                mode: Some(LayoutMode::Flow),
                direction: Direction::Vertical,
                max_width: Some(0.8),
                max_height: Some(0.4),
                min_width: Some(0.1),
                min_height: Some(0.05),
                gap: Some(0.02),
                padding: Some((0.02, 0.015)),
                anchor: Some(Anchor::from_code("bc")),
                constraint_mode: ConstraintMode::Flexible,
                breakout_enabled: false,
                safe_area: Some(Insets {
                    top: 0.0,
                    bottom: 0.075,
                    left: 0.05,
                    right: 0.05,
                }),
            },
            TrackKind::Free => Constraints {
                mode: Some(LayoutMode::Absolute),
                direction: Direction::Vertical,
                max_width: Some(1.0),
                max_height: Some(1.0),
                min_width: Some(0.0),
                min_height: Some(0.0),
                gap: Some(0.0),
                padding: Some((0.0, 0.0)),
                anchor: Some(Anchor::CENTER),
                constraint_mode: ConstraintMode::Breakout,
                breakout_enabled: true,
                safe_area: None,
            },
        }
    }
}

/// One bound of a plugin `timeOffset` (§12.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OffsetBound {
    Seconds(f64),
    Percent(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compose {
    Replace,
    Add,
    Multiply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Channel,
    Dom,
    Hybrid,
}

/// One `pluginChain` entry (§12.1) after define resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEntry {
    /// As written, e.g. `cwi-color@2.0.0`.
    pub name: String,
    /// Without the version: `cwi-color`.
    pub id: String,
    pub version: Option<String>,
    pub params: serde_json::Value,
    /// Missing `timeOffset` = `["0%", "100%"]`.
    pub time_offset: (OffsetBound, OffsetBound),
    pub base_time: Option<(f64, f64)>,
    pub compose: Compose,
    pub kind_override: Option<PluginKind>,
    /// JSON path of the entry (for warnings).
    pub path: String,
}

/// The only plugin version installed with the reference renderer (SPEC §12.1).
pub const PLUGIN_VERSION: &str = "2.0.0";

impl PluginEntry {
    /// The id this entry runs: the bare id, or `id@2.0.0`. Any other version (`@1.0.0`,
    /// `@2.0.1`, `@2`, an empty one) names a plugin that is not installed: `None`, no
    /// effect. The reference looks plugins up by exact `name@version` key with only
    /// 2.0.0 installed, so no version range is accepted.
    pub fn resolved_id(&self) -> Option<&str> {
        match self.version.as_deref() {
            None => Some(&self.id),
            Some(v) if v == PLUGIN_VERSION => Some(&self.id),
            Some(_) => None,
        }
    }

    /// The plugin window `[w0, w1]` for a node (§12.2): base interval = entry `baseTime`
    /// ?? node `baseTime` ?? node display time; each bound relative to its own boundary.
    pub fn window(&self, node_base: Option<(f64, f64)>, display: (f64, f64)) -> (f64, f64) {
        let (b0, b1) = self.base_time.or(node_base).unwrap_or(display);
        let d = b1 - b0;
        let w0 = match self.time_offset.0 {
            OffsetBound::Seconds(s) => b0 + s,
            OffsetBound::Percent(p) => b0 + d * p / 100.0,
        };
        let w1 = match self.time_offset.1 {
            OffsetBound::Seconds(s) => b1 + s,
            OffsetBound::Percent(p) => b1 + d * p / 100.0,
        };
        (w0, w1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(a: OffsetBound, b: OffsetBound) -> PluginEntry {
        PluginEntry {
            name: "fadein".into(),
            id: "fadein".into(),
            version: None,
            params: serde_json::Value::Null,
            time_offset: (a, b),
            base_time: None,
            compose: Compose::Replace,
            kind_override: None,
            path: "p".into(),
        }
    }

    #[test]
    fn window_bounds_are_relative_to_their_own_boundary() {
        let e = entry(OffsetBound::Percent(0.0), OffsetBound::Percent(100.0));
        assert_eq!(e.window(None, (2.0, 4.0)), (2.0, 6.0));
        let e = entry(OffsetBound::Seconds(-0.3), OffsetBound::Seconds(0.3));
        let (a, b) = e.window(Some((1.0, 2.0)), (0.0, 10.0));
        assert!((a - 0.7).abs() < 1e-9 && (b - 2.3).abs() < 1e-9);
        let e = entry(OffsetBound::Percent(0.0), OffsetBound::Percent(-10.0));
        assert_eq!(e.window(None, (0.0, 10.0)), (0.0, 9.0));
    }

    #[test]
    fn style_merge_is_per_key() {
        let base = Style {
            color: Some(Color::WHITE),
            font_weight: Some(400),
            ..Default::default()
        };
        let over = Style {
            font_weight: Some(700),
            ..Default::default()
        };
        let m = base.merged(&over);
        assert_eq!(m.font_weight, Some(700));
        assert_eq!(m.color, Some(Color::WHITE));
    }
}
