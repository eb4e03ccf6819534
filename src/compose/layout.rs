//! Layout of the active nodes of a cue at time t (SPEC §7.2, §11): a small CSS box engine that
//! reproduces what the reference DOM renderer does with the same scenario — positioned nodes
//! with shrink-to-fit widths, flex rows with the reference gap model and wrapping, column flex
//! for subtitle tracks, block stacking for free tracks, constraint padding and min/max sizes.
//!
//! All lengths are CSS px of the virtual stage (W × H). Every laid-out node carries a transform
//! from its own box (origin = border-box top-left) to its parent's box (roots: the stage).

use std::collections::HashMap;
use std::sync::Arc;

use crate::anim::{split_text, SplitKind, TextLayout};
use crate::compose::display::Affine;
use crate::compose::style::{box_look, text_look, BoxLook, TextLook, ROOT_FONT_PX};
use crate::media::assets::{DecodedImage, MediaAssets};
use crate::scene::{
    Anchor, ChildrenLayout, ConstraintMode, Constraints, Direction, FlexAlign, Justify, LayoutMode,
    Node, NodeKind, OriginComponent, Style, TextAlign, Track, TrackKind,
};
use crate::text::{FontSpec, PlacedGlyph, ShapedLine, ShapedText, TextEngine};

/// Padding / margins: top, right, bottom, left.
pub type Edges = [f64; 4];

#[derive(Debug, Clone)]
pub struct LaidText {
    pub text: String,
    pub look: TextLook,
    pub font: FontSpec,
    pub shaped: ShapedText,
    /// Top-left of the text block (B) inside the node box.
    pub offset: (f64, f64),
}

#[derive(Debug, Clone)]
pub enum LaidContent {
    Text(LaidText),
    Group {
        look: Option<BoxLook>,
        children: Vec<LaidNode>,
    },
    /// Image and video nodes whose picture is not loaded (no asset loader, empty `src`).
    Empty,
    /// The picture of an image node, or the first frame of a video node (SPEC §7.4, §7.5).
    Picture(LaidPicture),
}

/// A picture drawn at `rect` (x, y, w, h) of its node box.
#[derive(Debug, Clone)]
pub struct LaidPicture {
    pub image: Arc<DecodedImage>,
    pub rect: [f64; 4],
}

#[derive(Debug, Clone)]
pub struct LaidNode {
    /// Index path of the node inside its cue root (for stable per-node seeds).
    pub node_id: String,
    pub w: f64,
    pub h: f64,
    /// Own box → parent box.
    pub to_parent: Affine,
    pub content: LaidContent,
    pub clip: bool,
}

/// The stage and the frame time.
#[derive(Debug, Clone, Copy)]
pub struct StageBox {
    pub w: f64,
    pub h: f64,
    /// `stage.safeArea` of the scenario.
    pub safe_area: crate::scene::Insets,
}

/// What a node inherits from its parent while being laid out.
#[derive(Clone)]
struct Parent<'a> {
    text_style: Style,
    font_px: f64,
    /// Size of the parent box (the stage for roots), for gaps and constraint padding.
    w: f64,
    h: f64,
    /// Containing block for positioned children: (x, y, w, h) in the parent's coordinates,
    /// `None` = the stage.
    positioned_block: Option<(f64, f64, f64, f64)>,
    /// Row-flex child of a group with a non-zero gap (padding reset, §11.6).
    gap_reset: bool,
    track: &'a Track,
    constraints: &'a Constraints,
}

/// Lays out every active node of a cue root at time `t`; nodes re-parented to the stage (§7.2.3)
/// come back as extra roots, in paint order. `text_layouts` holds, by node id, the text nodes
/// whose plugins change their layout at `t` (absent = plain text).
pub fn layout_cue(
    root: &Node,
    track: &Track,
    stage: StageBox,
    t: f64,
    text_layouts: &HashMap<String, TextLayout>,
    text: &mut TextEngine,
) -> Vec<LaidNode> {
    layout_cue_with_media(
        root,
        track,
        stage,
        t,
        text_layouts,
        text,
        &MediaAssets::default(),
    )
}

/// [`layout_cue`] with the job's decoded pictures, which give image and video nodes their
/// natural size.
pub fn layout_cue_with_media(
    root: &Node,
    track: &Track,
    stage: StageBox,
    t: f64,
    text_layouts: &HashMap<String, TextLayout>,
    text: &mut TextEngine,
    media: &MediaAssets,
) -> Vec<LaidNode> {
    let constraints = track
        .default_constraints
        .clone()
        .unwrap_or_else(|| Constraints::defaults_for(track.kind));
    let parent = Parent {
        text_style: track.default_style.clone(),
        font_px: ROOT_FONT_PX,
        w: stage.w,
        h: stage.h,
        positioned_block: None,
        gap_reset: false,
        track,
        constraints: &constraints,
    };
    let mut engine = Engine {
        text,
        stage,
        t,
        text_layouts,
        media,
    };
    let mut roots = Vec::new();
    engine.collect_roots(root, &parent, &mut roots);
    roots
}

/// Is the node drawn at t (SPEC §7.2.2–3)? A node without any display time is never drawn.
pub fn is_active(node: &Node, t: f64) -> bool {
    matches!(node.resolved_display_time, Some((s, e)) if s.is_finite() && e.is_finite() && s <= t && t <= e)
}

