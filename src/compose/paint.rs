//! Laid-out nodes + plugin state at time t → display list (SPEC §11.1 box model, §11.10 paint
//! order, §12.5 channel transforms, PLUGINS §0.1 atomic boxes).

use std::collections::HashMap;

use crate::anim::{
    self, AnimInput, BoxAnim, BoxOrigin, GlitchAnim, GlowLayer, InheritedStyle, NodeAnim, ShadowPx,
};
use crate::compose::display::{
    Affine, BlendMode, BoxQuad, Color, DisplayList, DrawItem, GradientQuad, LayerDraw, LayerItem,
    MaskQuad, Perspective,
};
use crate::compose::layout::{LaidContent, LaidNode, LaidText};
use crate::compose::style::ShadowSpec;
use crate::media::assets::{cover_crop, DecodedImage, ImageMasks, MediaAssets};
use crate::scene::PluginEntry;
use crate::text::{raster_scale, MaskStyle, PlacedGlyph, TextEngine, SUBPIXEL_BINS};

/// Per-text-node animation inputs, kept with the laid-out node.
#[derive(Debug, Clone)]
pub struct AnimSource {
    pub plugins: Vec<PluginEntry>,
    pub display: (f64, f64),
    pub base_time: Option<(f64, f64)>,
    pub seed: u64,
}

/// One atomic box of a split text (its animation state and glyphs with their line), or the
/// whole text when nothing is split.
type AtomicRun<'a> = (Option<&'a BoxAnim>, Vec<(usize, PlacedGlyph)>);

pub struct Painter<'a> {
    pub text: &'a mut TextEngine,
    pub out: &'a mut DisplayList,
    pub t: f64,
    /// The job's pictures (plugin assets such as the flames GIF) and their drawn masks.
    pub media: &'a MediaAssets,
    pub images: &'a mut ImageMasks,
}