struct Engine<'t> {
    text: &'t mut TextEngine,
    stage: StageBox,
    t: f64,
    text_layouts: &'t HashMap<String, TextLayout>,
    media: &'t MediaAssets,
}

/// How a node participates in layout, from its track's constraints (§11.8).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Breakout or absolute: §11.2 positioning only.
    Absolute,
    /// Flow (or grid): flex container, constraint sizing and padding.
    Flow,
}

impl<'t> Engine<'t> {
    fn collect_roots(&mut self, node: &Node, parent: &Parent<'_>, out: &mut Vec<LaidNode>) {
        if is_active(node, self.t) {
            let (laid, extra) = self.layout_positioned_or_block(node, parent);
            out.push(laid);
            out.extend(extra);
        } else if matches!(node.kind, NodeKind::Group) && node.resolved_display_time.is_none() {
            // A group that is never drawn does not host its children: they sit on the stage.
            let child_parent = Parent {
                text_style: self.inherited_text_style(node, parent),
                ..parent.clone()
            };
            for child in &node.children {
                self.collect_roots(child, &child_parent, out);
            }
        }
    }

    fn mode(&self, node: &Node, c: &Constraints) -> Mode {
        let breakout = c.constraint_mode == ConstraintMode::Breakout
            || (c.breakout_enabled && node.has_effect_scope);
        if breakout {
            return Mode::Absolute;
        }
        match node.layout.mode.or(c.mode).unwrap_or(LayoutMode::Absolute) {
            LayoutMode::Flow | LayoutMode::Grid => Mode::Flow,
            LayoutMode::Absolute | LayoutMode::Stack => Mode::Absolute,
        }
    }

    /// Text style after merging (§8.1) and, for groups, the legacy box split (§8.3).
    fn merged_style(&self, node: &Node, parent: &Parent<'_>) -> (Style, Option<Style>) {
        let merged = parent.text_style.merged(&node.style);
        if !matches!(node.kind, NodeKind::Group) {
            return (merged, None);
        }
        let own_box = match (&parent.track.default_box_style, &node.box_style) {
            (Some(d), Some(o)) => Some(d.merged(o)),
            (Some(d), None) => Some(d.clone()),
            (None, Some(o)) => Some(o.clone()),
            (None, None) => None,
        };
        match own_box {
            Some(b) => (merged, Some(b)),
            None if merged.has_box_keys() => {
                let (text, boxed) = merged.split_box_keys();
                (text, Some(boxed))
            }
            None => (merged, None),
        }
    }

    fn inherited_text_style(&self, node: &Node, parent: &Parent<'_>) -> Style {
        self.merged_style(node, parent).0
    }

    /// Constraint padding of a node in flow mode (§11.8.3), relative to the parent's size.
    fn constraint_padding(&self, mode: Mode, parent: &Parent<'_>) -> Edges {
        if mode != Mode::Flow || parent.gap_reset {
            return [0.0; 4];
        }
        let (px, py) = parent.constraints.padding.unwrap_or((0.0, 0.0));
        let (h, v) = ((parent.w * px).round(), (parent.h * py).round());
        [v, h, v, h]
    }

    fn node_padding(
        &self,
        node: &Node,
        mode: Mode,
        parent: &Parent<'_>,
        look: Option<&BoxLook>,
    ) -> Edges {
        let pad = if let Some(p) = look.and_then(|l| l.padding) {
            p
        } else if let Some((x, y)) = node.layout.padding {
            let (h, v) = ((self.stage.h * x).round(), (self.stage.h * y).round());
            [v, h, v, h]
        } else {
            self.constraint_padding(mode, parent)
        };
        // The border sits outside the padding: content starts inside both.
        let border = look.map_or(0.0, |l| l.border_width);
        pad.map(|p| p + border)
    }

    /// A node's padding (box style, layout padding or constraint padding).
    fn padding_of(&self, node: &Node, parent: &Parent<'_>, mode: Mode) -> Edges {
        let look = match node.kind {
            NodeKind::Group => self
                .merged_style(node, parent)
                .1
                .map(|b| box_look(&b, self.stage.h)),
            _ => None,
        };
        self.node_padding(node, mode, parent, look.as_ref())
    }

    /// A node placed by `layout.position` (§11.2), or an unpositioned root at the stage's top-left.
    fn layout_positioned_or_block(
        &mut self,
        node: &Node,
        parent: &Parent<'_>,
    ) -> (LaidNode, Vec<LaidNode>) {
        let c = parent.constraints;
        let mode = self.mode(node, c);
        let (cx, cy, cw, ch) =
            parent
                .positioned_block
                .unwrap_or((0.0, 0.0, self.stage.w, self.stage.h));
        let Some((px, py)) = node.layout.position else {
            // Normal flow at the top-left of the containing block, as a full-width block.
            let avail = cw;
            let mut extra = Vec::new();
            let mut laid = self.layout_at_width(node, parent, mode, avail, true, &mut extra);
            laid.to_parent = Affine::translate(cx as f32, cy as f32);
            return (laid, extra);
        };
        let left = cx + px * cw;
        let top = cy + py * ch;
        let available = (cw - px * cw).max(0.0);
        let (min_c, max_c) = self.intrinsic(node, parent, mode);
        let mut w = max_c.min(min_c.max(available));
        if let Some(fw) = node.layout.size.0 {
            w = fw * cw;
        }
        // The reference page uses content-box sizing: min/max sizes limit the content box.
        let pad = self.padding_of(node, parent, mode);
        let (pad_h, pad_v) = (pad[1] + pad[3], pad[0] + pad[2]);
        if mode == Mode::Flow {
            w = clamp_content(
                w,
                c.min_width.map(|m| m * cw),
                c.max_width.map(|m| m * cw),
                pad_h,
            );
        }
        if let Some(limit) = self.wrap_max_width(node, parent, mode) {
            w = w.min(limit + pad_h);
        }
        let mut extra = Vec::new();
        let mut laid = self.layout_at_width(node, parent, mode, w, false, &mut extra);
        if let Some(fh) = node.layout.size.1 {
            laid.h = laid.h.max(fh * ch);
        }
        if mode == Mode::Flow {
            // Content-box min/max heights; content beyond max-height overflows the box.
            laid.h = clamp_content(
                laid.h,
                c.min_height.map(|m| m * ch),
                c.max_height.map(|m| m * ch),
                pad_v,
            );
        }
        let anchor = node.layout.anchor.unwrap_or(Anchor::CENTER);
        let (left, top) = if node.layout.safe_area_clamp {
            self.clamp_to_safe_area(node, parent, (px, py), anchor, laid.h, (cx, cy, cw, ch))
        } else {
            (left, top)
        };
        laid.to_parent = self.layout_transform(node, left, top, anchor, laid.w, laid.h);
        (laid, extra)
    }

    /// `safeAreaClamp` as the reference does it (§11.7): it measures the node before it is
    /// positioned, as a full-width block (wN = 1 unless a numeric size is given; an empty group
    /// is about one host line tall), and uses bounds mirrored for edge anchors. Centre-anchored
    /// nodes therefore end at x = 0.5; the vertical position barely moves for bottom captions.
    fn clamp_to_safe_area(
        &self,
        node: &Node,
        parent: &Parent<'_>,
        (px, py): (f64, f64),
        anchor: Anchor,
        laid_h: f64,
        (cx, cy, cw, ch): (f64, f64, f64, f64),
    ) -> (f64, f64) {
        const HOST_LINE_PX: f64 = 24.0;
        let stage = self.stage.safe_area;
        let track = parent.track.safe_area;
        let side = |a: f64, b: f64| a.max(b).clamp(0.0, 1.0);
        let (l, r) = (side(stage.left, track.left), side(stage.right, track.right));
        let (t, b) = (side(stage.top, track.top), side(stage.bottom, track.bottom));
        let wn = node.layout.size.0.unwrap_or(1.0);
        let measured_h = match node.kind {
            NodeKind::Group => HOST_LINE_PX,
            _ => laid_h,
        };
        let hn = node.layout.size.1.unwrap_or(measured_h / ch.max(1.0));
        let clamp = |v: f64, lo: f64, hi: f64| if lo > hi { hi } else { v.clamp(lo, hi) };
        let x = clamp(px, l + (1.0 - anchor.ax) * wn, 1.0 - r - anchor.ax * wn);
        let y = clamp(py, t + (1.0 - anchor.ay) * hn, 1.0 - b - anchor.ay * hn);
        (cx + x * cw, cy + y * ch)
    }

    /// O's transform (§11.3): position, anchor shift, layout translate, then scale/rotate/skew
    /// (and the absolute override) about the transform origin.
    fn layout_transform(
        &self,
        node: &Node,
        left: f64,
        top: f64,
        anchor: Anchor,
        w: f64,
        h: f64,
    ) -> Affine {
        let tr = &node.layout.transform;
        let (tx, ty) = tr.translate.unwrap_or((0.0, 0.0));
        let mut shift = (-anchor.ax * w + tx * w, -anchor.ay * h + ty * h);
        let mut m = linear_part(tr);
        if let Some(((ox, oy), over)) = &node.layout.override_absolute {
            shift.0 += ox * w;
            shift.1 += oy * h;
            let (otx, oty) = over.translate.unwrap_or((0.0, 0.0));
            m = m
                .then(Affine::translate((otx * w) as f32, (oty * h) as f32))
                .then(linear_part(over));
        }
        let (ox, oy) = match node.layout.transform_origin {
            Some((x, y)) => (origin_px(x, w), origin_px(y, h)),
            None => (w / 2.0, h / 2.0),
        };
        Affine::translate((left + shift.0) as f32, (top + shift.1) as f32)
            .then(m.about(ox as f32, oy as f32))
    }