impl Painter<'_> {
    pub fn paint(
        &mut self,
        node: &LaidNode,
        parent: Affine,
        opacity: f32,
        anims: &HashMap<String, AnimSource>,
    ) {
        let m = parent.then(node.to_parent);
        match &node.content {
            LaidContent::Group { look, children } => {
                let mut opacity = opacity;
                if let Some(look) = look {
                    opacity *= look.opacity as f32;
                    if look.is_visible() {
                        self.out.items.push(DrawItem::Box(BoxQuad {
                            rect: [0.0, 0.0, node.w as f32, node.h as f32],
                            transform: m,
                            radius: look.radius as f32,
                            border_width: look.border_width as f32,
                            fill: look
                                .background
                                .unwrap_or(Color::TRANSPARENT)
                                .with_alpha_mul(opacity),
                            border: look.border_color.with_alpha_mul(opacity),
                        }));
                    }
                }
                for child in children {
                    self.paint(child, m, opacity, anims);
                }
            }
            LaidContent::Text(text) => {
                let anim = match anims.get(&node.node_id) {
                    Some(src) if !src.plugins.is_empty() => {
                        let inherited = InheritedStyle {
                            color: text.look.color,
                            text_shadow: text
                                .look
                                .shadows
                                .iter()
                                .map(|s| ShadowPx {
                                    x: s.x,
                                    y: s.y,
                                    blur: s.blur,
                                    color: s.color,
                                })
                                .collect(),
                        };
                        let input = AnimInput {
                            text: &text.text,
                            entries: &src.plugins,
                            display: src.display,
                            node_base: src.base_time,
                            t: self.t,
                            seed: src.seed,
                        };
                        anim::evaluate_with_style(&input, &inherited)
                    }
                    _ => NodeAnim::default(),
                };
                self.paint_text(text, &anim, m, opacity);
            }
            LaidContent::Picture(pic) => {
                let crop = [
                    0.0,
                    0.0,
                    f64::from(pic.image.width),
                    f64::from(pic.image.height),
                ];
                self.draw_picture(&pic.image, 0, crop, pic.rect, m, opacity);
            }
            LaidContent::Empty => {}
        }
    }

    // media: pictures (image/video nodes, the flames layer).
    /// Draws `crop` (picture pixels) of frame `frame` into `rect` (x, y, w, h of the local
    /// space mapped by `transform`) as an RGBA mask at `alpha`.
    fn draw_picture(
        &mut self,
        image: &DecodedImage,
        frame: usize,
        crop: [f64; 4],
        rect: [f64; 4],
        transform: Affine,
        alpha: f32,
    ) {
        if alpha <= 0.0 || rect[2] <= 0.0 || rect[3] <= 0.0 {
            return;
        }
        let k = f64::from(transform.max_scale());
        let drawn = (rect[2] * k, rect[3] * k);
        let Some(mask) = self.images.mask(image, frame, crop, drawn) else {
            return;
        };
        self.out.items.push(DrawItem::Mask(MaskQuad {
            mask,
            rect: rect.map(|v| v as f32),
            transform,
            color: Color::WHITE.with_alpha_mul(alpha),
        }));
    }

    /// flames (PLUGINS §14): the GIF frame for the elapsed media time, `object-fit: cover` into
    /// the text box E, inside the wrapper (channel transforms apply), behind the glyphs.
    fn paint_flames(&mut self, text: &LaidText, anim: &NodeAnim, wrapper: Affine, alpha: f32) {
        let Some(flames) = &anim.flames else { return };
        let media = self.media;
        let Some(image) = media.plugin_image("flames", anim::FLAMES_ASSET) else {
            return;
        };
        let (bw, bh) = (f64::from(text.shaped.width), f64::from(text.shaped.height));
        let crop = cover_crop(f64::from(image.width), f64::from(image.height), bw, bh);
        let frame = image.frame_index(flames.elapsed);
        let rect = [text.offset.0, text.offset.1, bw, bh];
        let alpha = alpha * flames.opacity.clamp(0.0, 1.0) as f32;
        self.draw_picture(image, frame, crop, rect, wrapper, alpha);
    }

    fn paint_text(&mut self, text: &LaidText, anim: &NodeAnim, m: Affine, opacity: f32) {
        let (bx, by) = (text.offset.0 as f32, text.offset.1 as f32);
        let (bw, bh) = (text.shaped.width, text.shaped.height);
        let (cx, cy) = (bx + bw / 2.0, by + bh / 2.0);
        let ch = &anim.channels;
        // B: channel transform about its centre (§12.5), then E: whole-text DOM transform.
        let channel = Affine::translate(ch.tx as f32, ch.ty as f32)
            .then(Affine::scale(ch.sx as f32, ch.sy as f32))
            .then(Affine::rotate_deg(ch.rot as f32))
            .about(cx, cy);
        // rot: 3-D boxes look through their container's perspective from E's centre.
        let vanishing = (cx, cy);
        let effects = box_transform(&anim.effects, (cx, cy), vanishing);
        let word = anim
            .cwi_word
            .as_ref()
            .map(|w| box_transform(w, (cx, cy), vanishing))
            .unwrap_or(Affine::IDENTITY);
        let base = m.then(channel).then(effects).then(word);
        let base_opacity = opacity
            * (ch.opacity.clamp(0.0, 1.0) as f32)
            * (anim.effects.opacity.clamp(0.0, 1.0) as f32)
            * anim
                .cwi_word
                .as_ref()
                .map_or(1.0, |w| w.opacity.clamp(0.0, 1.0) as f32);
        // E's own colour (glitch) is inherited like the CWI word's.
        let word_color = anim
            .cwi_word
            .as_ref()
            .and_then(|w| w.color)
            .or(anim.effects.color);
        // media: the flames picture lies behind everything of the text, inside the wrapper.
        self.paint_flames(
            text,
            anim,
            m.then(channel),
            opacity * (ch.opacity.clamp(0.0, 1.0) as f32),
        );
        // fx: the glow halo lies under the glyphs; glitch draws the text as its own layer
        // (painting the plain parts through this function again).
        if let Some(glow) = &anim.glow {
            self.paint_glow(text, glow, base, base_opacity);
        }
        if let Some(glitch) = &anim.glitch {
            self.paint_glitch(text, anim, glitch, m, base_opacity);
            return;
        }

        // Group glyphs into atomic boxes: one per split segment, or a single run.
        let glyphs: Vec<(usize, PlacedGlyph)> = text
            .shaped
            .lines
            .iter()
            .enumerate()
            .flat_map(|(li, l)| l.glyphs.iter().map(move |g| (li, *g)))
            .collect();
        // Typewriter: the layout placed the cursor glyphs after the text's last byte.
        let end = text.text.len();
        let runs: Vec<AtomicRun<'_>> = match (&anim.typed, &anim.split) {
            (Some(typed), _) => {
                let (cursor, typed_glyphs): (Vec<_>, Vec<_>) =
                    glyphs.into_iter().partition(|(_, g)| g.start >= end);
                let mut runs = vec![(Some(&typed.text), typed_glyphs)];
                if let Some(c) = &typed.cursor {
                    runs.push((Some(c), cursor));
                }
                runs
            }
            (None, Some(split)) => split
                .segments
                .iter()
                .zip(&split.boxes)
                .map(|(seg, b)| {
                    let gs = glyphs
                        .iter()
                        .filter(|(_, g)| g.start >= seg.range.start && g.start < seg.range.end)
                        .copied()
                        .collect();
                    (Some(b), gs)
                })
                .collect(),
            (None, None) => vec![(None, glyphs)],
        };

        for (bx_anim, gs) in runs {
            if gs.is_empty() {
                continue;
            }
            let (transform, run_rect, box_opacity, color, shadows, brightness, blur) = match bx_anim
            {
                Some(b) => {
                    // The atomic box spans its glyphs on their line; transforms about its centre.
                    let (li, _) = gs[0];
                    let line = &text.shaped.lines[li];
                    let x0 = gs.iter().map(|(_, g)| g.x).fold(f32::INFINITY, f32::min);
                    let x1 = gs
                        .iter()
                        .map(|(_, g)| g.x + g.w)
                        .fold(f32::NEG_INFINITY, f32::max);
                    // The box is one line tall; its origin is its centre or its bottom middle.
                    let origin_y = match b.origin {
                        BoxOrigin::Center => text.shaped.line_height / 2.0,
                        BoxOrigin::CenterBottom => text.shaped.line_height,
                    };
                    let (ox, oy) = (bx + (x0 + x1) / 2.0, by + line.top + origin_y);
                    let rect = [bx + x0, by + line.top, x1 - x0, text.shaped.line_height];
                    (
                        base.then(box_transform(b, (ox, oy), vanishing)),
                        rect,
                        b.opacity.clamp(0.0, 1.0) as f32,
                        b.color.or(word_color),
                        b.text_shadow
                            .as_ref()
                            .or(anim.effects.text_shadow.as_ref())
                            .map(|list| shadow_specs(list)),
                        b.brightness as f32,
                        b.blur_px as f32,
                    )
                }
                // The whole text: E's own shadow and filter (glow, glitch).
                None => (
                    base,
                    [bx, by, bw, bh],
                    1.0,
                    word_color,
                    anim.effects.text_shadow.as_ref().map(|l| shadow_specs(l)),
                    anim.effects.brightness as f32,
                    anim.effects.blur_px as f32,
                ),
            };
            let alpha = base_opacity * box_opacity;
            if alpha <= 0.0 {
                continue;
            }
            let shadows = shadows.unwrap_or_else(|| text.look.shadows.clone());
            // With a stroke, the fill colour is locked to the node colour (SPEC §9).
            let fill = if text.look.stroke.is_some() {
                text.look.color
            } else {
                color.unwrap_or(text.look.color)
            };
            let fill = brighten(fill, brightness).with_alpha_mul(alpha);
            // The rasterisation scale where the run is magnified most (perspective boxes
            // magnify unevenly; for affine maps this is `max_scale()`).
            let scale = transform.max_scale_in(run_rect);
            // Shadows: the last in the list is the bottom one. Neighbouring shadows of one colour
            // and offset at full opacity (the default triple glow) become one combined mask.
            for (s, style) in shadow_layers(&shadows) {
                let c = s.color.with_alpha_mul(alpha);
                if c.a <= 0.0 {
                    continue;
                }
                self.glyph_quads(
                    &gs,
                    text,
                    bx + s.x as f32,
                    by + s.y as f32,
                    transform,
                    scale,
                    style,
                    c,
                );
            }
            let fill_style = if blur > 0.05 {
                MaskStyle::Blur(blur)
            } else {
                MaskStyle::Fill
            };
            self.glyph_quads(&gs, text, bx, by, transform, scale, fill_style, fill);
            if let Some((width, color)) = text.look.stroke {
                let c = color.with_alpha_mul(alpha);
                self.glyph_quads(
                    &gs,
                    text,
                    bx,
                    by,
                    transform,
                    scale,
                    MaskStyle::Stroke(width as f32),
                    c,
                );
            }
        }
    }

    /// fx: the glow plugin's halo behind the text block E (`base`: E's transform): a radial
    /// gradient the size of E in a layer blurred on the GPU, faded by the glow strength.
    fn paint_glow(&mut self, text: &LaidText, glow: &GlowLayer, base: Affine, opacity: f32) {
        let layer_opacity = opacity * glow.opacity.clamp(0.0, 1.0) as f32;
        if layer_opacity <= 0.0 || glow.color.a <= 0.0 {
            return;
        }
        let rect = [
            text.offset.0 as f32,
            text.offset.1 as f32,
            text.shaped.width,
            text.shaped.height,
        ];
        let gradient = DrawItem::Gradient(GradientQuad {
            rect,
            transform: base,
            color: glow.color,
            inner: 0.3,
            outer: 0.8,
        });
        self.out.items.push(DrawItem::Layer(LayerItem::normal(
            vec![gradient],
            glow.blur_px as f32 * base.max_scale(),
            layer_opacity,
        )));
    }

    /// fx: the glitch plugin's isolated layer: the coloured copies (screen blend, shifted,
    /// faded), then the white original with its noise filter and blinks; the node's opacity
    /// (`group_opacity`) fades the layer as a whole.
    fn paint_glitch(
        &mut self,
        text: &LaidText,
        anim: &NodeAnim,
        glitch: &GlitchAnim,
        m: Affine,
        group_opacity: f32,
    ) {
        if group_opacity <= 0.0 {
            return;
        }
        // Inside the layer the group's opacity is not applied again.
        let plain = NodeAnim {
            glow: None,
            glitch: None,
            channels: anim::Channels {
                opacity: 1.0,
                ..anim.channels
            },
            effects: BoxAnim {
                opacity: 1.0,
                ..anim.effects.clone()
            },
            ..anim.clone()
        };
        let start = self.out.items.len();
        let mut blends = Vec::new();
        for copy in &glitch.copies {
            let mut c = plain.clone();
            c.effects.tx += copy.tx;
            c.effects.opacity = copy.opacity;
            c.effects.color = Some(copy.color);
            self.paint_text(text, &c, m, 1.0);
            blends.resize(self.out.items.len() - start, BlendMode::Screen);
        }
        let mut original = plain;
        original.effects.opacity = glitch.original.opacity;
        let white = glitch.original.color.unwrap_or(Color::WHITE);
        let inherited = original
            .effects
            .text_shadow
            .clone()
            .unwrap_or_else(|| shadow_px(&text.look.shadows));
        match glitch.noise {
            Some(u) => {
                // blur(u) on top of a shadow's own blur (σ = r/2): σ' = √(σ² + u²).
                original.effects.color = Some(anim::noise_color(white, u));
                original.effects.blur_px = u;
                original.effects.text_shadow = Some(
                    inherited
                        .iter()
                        .map(|s| ShadowPx {
                            blur: 2.0 * ((s.blur / 2.0).powi(2) + u * u).sqrt(),
                            color: anim::noise_color(s.color, u),
                            ..*s
                        })
                        .collect(),
                );
            }
            None => original.effects.color = Some(white),
        }
        self.paint_text(text, &original, m, 1.0);
        blends.resize(self.out.items.len() - start, BlendMode::Normal);
        let items = self
            .out
            .items
            .drain(start..)
            .zip(blends)
            .map(|(item, blend)| LayerDraw { blend, item })
            .collect();
        self.out.items.push(DrawItem::Layer(LayerItem {
            items,
            blur_sigma: 0.0,
            opacity: group_opacity,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn glyph_quads(
        &mut self,
        glyphs: &[(usize, PlacedGlyph)],
        _text: &LaidText,
        dx: f32,
        dy: f32,
        transform: Affine,
        scale: f32,
        style: MaskStyle,
        color: Color,
    ) {
        // When masks are drawn 1:1 (no rotation, at their raster scale), put each glyph on whole
        // output pixels, as browsers place glyphs without subpixel positioning: sampling a mask
        // at a fractional offset would blur it.
        let rs = raster_scale(scale);
        let snap = transform.is_affine()
            && transform.b == 0.0
            && transform.c == 0.0
            && (transform.a - rs).abs() < 1e-4
            && (transform.d - rs).abs() < 1e-4;
        let bins = f32::from(SUBPIXEL_BINS);
        for (_, g) in glyphs {
            let (pen_x, pen_y) = (dx + g.x, dy + g.y);
            let rect = if snap {
                // Pen position in output pixels: whole pixels plus a quarter-pixel bin that the
                // mask is rasterised with; the baseline on a whole pixel row.
                let ox = transform.a * pen_x + transform.e;
                let q = (ox * bins).round();
                let (whole, bin) = ((q / bins).floor(), (q.rem_euclid(bins)) as u8);
                let oy = (transform.d * pen_y + transform.f).round();
                let Some(mask) = self.text.glyph_mask_at(g.key, scale, bin, style) else {
                    continue;
                };
                let x = (whole + mask.rect[0] * transform.a - transform.e) / transform.a;
                let y = (oy + mask.rect[1] * transform.d - transform.f) / transform.d;
                (mask.mask, [x, y, mask.rect[2], mask.rect[3]])
            } else {
                let Some(mask) = self.text.glyph_mask(g.key, scale, style) else {
                    continue;
                };
                (
                    mask.mask,
                    [
                        pen_x + mask.rect[0],
                        pen_y + mask.rect[1],
                        mask.rect[2],
                        mask.rect[3],
                    ],
                )
            };
            let (mask, rect) = rect;
            self.out.items.push(DrawItem::Mask(MaskQuad {
                mask,
                rect,
                transform,
                color,
            }));
        }
    }
}

/// The shadow layers to draw, bottom first, with the mask style of each. Runs of up to three
/// blurred shadows sharing an opaque colour and an offset are merged into one `Glow` mask:
/// exactly drawing them one over another. Element opacity (a fading character) then scales the
/// merged glow as a whole, which is what CSS opacity does — it composites the element's
/// rendering (shadows included) as one group.
fn shadow_layers(shadows: &[ShadowSpec]) -> Vec<(ShadowSpec, MaskStyle)> {
    let mut out: Vec<(ShadowSpec, MaskStyle)> = Vec::new();
    for s in shadows.iter().rev() {
        let sigma = s.blur as f32 / 2.0;
        if s.blur <= 0.0 {
            out.push((*s, MaskStyle::Fill));
            continue;
        }
        if s.color.a >= 1.0 {
            if let Some((prev, MaskStyle::Glow(sigmas))) = out.last_mut() {
                let same = prev.x == s.x && prev.y == s.y && prev.color == s.color;
                if let Some(free) = sigmas.iter_mut().find(|v| **v == 0.0).filter(|_| same) {
                    *free = sigma;
                    continue;
                }
            }
            out.push((*s, MaskStyle::Glow([sigma, 0.0, 0.0])));
        } else {
            out.push((*s, MaskStyle::Blur(sigma)));
        }
    }
    out
}

/// fx: text-shadow overrides (px) as the painter's shadow specs.
fn shadow_specs(list: &[ShadowPx]) -> Vec<ShadowSpec> {
    list.iter()
        .map(|s| ShadowSpec {
            x: s.x,
            y: s.y,
            blur: s.blur,
            color: s.color,
        })
        .collect()
}

/// fx: the node's shadow specs as text-shadow overrides.
fn shadow_px(list: &[ShadowSpec]) -> Vec<ShadowPx> {
    list.iter()
        .map(|s| ShadowPx {
            x: s.x,
            y: s.y,
            blur: s.blur,
            color: s.color,
        })
        .collect()
}

/// translate(tx, ty) · rotate · scale, to be applied about the box centre.
fn box_affine(b: &BoxAnim) -> Affine {
    Affine::translate(b.tx as f32, b.ty as f32)
        .then(Affine::rotate_deg(b.rotation_deg as f32))
        .then(Affine::scale(b.scale_x as f32, b.scale_y as f32))
}

// rot: the full CSS box transform (PLUGINS.md §0.4 rule 10) with 3-D turns and perspective.

/// The box's transform about its origin `(ox, oy)`: translate · rotate · rotateY · rotateX ·
/// skewX · scale; the 3-D turns are seen through the container's `perspective_px` with its
/// vanishing point at `vanishing` (both in the node's local space), or flattened without one.
/// A box without 3-D turns, skew or perspective gets exactly [`box_affine`] about its origin.
fn box_transform(b: &BoxAnim, (ox, oy): (f32, f32), vanishing: (f32, f32)) -> Affine {
    let flat = b.rotation_x_deg == 0.0
        && b.rotation_y_deg == 0.0
        && b.skew_x_deg == 0.0
        && b.perspective_px.is_none();
    if flat {
        return box_affine(b).about(ox, oy);
    }
    // The box origin after the translation: the 3-D turn happens about it, so the vanishing
    // point is expressed relative to it.
    let (px, py) = (ox + b.tx as f32, oy + b.ty as f32);
    let perspective = b.perspective_px.map(|p| Perspective {
        distance: p as f32,
        vx: vanishing.0 - px,
        vy: vanishing.1 - py,
    });
    Affine::translate(px, py)
        .then(Affine::rotate_3d_deg(
            b.rotation_x_deg as f32,
            b.rotation_y_deg as f32,
            b.rotation_deg as f32,
            perspective,
        ))
        .then(Affine::skew_deg(b.skew_x_deg as f32, 0.0))
        .then(Affine::scale(b.scale_x as f32, b.scale_y as f32))
        .then(Affine::translate(-ox, -oy))
}

/// CSS `brightness()` on a flat colour.
fn brighten(c: Color, k: f32) -> Color {
    if (k - 1.0).abs() < 1e-4 {
        return c;
    }
    Color {
        r: (c.r * k).clamp(0.0, 1.0),
        g: (c.g * k).clamp(0.0, 1.0),
        b: (c.b * k).clamp(0.0, 1.0),
        a: c.a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glow(blur: f64, a: f32) -> ShadowSpec {
        ShadowSpec {
            x: 0.0,
            y: 0.0,
            blur,
            color: Color { a, ..Color::BLACK },
        }
    }

    fn near(got: (f32, f32), want: (f32, f32)) {
        assert!(
            (got.0 - want.0).abs() < 1e-3 && (got.1 - want.1).abs() < 1e-3,
            "{got:?} != {want:?}"
        );
    }

    #[test]
    fn flat_boxes_keep_their_affine_transform() {
        let b = BoxAnim {
            tx: 3.0,
            ty: -2.0,
            rotation_deg: 30.0,
            scale_x: 1.5,
            scale_y: 0.5,
            ..BoxAnim::default()
        };
        let m = box_transform(&b, (10.0, 20.0), (0.0, 0.0));
        assert_eq!(m, box_affine(&b).about(10.0, 20.0));
        // The same through the 3-D path (skew 0 is not "flat" by the test above): equal up to
        // rounding, and still affine.
        let skewed = BoxAnim {
            skew_x_deg: 1e-9,
            ..b.clone()
        };
        let m3 = box_transform(&skewed, (10.0, 20.0), (0.0, 0.0));
        assert!(m3.is_affine());
        for (x, y) in [(10.0, 20.0), (0.0, 0.0), (25.0, 7.0)] {
            near(m3.apply(x, y), m.apply(x, y));
        }
    }

    #[test]
    fn turned_boxes_follow_css_order_about_their_origin() {
        // A box centred at (100, 50) in a container whose centre (vanishing point) is (60, 50),
        // moved 10 px right, turned 180° about Y: mirrored about its moved origin (110, 50).
        let b = BoxAnim {
            tx: 10.0,
            rotation_y_deg: 180.0,
            perspective_px: Some(800.0),
            ..BoxAnim::default()
        };
        let m = box_transform(&b, (100.0, 50.0), (60.0, 50.0));
        near(m.apply(100.0, 50.0), (110.0, 50.0));
        near(m.apply(104.0, 40.0), (106.0, 40.0));
        // Scale applies before the turn: scale 2 then mirror.
        let b = BoxAnim {
            scale_x: 2.0,
            scale_y: 2.0,
            ..b
        };
        near(
            box_transform(&b, (100.0, 50.0), (60.0, 50.0)).apply(104.0, 40.0),
            (102.0, 30.0),
        );
        // rotateY(60°) under perspective 800 from the vanishing point (60, 50): the box's
        // right edge (x + 10 about the origin 100) goes back by Z = −10·sin 60° and is pulled
        // toward the vanishing point by 800 / (800 + 8.66).
        let b = BoxAnim {
            rotation_y_deg: 60.0,
            perspective_px: Some(800.0),
            ..BoxAnim::default()
        };
        let m = box_transform(&b, (100.0, 50.0), (60.0, 50.0));
        let k = 800.0 / (800.0 + 10.0 * 3f32.sqrt() / 2.0);
        near(m.apply(110.0, 50.0), (60.0 + (105.0 - 60.0) * k, 50.0));
        near(
            m.apply(110.0, 60.0),
            (60.0 + (105.0 - 60.0) * k, 50.0 + 10.0 * k),
        );
        // The origin stays in the z = 0 plane: unmoved by the perspective.
        near(m.apply(100.0, 50.0), (100.0, 50.0));
    }

    #[test]
    fn the_default_glow_becomes_one_mask() {
        let layers = shadow_layers(&[glow(2.0, 1.0), glow(4.0, 1.0), glow(8.0, 1.0)]);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].1, MaskStyle::Glow([4.0, 2.0, 1.0]));
    }

    #[test]
    fn translucent_or_different_shadows_stay_separate() {
        let translucent = shadow_layers(&[glow(2.0, 0.8), glow(4.0, 0.8)]);
        assert_eq!(translucent.len(), 2, "translucent colour");
        let offset = ShadowSpec {
            x: 2.0,
            ..glow(4.0, 1.0)
        };
        assert_eq!(
            shadow_layers(&[glow(2.0, 1.0), offset]).len(),
            2,
            "different offsets"
        );
        assert_eq!(shadow_layers(&[glow(0.0, 1.0)])[0].1, MaskStyle::Fill);
    }
}