    /// The wrap max-width of a horizontal wrapping group (§11.6), if it applies.
    fn wrap_max_width(&self, node: &Node, parent: &Parent<'_>, mode: Mode) -> Option<f64> {
        let cl = node.layout.children_layout.as_ref()?;
        let explicit = cl.wrap == Some(true)
            || (cl.wrap.is_none() && cl.direction == Some(Direction::Horizontal));
        if !explicit || cl.direction() != Direction::Horizontal || mode == Mode::Absolute {
            return None;
        }
        if parent.track.kind == TrackKind::Free && parent.track.default_constraints.is_none() {
            return None;
        }
        let c = parent.constraints;
        let safe = c.safe_area.unwrap_or_default();
        let ratio = [
            Some(1.0 - safe.left - safe.right),
            c.max_width,
            cl.max_width_rel,
            cl.max_width_pct.map(|p| p.clamp(0.0, 1.0)),
        ]
        .into_iter()
        .flatten()
        .fold(1.0f64, f64::min);
        Some(
            (parent.w * ratio)
                .round()
                .min(cl.max_width_px.unwrap_or(f64::INFINITY)),
        )
    }

    fn font_spec(&mut self, look: &TextLook) -> FontSpec {
        let family = self.text.resolve_family(look.family_list.as_deref());
        let size = look.font_px as f32;
        let line_height = look.line_height_px.map(|l| l as f32).unwrap_or(0.0);
        FontSpec {
            family,
            weight: look.weight,
            size,
            line_height,
        }
    }

    fn shape(
        &mut self,
        text: &str,
        look: &TextLook,
        font: &FontSpec,
        max_width: Option<f64>,
    ) -> ShapedText {
        let width = if look.wrap {
            max_width.map(|w| w as f32)
        } else {
            None
        };
        if look.line_height_px.is_some() {
            self.text.shape(text, font, width)
        } else {
            self.text.shape_normal(text, font, width)
        }
    }

    /// Shapes a text node's text as its plugins lay it out at t (PLUGINS §4, §5).
    fn shape_node(
        &mut self,
        node_id: &str,
        text: &str,
        look: &TextLook,
        font: &FontSpec,
        max_width: Option<f64>,
    ) -> ShapedText {
        match self.text_layouts.get(node_id).cloned() {
            None | Some(TextLayout::Plain) => self.shape(text, look, font, max_width),
            Some(TextLayout::WordMargins { margin_milli_em }) => {
                let margin = f64::from(margin_milli_em) / 1000.0 * look.font_px;
                self.shape_word_boxes(text, look, font, max_width, margin as f32)
            }
            Some(TextLayout::Typed {
                prefix_bytes,
                cursor,
            }) => self.shape_typed(text, prefix_bytes, cursor.as_deref(), look, font, max_width),
        }
    }

    /// Word boxes as inline-blocks (PLUGINS §0.1, elastic §4): each word shaped on its own (no
    /// kerning across boxes), widened by `margin` px on each side, separated by breakable spaces;
    /// lines break between boxes only. Line height and baseline are those of the plain text.
    fn shape_word_boxes(
        &mut self,
        text: &str,
        look: &TextLook,
        font: &FontSpec,
        max_width: Option<f64>,
        margin: f32,
    ) -> ShapedText {
        let plain = self.shape(text, look, font, None);
        let line_height = plain.line_height;
        let ascent = plain
            .lines
            .first()
            .map_or(font.size, |l| l.baseline - l.top);
        let spec = FontSpec {
            line_height,
            ..font.clone()
        };
        let space = self
            .text
            .shape(" ", &spec, None)
            .lines
            .first()
            .and_then(|l| l.glyphs.first())
            .map_or(font.size * 0.25, |g| g.w);
        let limit = max_width.filter(|_| look.wrap).map(|w| w as f32 + 0.01);
        let mut lines: Vec<ShapedLine> = Vec::new();
        let new_line = |n: usize| ShapedLine {
            baseline: n as f32 * line_height + ascent,
            top: n as f32 * line_height,
            width: 0.0,
            glyphs: Vec::new(),
        };
        let mut line = new_line(0);
        let mut boxes_on_line = 0;
        let mut pending_space = 0.0f32;
        for seg in split_text(text, SplitKind::Words) {
            if seg.is_space {
                pending_space += space;
                continue;
            }
            let word = text.get(seg.range.clone()).unwrap_or("");
            let shaped = self.text.shape(word, &spec, None);
            let box_w = shaped.width + 2.0 * margin;
            let x = line.width + pending_space;
            let x = if boxes_on_line > 0 && limit.is_some_and(|l| x + box_w > l) {
                let n = lines.len() + 1;
                lines.push(std::mem::replace(&mut line, new_line(n)));
                boxes_on_line = 0;
                0.0
            } else {
                x
            };
            pending_space = 0.0;
            for l in &shaped.lines {
                for g in &l.glyphs {
                    line.glyphs.push(PlacedGlyph {
                        x: x + margin + g.x,
                        y: line.baseline + (g.y - l.baseline),
                        start: seg.range.start + g.start,
                        end: seg.range.start + g.end,
                        ..*g
                    });
                }
            }
            line.width = x + box_w;
            boxes_on_line += 1;
        }
        lines.push(line);
        ShapedText::from_lines(lines, line_height)
    }

    /// Typewriter (PLUGINS §5): only the typed prefix is laid out, then the cursor glyph at
    /// weight 400 on the last line (or the next one when it does not fit). Cursor glyphs carry
    /// byte positions from `text.len()` on, so painting can tell them from the typed text.
    #[allow(clippy::too_many_arguments)]
    fn shape_typed(
        &mut self,
        text: &str,
        prefix_bytes: usize,
        cursor: Option<&str>,
        look: &TextLook,
        font: &FontSpec,
        max_width: Option<f64>,
    ) -> ShapedText {
        let prefix = text.get(..prefix_bytes).unwrap_or(text);
        let typed = self.shape(prefix, look, font, max_width);
        let Some(cursor) = cursor else {
            return typed;
        };
        let line_height = typed.line_height;
        let spec = FontSpec {
            weight: 400,
            line_height,
            ..font.clone()
        };
        let shaped_cursor = self.text.shape(cursor, &spec, None);
        let Some(cline) = shaped_cursor.lines.first() else {
            return typed;
        };
        let limit = max_width.filter(|_| look.wrap).map(|w| w as f32 + 0.01);
        let mut lines = typed.lines;
        let fits = |l: &ShapedLine| limit.is_none_or(|lim| l.width + cline.width <= lim);
        match lines.last() {
            Some(last) if last.glyphs.is_empty() || fits(last) => {}
            Some(last) => {
                let top = last.top + line_height;
                let baseline = last.baseline + line_height;
                lines.push(ShapedLine {
                    baseline,
                    top,
                    width: 0.0,
                    glyphs: Vec::new(),
                });
            }
            None => lines.push(ShapedLine {
                baseline: cline.baseline,
                top: 0.0,
                width: 0.0,
                glyphs: Vec::new(),
            }),
        }
        let end = text.len();
        if let Some(last) = lines.last_mut() {
            let x0 = last.width;
            for g in &cline.glyphs {
                last.glyphs.push(PlacedGlyph {
                    x: x0 + g.x,
                    y: last.baseline + (g.y - cline.baseline),
                    start: end + g.start,
                    end: end + g.end,
                    ..*g
                });
            }
            last.width = x0 + cline.width;
        }
        ShapedText::from_lines(lines, line_height)
    }

    /// (min-content, max-content) border-box widths.
    fn intrinsic(&mut self, node: &Node, parent: &Parent<'_>, mode: Mode) -> (f64, f64) {
        let (style, box_style) = self.merged_style(node, parent);
        match &node.kind {
            NodeKind::Text { text } => {
                let look = text_look(&style, self.stage.h, parent.font_px);
                let font = self.font_spec(&look);
                let pad = self.node_padding(node, mode, parent, None);
                let max = self.shape_node(&node.id, text, &look, &font, None).width as f64;
                let min = if look.wrap {
                    self.shape_node(&node.id, text, &look, &font, Some(0.0))
                        .width as f64
                } else {
                    max
                };
                (min + pad[1] + pad[3], max + pad[1] + pad[3])
            }
            NodeKind::Group => {
                let look = box_style.as_ref().map(|b| box_look(b, self.stage.h));
                let pad = self.node_padding(node, mode, parent, look.as_ref());
                let child_parent = self.child_parent(node, parent, &style, mode, None);
                let kids: Vec<&Node> = node
                    .children
                    .iter()
                    .filter(|c| is_active(c, self.t) && c.layout.position.is_none())
                    .collect();
                let row = matches!(
                    self.arrangement(node, mode),
                    Arrangement::Flex {
                        dir: Direction::Horizontal,
                        ..
                    }
                );
                let gap = self.flex_gap(node, parent);
                let mut min: f64 = 0.0;
                let mut sum = if row { gap } else { 0.0 };
                let mut max: f64 = 0.0;
                for kid in kids {
                    let kid_mode = self.mode(kid, parent.constraints);
                    let (a, b) = self.intrinsic(kid, &child_parent, kid_mode);
                    min = min.max(a);
                    max = max.max(b);
                    sum += b + if row { gap } else { 0.0 };
                }
                let content_max = if row { sum } else { max };
                (min + pad[1] + pad[3], content_max + pad[1] + pad[3])
            }
            // A picture shrinks with its box (max-width: 100%): its min-content width is 0.
            NodeKind::Image { .. } | NodeKind::Video { .. } => {
                match self.media.natural_size(&node.kind) {
                    Some((nw, _)) => {
                        let pad = self.padding_of(node, parent, mode);
                        (pad[1] + pad[3], f64::from(nw) + pad[1] + pad[3])
                    }
                    None => (0.0, 0.0),
                }
            }
        }
    }

    fn child_parent<'p>(
        &self,
        node: &Node,
        parent: &Parent<'p>,
        style: &Style,
        mode: Mode,
        size: Option<(f64, f64)>,
    ) -> Parent<'p> {
        let look = text_look(style, self.stage.h, parent.font_px);
        let (w, h) = size.unwrap_or((parent.w, parent.h));
        let gap_reset = matches!(self.arrangement(node, mode), Arrangement::Flex { .. })
            && self.flex_gap(node, parent) > 0.0;
        Parent {
            text_style: style.clone(),
            font_px: look.font_px,
            w,
            h,
            positioned_block: if node.layout.position.is_some() {
                Some((0.0, 0.0, w, h))
            } else {
                None
            },
            gap_reset,
            track: parent.track,
            constraints: parent.constraints,
        }
    }

    /// How a group arranges its in-flow children.
    fn arrangement(&self, node: &Node, mode: Mode) -> Arrangement {
        match &node.layout.children_layout {
            Some(cl) if matches!(cl.mode, LayoutMode::Flow | LayoutMode::Grid) => {
                Arrangement::Flex {
                    dir: cl.direction(),
                    wrap: cl.wraps() && cl.direction() == Direction::Horizontal,
                    align: cl.align,
                    justify: cl.justify,
                }
            }
            Some(_) => Arrangement::Block,
            None if mode == Mode::Flow => {
                let a = node.layout.anchor.unwrap_or(Anchor::CENTER);
                Arrangement::Flex {
                    dir: Direction::Vertical,
                    wrap: false,
                    align: align_from(a.ax),
                    justify: justify_from(a.ay),
                }
            }
            None => Arrangement::Block,
        }
    }

    /// The reference gap model's per-item spacing (§11.6): horizontal → round(gap·parentW).
    fn flex_gap(&self, node: &Node, parent: &Parent<'_>) -> f64 {
        match &node.layout.children_layout {
            Some(ChildrenLayout { gap, .. }) if *gap > 0.0 => {
                let base = if node.layout.children_layout.as_ref().map(|c| c.direction())
                    == Some(Direction::Vertical)
                {
                    parent.h
                } else {
                    parent.w
                };
                (gap * base).round()
            }
            _ => 0.0,
        }
    }

    /// Row gap between wrapped lines / stacked items from the constraints (subtitle flow).
    fn constraint_gap(&self, node: &Node, parent: &Parent<'_>, mode: Mode) -> f64 {
        if mode != Mode::Flow {
            return 0.0;
        }
        let g = parent
            .constraints
            .gap
            .filter(|g| *g > 0.0)
            .or(node.layout.gap_rel)
            .unwrap_or(0.0);
        (g * parent.h).round()
    }

    /// Lays out `node` with border-box width `w`; children positioned inside.
    fn layout_at_width(
        &mut self,
        node: &Node,
        parent: &Parent<'_>,
        mode: Mode,
        w: f64,
        is_block: bool,
        extra_roots: &mut Vec<LaidNode>,
    ) -> LaidNode {
        let (style, box_style) = self.merged_style(node, parent);
        let c = parent.constraints;
        let clip = node.layout.clip;
        match &node.kind {
            NodeKind::Text { text } => {
                let look = text_look(&style, self.stage.h, parent.font_px);
                let font = self.font_spec(&look);
                let pad = self.node_padding(node, mode, parent, None);
                let mut w = w;
                if is_block && mode == Mode::Flow {
                    w = clamp_content(
                        w,
                        c.min_width.map(|m| m * parent.w),
                        c.max_width.map(|m| m * parent.w),
                        pad[1] + pad[3],
                    );
                }
                let inner_w = (w - pad[1] - pad[3]).max(0.0);
                let shaped = self.shape_node(&node.id, text, &look, &font, Some(inner_w));
                let (bw, bh) = (shaped.width as f64, shaped.height as f64);
                let mut h = bh + pad[0] + pad[2];
                if is_block && mode == Mode::Flow {
                    h = h.max(
                        c.min_height
                            .map(|m| m * parent.h + pad[0] + pad[2])
                            .unwrap_or(0.0),
                    );
                }
                let inner_h = h - pad[0] - pad[2];
                let anchor = node.layout.anchor.or(c.anchor).unwrap_or(Anchor::CENTER);
                let ox = if mode == Mode::Flow {
                    pad[3] + (inner_w - bw) * anchor.ax
                } else {
                    pad[3] + (inner_w - bw) * align_factor(look.align)
                };
                let oy = if mode == Mode::Flow {
                    pad[0] + (inner_h - bh) * anchor.ay
                } else {
                    pad[0]
                };
                let font = FontSpec {
                    line_height: shaped.line_height,
                    ..font
                };
                LaidNode {
                    node_id: node.id.clone(),
                    w,
                    h,
                    to_parent: Affine::IDENTITY,
                    content: LaidContent::Text(LaidText {
                        text: text.clone(),
                        look,
                        font,
                        shaped,
                        offset: (ox, oy),
                    }),
                    clip,
                }
            }
            NodeKind::Group => {
                let look = box_style.as_ref().map(|b| box_look(b, self.stage.h));
                let pad = self.node_padding(node, mode, parent, look.as_ref());
                let mut w = w;
                if is_block && mode == Mode::Flow {
                    w = clamp_content(
                        w,
                        c.min_width.map(|m| m * parent.w),
                        c.max_width.map(|m| m * parent.w),
                        pad[1] + pad[3],
                    );
                }
                let inner_w = (w - pad[1] - pad[3]).max(0.0);
                let arrangement = self.arrangement(node, mode);
                let gap = self.flex_gap(node, parent);
                let row_gap = self.constraint_gap(node, parent, mode);
                let child_parent =
                    self.child_parent(node, parent, &style, mode, Some((w, parent.h)));
                let (mut children, content_h) = self.layout_children(
                    node,
                    &child_parent,
                    arrangement,
                    inner_w,
                    gap,
                    row_gap,
                    (pad[3], pad[0]),
                );
                let mut h = content_h + pad[0] + pad[2];
                if is_block && mode == Mode::Flow {
                    h = h.max(
                        c.min_height
                            .map(|m| m * parent.h + pad[0] + pad[2])
                            .unwrap_or(0.0),
                    );
                }
                // Positioned children: relative to this box when it is positioned, else the stage.
                let positioned_parent = Parent {
                    positioned_block: if node.layout.position.is_some() {
                        Some((pad[3], pad[0], inner_w, (h - pad[0] - pad[2]).max(0.0)))
                    } else {
                        None
                    },
                    ..child_parent.clone()
                };
                for child in node.children.iter().filter(|c| c.layout.position.is_some()) {
                    if !is_active(child, self.t) {
                        continue;
                    }
                    let (laid, more) = self.layout_positioned_or_block(child, &positioned_parent);
                    if node.layout.position.is_some() {
                        children.push(laid);
                        children.extend(more);
                    } else {
                        extra_roots.push(laid);
                        extra_roots.extend(more);
                    }
                }
                LaidNode {
                    node_id: node.id.clone(),
                    w,
                    h,
                    to_parent: Affine::IDENTITY,
                    content: LaidContent::Group { look, children },
                    clip,
                }
            }
            NodeKind::Image { src } | NodeKind::Video { src } => {
                let image = match node.kind {
                    NodeKind::Image { .. } => self.media.image(src),
                    _ => self.media.video_frame(src),
                };
                let pad = self.padding_of(node, parent, mode);
                let (h, content) = match image {
                    Some(image) => {
                        let rect = picture_rect(image.width, image.height, w, pad);
                        (
                            rect[3] + pad[0] + pad[2],
                            LaidContent::Picture(LaidPicture {
                                image: Arc::clone(image),
                                rect,
                            }),
                        )
                    }
                    None => (0.0, LaidContent::Empty),
                };
                LaidNode {
                    node_id: node.id.clone(),
                    w,
                    h,
                    to_parent: Affine::IDENTITY,
                    content,
                    clip,
                }
            }
        }
    }

    /// Places the in-flow children; returns them and the content height.
    #[allow(clippy::too_many_arguments)]
    fn layout_children(
        &mut self,
        node: &Node,
        cp: &Parent<'_>,
        arrangement: Arrangement,
        inner_w: f64,
        gap: f64,
        row_gap: f64,
        (ox, oy): (f64, f64),
    ) -> (Vec<LaidNode>, f64) {
        let kids: Vec<&Node> = node
            .children
            .iter()
            .filter(|c| is_active(c, self.t) && c.layout.position.is_none())
            .collect();
        let mut sink = Vec::new();
        match arrangement {
            Arrangement::Block => {
                let mut y = 0.0;
                let mut out = Vec::new();
                for kid in kids {
                    let mode = self.mode(kid, cp.constraints);
                    let mut laid = self.layout_at_width(kid, cp, mode, inner_w, true, &mut sink);
                    laid.to_parent = Affine::translate(ox as f32, (oy + y) as f32);
                    y += laid.h;
                    out.push(laid);
                }
                out.extend(sink);
                (out, y)
            }
            // Columns are as tall as their items, so main-axis packing (justify) has no free space
            // to distribute; only a min-height could create some, and it is not distributed.
            Arrangement::Flex {
                dir: Direction::Vertical,
                align,
                ..
            } => {
                let mut items = Vec::new();
                for kid in kids {
                    let mode = self.mode(kid, cp.constraints);
                    let (_, max) = self.intrinsic(kid, cp, mode);
                    let mut w = max.min(inner_w);
                    if mode == Mode::Flow && node.layout.children_layout.is_none() {
                        let pad = self.padding_of(kid, cp, mode);
                        w = clamp_content(
                            w,
                            cp.constraints.min_width.map(|m| m * inner_w),
                            cp.constraints.max_width.map(|m| m * inner_w),
                            pad[1] + pad[3],
                        );
                    }
                    items.push(self.layout_at_width(kid, cp, mode, w, false, &mut sink));
                }
                let spacing = gap + row_gap;
                let total: f64 = items.iter().map(|i| i.h).sum::<f64>()
                    + spacing * items.len().saturating_sub(1) as f64
                    + if gap > 0.0 && !items.is_empty() {
                        gap
                    } else {
                        0.0
                    };
                let mut y = if gap > 0.0 { gap } else { 0.0 };
                for item in &mut items {
                    let x = (inner_w - item.w) * align_value(align);
                    item.to_parent = Affine::translate((ox + x) as f32, (oy + y) as f32);
                    y += item.h + spacing;
                }
                items.extend(sink);
                (items, total)
            }
            Arrangement::Flex {
                dir: Direction::Horizontal,
                wrap,
                align,
                justify,
            } => {
                // Intrinsic widths first (without the per-item minimums), then the minimums.
                let subtitle_item_limits =
                    cp.track.kind == TrackKind::Subtitle && cp.track.default_constraints.is_none();
                let mut items = Vec::new();
                for kid in kids {
                    let mode = self.mode(kid, cp.constraints);
                    let (_, max) = self.intrinsic(kid, cp, mode);
                    let mut w = max;
                    if subtitle_item_limits {
                        let pad = self.padding_of(kid, cp, mode);
                        w = clamp_content(
                            w,
                            cp.constraints.min_width.map(|m| m * inner_w),
                            cp.constraints.max_width.map(|m| m * inner_w),
                            pad[1] + pad[3],
                        );
                    }
                    items.push(self.layout_at_width(kid, cp, mode, w, false, &mut sink));
                }
                // Greedy line breaking; the empty wrapper B is the first item (gap only).
                let mut lines: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), gap)];
                for (i, item) in items.iter().enumerate() {
                    let outer = item.w + gap;
                    let (line, used) = lines.last_mut().expect("at least one line");
                    if wrap && !line.is_empty() && *used + outer > inner_w + 0.01 {
                        lines.push((vec![i], outer));
                    } else {
                        line.push(i);
                        *used += outer;
                    }
                }
                let mut y = 0.0;
                for (n, (line, used)) in lines.iter().enumerate() {
                    let line_h = line.iter().map(|&i| items[i].h).fold(0.0, f64::max);
                    let free = inner_w - used;
                    let count = line.len();
                    let (mut x, between) = match justify {
                        Justify::Start => (0.0, 0.0),
                        Justify::Center => (free / 2.0, 0.0),
                        Justify::End => (free, 0.0),
                        Justify::SpaceBetween if count > 1 => (0.0, free / (count - 1) as f64),
                        Justify::SpaceBetween => (0.0, 0.0),
                    };
                    if n == 0 {
                        x += gap; // B's trailing margin
                    }
                    for &i in line {
                        let item = &mut items[i];
                        let iy = (line_h - item.h) * align_value(align);
                        item.to_parent = Affine::translate((ox + x) as f32, (oy + y + iy) as f32);
                        x += item.w + gap + between;
                    }
                    y += line_h;
                    if n + 1 < lines.len() {
                        y += row_gap;
                    }
                }
                items.extend(sink);
                (items, y)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Arrangement {
    Block,
    Flex {
        dir: Direction,
        wrap: bool,
        align: FlexAlign,
        justify: Justify,
    },
}

/// A text block from its lines: width of the widest, height lines × line height.
/// SPEC §7.4: the picture keeps its natural pixel size (1 px = 1 CSS px) at the top-left of the
/// content box, shrunk with its aspect kept only when the box is narrower.
fn picture_rect(nw: u32, nh: u32, box_w: f64, pad: Edges) -> [f64; 4] {
    let (nw, nh) = (f64::from(nw), f64::from(nh));
    let inner = (box_w - pad[1] - pad[3]).max(0.0);
    let k = if inner < nw { inner / nw } else { 1.0 };
    [pad[3], pad[0], nw * k, nh * k]
}

fn align_from(ax: f64) -> FlexAlign {
    if ax < 0.25 {
        FlexAlign::Start
    } else if ax > 0.75 {
        FlexAlign::End
    } else {
        FlexAlign::Center
    }
}

fn justify_from(ay: f64) -> Justify {
    if ay < 0.25 {
        Justify::Start
    } else if ay > 0.75 {
        Justify::End
    } else {
        Justify::Center
    }
}

fn align_value(a: FlexAlign) -> f64 {
    match a {
        FlexAlign::Start => 0.0,
        FlexAlign::Center => 0.5,
        FlexAlign::End => 1.0,
    }
}

fn align_factor(a: TextAlign) -> f64 {
    match a {
        TextAlign::Left => 0.0,
        TextAlign::Center => 0.5,
        TextAlign::Right => 1.0,
    }
}

/// Clamps a border-box size whose min/max limits apply to the content box (content-box sizing).
fn clamp_content(v: f64, min: Option<f64>, max: Option<f64>, padding: f64) -> f64 {
    clamp_opt(v, min.map(|m| m + padding), max.map(|m| m + padding))
}

fn clamp_opt(v: f64, min: Option<f64>, max: Option<f64>) -> f64 {
    let v = max.map_or(v, |m| v.min(m));
    min.map_or(v, |m| v.max(m))
}

fn origin_px(c: OriginComponent, size: f64) -> f64 {
    match c {
        OriginComponent::Fraction(f) => f * size,
        OriginComponent::Px(p) => p,
    }
}

fn linear_part(tr: &crate::scene::LayoutTransform) -> Affine {
    let (sx, sy) = tr.scale.unwrap_or((1.0, 1.0));
    let rot = tr.rotate_deg.unwrap_or(0.0);
    let (kx, ky) = tr.skew_deg.unwrap_or((0.0, 0.0));
    // CSS order scale · rotate · skew: the vector is skewed first, then rotated, then scaled.
    Affine::scale(sx as f32, sy as f32)
        .then(Affine::rotate_deg(rot as f32))
        .then(Affine::skew_deg(kx as f32, ky as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_keep_their_size_unless_the_box_is_narrower() {
        let none = [0.0; 4];
        assert_eq!(picture_rect(40, 20, 100.0, none), [0.0, 0.0, 40.0, 20.0]);
        assert_eq!(picture_rect(40, 20, 40.0, none), [0.0, 0.0, 40.0, 20.0]);
        assert_eq!(picture_rect(40, 20, 20.0, none), [0.0, 0.0, 20.0, 10.0]);
        // Padding (top, right, bottom, left) narrows the content box and offsets the picture.
        assert_eq!(
            picture_rect(40, 20, 30.0, [2.0, 5.0, 2.0, 5.0]),
            [5.0, 2.0, 20.0, 10.0]
        );
        assert_eq!(picture_rect(40, 20, 0.0, none), [0.0, 0.0, 0.0, 0.0]);
    }
}
