//! Fonts, shaping and glyph rasterisation.
//!
//! Shaping and line breaking come from cosmic-text (rustybuzz shaping, UAX #14 line breaking,
//! per-script font fallback). Glyphs are rasterised from their unhinted outlines with zeno at
//! the size they are drawn (bucketed scale), so text stays crisp at every animated scale; the
//! resulting coverage masks are cached here by content and on the GPU by mask id.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cosmic_text::{
    Attrs, Buffer, CacheKey, CacheKeyFlags, Family, FontSystem, Metrics, Shaping, SwashCache,
    SwashContent, Weight, Wrap,
};
use zeno::{Format, Mask as ZenoMask, Origin, Stroke, Transform};

use crate::compose::display::{Mask, MaskFormat};

/// Families the reference renderer actually used (shared/motiontext/reference/README.md).
pub const DEFAULT_FAMILY: &str = "Noto Sans CJK KR";
const SANS_SERIF_FAMILY: &str = "Liberation Sans";
const SERIF_FAMILY: &str = "Liberation Serif";
const MONOSPACE_FAMILY: &str = "Liberation Mono";

/// A family list resolved against the fonts present, plus the requested face.
#[derive(Debug, Clone, PartialEq)]
pub struct FontSpec {
    /// The first family of the CSS list that exists (or the default).
    pub family: String,
    pub weight: u16,
    /// Font size in CSS px.
    pub size: f32,
    /// Line height in CSS px.
    pub line_height: f32,
}

/// One glyph placed in a shaped text block; coordinates in CSS px relative to the block's
/// top-left, `y` is the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacedGlyph {
    pub x: f32,
    pub y: f32,
    /// Byte range of the source text this glyph belongs to.
    /// Advance width.
    pub w: f32,
    pub start: usize,
    pub end: usize,
    pub key: GlyphId,
}

/// What identifies a glyph outline: font face, glyph, size, weight (for variable fonts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlyphId {
    font: cosmic_text::fontdb::ID,
    glyph: u16,
    size_bits: u32,
    weight: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShapedLine {
    /// Baseline y relative to the block top.
    pub baseline: f32,
    pub top: f32,
    pub width: f32,
    pub glyphs: Vec<PlacedGlyph>,
}

/// A shaped, line-broken block of text.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedText {
    pub lines: Vec<ShapedLine>,
    /// Widest line.
    pub width: f32,
    /// Lines × line height.
    pub height: f32,
    pub line_height: f32,
}

impl ShapedText {
    /// Lines stacked `line_height` apart: as wide as the widest, at least one line tall.
    pub fn from_lines(lines: Vec<ShapedLine>, line_height: f32) -> Self {
        let width = lines.iter().map(|l| l.width).fold(0.0, f32::max);
        let height = lines.len().max(1) as f32 * line_height;
        ShapedText {
            lines,
            width,
            height,
            line_height,
        }
    }
}

/// How a glyph mask is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskStyle {
    Fill,
    /// Outline stroke of this width (CSS px), centred on the outline.
    Stroke(f32),
    /// The fill blurred with a Gaussian of this standard deviation (CSS px), for shadows.
    Blur(f32),
    /// Up to three blurs of the fill (σ in CSS px; 0 = unused) stacked as one mask: the
    /// coverage of drawing each in the same colour on top of the others, 1 − Π(1 − bᵢ). Equals
    /// drawing the shadows one by one when they share colour, offset and full opacity.
    Glow([f32; 3]),
}

/// A rasterised glyph mask and where it sits: `rect` = (x, y, w, h) in CSS px relative to the
/// glyph's pen position on the baseline.
#[derive(Debug, Clone)]
pub struct GlyphMask {
    pub mask: Arc<Mask>,
    pub rect: [f32; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MaskKey {
    glyph: GlyphId,
    /// Rasterisation scale bucket (quarter-octave steps), see `scale_bucket`.
    bucket: i32,
    /// Horizontal subpixel offset in quarters of a raster pixel (0..=3).
    subpixel: u8,
    style: StyleKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StyleKey {
    Fill,
    Stroke(u32),
    Blur(u32),
    Glow([u32; 3]),
}

/// Owns the font database and every cache derived from it. One per render thread.
pub struct TextEngine {
    fonts: FontSystem,
    swash: SwashCache,
    masks: HashMap<MaskKey, Option<GlyphMask>>,
    family_cache: HashMap<String, String>,
    next_mask_id: u64,
    /// Extra family names (lower case) → a family present: define fonts (SPEC §4.9).
    aliases: HashMap<String, String>,
}

impl std::fmt::Debug for TextEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEngine")
            .field("faces", &self.fonts.db().len())
            .finish()
    }
}

/// Fonts could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error(
        "no fonts found (system fonts{}); install fonts-noto-cjk and fonts-liberation2 \
         (scripts/setup-system) or set [fonts] dir",
        .extra_dir.as_ref().map(|d| format!(" and {}", d.display())).unwrap_or_default()
    )]
    NoFonts {
        extra_dir: Option<std::path::PathBuf>,
    },
}

/// The font database: system fonts (fontconfig) plus a configured folder, loaded once per
/// process and shared by the text engine of every render.
#[derive(Clone)]
pub struct FontLibrary {
    db: Arc<cosmic_text::fontdb::Database>,
    locale: String,
}

impl std::fmt::Debug for FontLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontLibrary")
            .field("faces", &self.db.len())
            .finish()
    }
}

/// The colour emoji face (Debian: fonts-noto-color-emoji), tried first for characters the
/// requested face and the script's faces lack.
pub const EMOJI_FAMILY: &str = "Noto Color Emoji";

/// cosmic-text's platform fallback with the colour emoji face moved to the front of the common
/// list: emoji are script Common, so they get the common list, where DejaVu Sans (monochrome
/// outlines for many emoji) would otherwise come first. Browsers draw them in colour.
#[derive(Debug)]
struct EmojiFirstFallback;

impl cosmic_text::Fallback for EmojiFirstFallback {
    fn common_fallback(&self) -> &[&'static str] {
        static COMMON: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            let platform = cosmic_text::PlatformFallback;
            std::iter::once(EMOJI_FAMILY)
                .chain(
                    platform
                        .common_fallback()
                        .iter()
                        .copied()
                        .filter(|f| *f != EMOJI_FAMILY),
                )
                .collect()
        });
        &COMMON
    }

    fn forbidden_fallback(&self) -> &[&'static str] {
        cosmic_text::PlatformFallback.forbidden_fallback()
    }

    fn script_fallback(&self, script: unicode_script::Script, locale: &str) -> &[&'static str] {
        cosmic_text::PlatformFallback.script_fallback(script, locale)
    }
}

impl FontLibrary {
    /// Loads the system fonts and every font file under `extra_dir`; an empty result is an error
    /// (text could not be drawn at all).
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, FontError> {
        let (locale, mut db) = FontSystem::new().into_locale_and_db();
        if let Some(dir) = extra_dir {
            db.load_fonts_dir(dir);
        }
        if db.is_empty() {
            return Err(FontError::NoFonts {
                extra_dir: extra_dir.map(Path::to_path_buf),
            });
        }
        db.set_sans_serif_family(SANS_SERIF_FAMILY);
        db.set_serif_family(SERIF_FAMILY);
        db.set_monospace_family(MONOSPACE_FAMILY);
        tracing::info!(faces = db.len(), "fonts loaded");
        Ok(FontLibrary {
            db: Arc::new(db),
            locale,
        })
    }

    pub fn face_count(&self) -> usize {
        self.db.len()
    }

    /// A text engine (shaping state and glyph caches) over these fonts, for one render thread.
    pub fn engine(&self) -> TextEngine {
        let fonts = FontSystem::new_with_locale_and_db_and_fallback(
            self.locale.clone(),
            (*self.db).clone(),
            EmojiFirstFallback,
        );
        TextEngine {
            fonts,
            swash: SwashCache::new(),
            masks: HashMap::new(),
            family_cache: HashMap::new(),
            next_mask_id: 1,
            aliases: HashMap::new(),
        }
    }
}

impl TextEngine {
    /// Number of font faces known.
    pub fn face_count(&self) -> usize {
        self.fonts.db().len()
    }

    /// Resolves a CSS `font-family` list to the first family present. Generic names map to the
    /// reference's faces: `sans-serif`, Arial and Helvetica → Liberation Sans; no usable family
    /// → Noto Sans CJK KR.
    pub fn resolve_family(&mut self, css_list: Option<&str>) -> String {
        let Some(list) = css_list else {
            return self.default_family();
        };
        if let Some(hit) = self.family_cache.get(list) {
            return hit.clone();
        }
        let resolved = list
            .split(',')
            .map(|f| f.trim().trim_matches(|c| c == '"' || c == '\'').trim())
            .filter(|f| !f.is_empty())
            .find_map(|name| self.family_present(name))
            .unwrap_or_else(|| self.default_family());
        self.family_cache.insert(list.to_string(), resolved.clone());
        resolved
    }

    /// Noto Sans CJK KR when installed, else the first family there is (text must never be
    /// shaped with a family that matches nothing).
    fn default_family(&self) -> String {
        self.family_present(DEFAULT_FAMILY)
            .or_else(|| {
                self.fonts
                    .db()
                    .faces()
                    .flat_map(|f| f.families.first())
                    .map(|(n, _)| n.clone())
                    .next()
            })
            .unwrap_or_else(|| DEFAULT_FAMILY.to_string())
    }

    // media: define fonts.
    /// Loads a font file (a `define` font asset) and makes it answer to `names` as well as to
    /// its own family name (SPEC §4.9 Recommended: the define key and its `family`). Returns
    /// the number of faces loaded (0: not a font).
    pub fn register_font(&mut self, data: Arc<Vec<u8>>, names: &[String]) -> usize {
        let ids = self
            .fonts
            .db_mut()
            .load_font_source(cosmic_text::fontdb::Source::Binary(data));
        let family = ids.first().and_then(|id| {
            self.fonts
                .db()
                .face(*id)
                .and_then(|face| face.families.first().map(|(f, _)| f.clone()))
        });
        if let Some(family) = family {
            for name in names {
                self.aliases.insert(name.to_lowercase(), family.clone());
            }
            self.family_cache.clear();
        }
        ids.len()
    }

    fn family_present(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        if let Some(family) = self.aliases.get(&name.to_lowercase()) {
            return Some(family.clone());
        }
        let mapped = match lower.as_str() {
            "sans-serif" | "arial" | "helvetica" | "helvetica neue" | "system-ui" => {
                SANS_SERIF_FAMILY
            }
            "serif" | "times" | "times new roman" => SERIF_FAMILY,
            "monospace" | "courier" | "courier new" => MONOSPACE_FAMILY,
            _ => name,
        };
        let db = self.fonts.db();
        db.faces()
            .flat_map(|face| face.families.iter())
            .find(|(fam, _)| fam.eq_ignore_ascii_case(mapped))
            .map(|(fam, _)| fam.clone())
    }

    /// Shapes `text` with `spec`. `max_width` (CSS px) enables wrapping at break opportunities;
    /// a word longer than the line overflows rather than breaking (CSS `word-break: normal`).
    pub fn shape(&mut self, text: &str, spec: &FontSpec, max_width: Option<f32>) -> ShapedText {
        let metrics = Metrics::new(spec.size.max(1.0), spec.line_height.max(1.0));
        let mut buffer = Buffer::new(&mut self.fonts, metrics);
        buffer.set_wrap(if max_width.is_some() {
            Wrap::Word
        } else {
            Wrap::None
        });
        // A tiny epsilon: a line exactly as wide as the box must not wrap.
        buffer.set_size(max_width.map(|w| w.max(0.0) + 0.01), None);
        let attrs = Attrs::new()
            .family(Family::Name(&spec.family))
            .weight(Weight(spec.weight));
        buffer.set_text(text, &attrs, Shaping::Advanced, None);
        buffer.shape_until_scroll(&mut self.fonts, false);

        let mut lines = Vec::new();
        for run in buffer.layout_runs() {
            let glyphs = run
                .glyphs
                .iter()
                .map(|g| PlacedGlyph {
                    x: g.x + g.x_offset * g.font_size,
                    y: run.line_y - g.y_offset * g.font_size,
                    w: g.w,
                    start: g.start,
                    end: g.end,
                    key: GlyphId {
                        font: g.font_id,
                        glyph: g.glyph_id,
                        size_bits: g.font_size.to_bits(),
                        weight: g.font_weight.0,
                    },
                })
                .collect();
            lines.push(ShapedLine {
                baseline: run.line_y,
                top: run.line_top,
                width: run.line_w,
                glyphs,
            });
        }
        ShapedText::from_lines(lines, spec.line_height.max(1.0))
    }

    /// CSS `line-height: normal` for a family at `size` px: the face's ascent + descent + line
    /// gap, each rounded to whole pixels as Chromium does.
    pub fn normal_line_height(&mut self, family: &str, weight: u16, size: f32) -> f32 {
        let query = cosmic_text::fontdb::Query {
            families: &[cosmic_text::fontdb::Family::Name(family)],
            weight: cosmic_text::fontdb::Weight(weight),
            ..Default::default()
        };
        let id = self.fonts.db().query(&query);
        id.map(|id| self.face_line_height(id, weight, size))
            .unwrap_or(size * 1.15)
    }

    fn face_line_height(&mut self, id: cosmic_text::fontdb::ID, weight: u16, size: f32) -> f32 {
        let Some(font) = self.fonts.get_font(id, Weight(weight)) else {
            return size * 1.15;
        };
        let m = font.as_swash().metrics(&[]);
        let upem = f32::from(m.units_per_em.max(1));
        let px = |v: f32| (v / upem * size).round();
        px(m.ascent) + px(m.descent) + px(m.leading)
    }

    /// Like [`TextEngine::shape`] with `line-height: normal`: the tallest normal line height of
    /// the faces the text actually uses (Hangul falls back to a taller CJK face).
    pub fn shape_normal(
        &mut self,
        text: &str,
        spec: &FontSpec,
        max_width: Option<f32>,
    ) -> ShapedText {
        let primary = self.normal_line_height(&spec.family, spec.weight, spec.size);
        let first = self.shape(
            text,
            &FontSpec {
                line_height: primary,
                ..spec.clone()
            },
            max_width,
        );
        let mut faces: Vec<cosmic_text::fontdb::ID> = first
            .lines
            .iter()
            .flat_map(|l| l.glyphs.iter().map(|g| g.key.font))
            .collect();
        faces.sort();
        faces.dedup();
        let tallest = faces
            .into_iter()
            .map(|id| self.face_line_height(id, spec.weight, spec.size))
            .fold(primary, f32::max);
        if tallest > primary + 0.01 {
            self.shape(
                text,
                &FontSpec {
                    line_height: tallest,
                    ..spec.clone()
                },
                max_width,
            )
        } else {
            first
        }
    }

    /// Width of `text` on one line, CSS px.
    pub fn measure(&mut self, text: &str, spec: &FontSpec) -> f32 {
        self.shape(text, spec, None).width
    }

    /// The coverage mask of a glyph drawn at `draw_scale` (CSS px → output px), rasterised at
    /// the nearest quarter-octave bucket at or above that scale. `None` for empty glyphs (space).
    pub fn glyph_mask(
        &mut self,
        glyph: GlyphId,
        draw_scale: f32,
        style: MaskStyle,
    ) -> Option<GlyphMask> {
        self.glyph_mask_at(glyph, draw_scale, 0, style)
    }

    /// Like [`TextEngine::glyph_mask`], with the outline shifted right by `subpixel` quarters of
    /// a raster pixel before rasterising (subpixel glyph positioning; the caller places the
    /// mask on whole pixels).
    pub fn glyph_mask_at(
        &mut self,
        glyph: GlyphId,
        draw_scale: f32,
        subpixel: u8,
        style: MaskStyle,
    ) -> Option<GlyphMask> {
        let subpixel = subpixel % SUBPIXEL_BINS;
        // Hostile sizes (a 10 000 px font, a 1 000 px blur) must not allocate gigabytes: the
        // raster scale is capped so an em is at most MAX_RASTER_EM px (drawn magnified beyond),
        // blurs and strokes are capped in CSS px.
        let size = f32::from_bits(glyph.size_bits).max(1.0);
        let bucket = scale_bucket(draw_scale).min(scale_bucket_floor(MAX_RASTER_EM / size));
        let style = match style {
            MaskStyle::Blur(sg) => MaskStyle::Blur(sg.min(MAX_BLUR_SIGMA)),
            MaskStyle::Glow(list) => MaskStyle::Glow(list.map(|sg| sg.min(MAX_BLUR_SIGMA))),
            MaskStyle::Stroke(w) => MaskStyle::Stroke(w.min(size)),
            MaskStyle::Fill => MaskStyle::Fill,
        };
        // Blur radii are quantised to quarter CSS pixels: an animated blur (slideup, a tweened
        // text-shadow) then reuses a handful of cached masks instead of blurring every frame.
        let steps = |v: f32| (v.max(0.0) * BLUR_STEPS).round() as u32;
        let unsteps = |k: u32| k as f32 / BLUR_STEPS;
        let (style, style_key) = match style {
            MaskStyle::Fill => (style, StyleKey::Fill),
            MaskStyle::Stroke(w) => (style, StyleKey::Stroke((w.max(0.0) * 64.0).round() as u32)),
            MaskStyle::Blur(sg) => (
                MaskStyle::Blur(unsteps(steps(sg))),
                StyleKey::Blur(steps(sg)),
            ),
            MaskStyle::Glow(list) => (
                MaskStyle::Glow(list.map(|v| unsteps(steps(v)))),
                StyleKey::Glow(list.map(steps)),
            ),
        };
        let key = MaskKey {
            glyph,
            bucket,
            subpixel,
            style: style_key,
        };
        if let Some(hit) = self.masks.get(&key) {
            return hit.clone();
        }
        let made = self.rasterise(glyph, bucket_scale(bucket), subpixel, style);
        self.masks.insert(key, made.clone());
        made
    }

    fn rasterise(
        &mut self,
        glyph: GlyphId,
        scale: f32,
        subpixel: u8,
        style: MaskStyle,
    ) -> Option<GlyphMask> {
        let size = f32::from_bits(glyph.size_bits);
        let (cache_key, _, _) = CacheKey::new(
            glyph.font,
            glyph.glyph,
            size,
            (0.0, 0.0),
            Weight(glyph.weight),
            CacheKeyFlags::DISABLE_HINTING,
        );
        let shift = f32::from(subpixel) / f32::from(SUBPIXEL_BINS);
        let has_outline = self
            .swash
            .get_outline_commands(&mut self.fonts, cache_key)
            .is_some_and(|c| !c.is_empty());
        let (mut pixels, mut w, mut h, mut left, mut top) = if has_outline {
            let commands = self
                .swash
                .get_outline_commands(&mut self.fonts, cache_key)?;
            // Font outlines are y-up; flip to the screen's y-down so placement.top is the top
            // row's y.
            let transform = Some(Transform::scale(scale, -scale).then_translate(shift, 0.0));
            let (pixels, placement) = match style {
                MaskStyle::Stroke(width) => ZenoMask::new(commands)
                    .origin(Origin::TopLeft)
                    .format(Format::Alpha)
                    .transform(transform)
                    .style(Stroke::new(width * scale))
                    .render(),
                MaskStyle::Fill | MaskStyle::Blur(_) | MaskStyle::Glow(_) => {
                    ZenoMask::new(commands)
                        .origin(Origin::TopLeft)
                        .format(Format::Alpha)
                        .transform(transform)
                        .render()
                }
            };
            (
                pixels,
                placement.width,
                placement.height,
                placement.left,
                placement.top,
            )
        } else {
            // No outline: a colour glyph (CBDT bitmap / COLR) or nothing at all (space).
            let image = self.color_image(glyph, size * scale, shift)?;
            match style {
                MaskStyle::Fill => {
                    return Some(self.finish(
                        image.rgba,
                        MaskFormat::Rgba,
                        [
                            image.left,
                            image.top,
                            image.width as i32,
                            image.height as i32,
                        ],
                        scale,
                    ));
                }
                // Chromium does not stroke colour glyphs (-webkit-text-stroke leaves emoji as
                // they are).
                MaskStyle::Stroke(_) => return None,
                // Shadows and glows of a colour glyph come from its alpha, as in browsers.
                MaskStyle::Blur(_) | MaskStyle::Glow(_) => (
                    image
                        .rgba
                        .chunks_exact(4)
                        .map(|p| p[3])
                        .collect::<Vec<u8>>(),
                    image.width,
                    image.height,
                    image.left,
                    image.top,
                ),
            }
        };
        if w == 0 || h == 0 {
            return None;
        }
        let sigmas: Vec<f32> = match style {
            MaskStyle::Blur(sigma) => vec![sigma * scale],
            MaskStyle::Glow(list) => list
                .iter()
                .map(|s| s * scale)
                .filter(|s| *s > 0.05)
                .collect(),
            MaskStyle::Fill | MaskStyle::Stroke(_) => Vec::new(),
        };
        if let Some(max_sigma) = sigmas
            .iter()
            .copied()
            .reduce(f32::max)
            .filter(|s| *s > 0.05)
        {
            let pad = (max_sigma * 3.0).ceil() as u32;
            let layers: Vec<Vec<u8>> = sigmas
                .iter()
                .map(|&sg| gaussian_blur(&pixels, w, h, pad, sg))
                .collect();
            pixels = combine_over(&layers);
            w += 2 * pad;
            h += 2 * pad;
            left -= pad as i32;
            top -= pad as i32;
        }
        Some(self.finish(
            pixels,
            MaskFormat::Alpha,
            [left, top, w as i32, h as i32],
            scale,
        ))
    }

    /// Wraps rasterised pixels as a cached mask; `raster_rect` = (left, top, w, h) in raster
    /// pixels relative to the pen position.
    fn finish(
        &mut self,
        pixels: Vec<u8>,
        format: MaskFormat,
        raster_rect: [i32; 4],
        scale: f32,
    ) -> GlyphMask {
        let id = self.next_mask_id;
        self.next_mask_id += 1;
        let [left, top, w, h] = raster_rect;
        GlyphMask {
            mask: Arc::new(Mask {
                id,
                width: w.unsigned_abs(),
                height: h.unsigned_abs(),
                format,
                pixels,
            }),
            rect: [
                left as f32 / scale,
                top as f32 / scale,
                w as f32 / scale,
                h as f32 / scale,
            ],
        }
    }

    /// The colour image of a glyph with an em of `em_px` raster pixels, its pen position shifted
    /// right by `shift` raster pixels: the font's largest bitmap strike (CBDT: Noto Color Emoji
    /// has one, 109 ppem) or its colour outline, premultiplied, then area-resampled to the size.
    /// None when the glyph has no colour image.
    fn color_image(&mut self, glyph: GlyphId, em_px: f32, shift: f32) -> Option<ColorImage> {
        let font = self.fonts.get_font(glyph.font, Weight(glyph.weight))?;
        let strike_ppem = font
            .as_swash()
            .color_strikes()
            .map(|s| s.ppem())
            .max()
            .filter(|&p| p > 0);
        // Bitmaps are rendered at their strike size (no resampling inside swash) and filtered
        // here; a colour outline is rendered directly at the wanted size.
        let render_px = strike_ppem.map_or(em_px, f32::from);
        let (cache_key, _, _) = CacheKey::new(
            glyph.font,
            glyph.glyph,
            render_px,
            (0.0, 0.0),
            Weight(glyph.weight),
            CacheKeyFlags::DISABLE_HINTING,
        );
        let image = self.swash.get_image_uncached(&mut self.fonts, cache_key)?;
        if image.content != SwashContent::Color {
            return None;
        }
        let p = image.placement;
        let expected = p.width as usize * p.height as usize * 4;
        if p.width == 0 || p.height == 0 || image.data.len() < expected {
            return None;
        }
        let src = Rgba {
            pixels: premultiply(&image.data[..expected]),
            width: p.width as usize,
            height: p.height as usize,
        };
        // swash's placement.top is the height of the top row above the baseline (y up).
        let factor = em_px / render_px;
        Some(resample_area(
            &src,
            factor,
            p.left as f32 * factor + shift,
            -(p.top as f32) * factor,
        ))
    }
}

/// A premultiplied RGBA image placed relative to the pen position (raster pixels, y down).
#[derive(Debug)]
struct ColorImage {
    rgba: Vec<u8>,
    width: u32,
    height: u32,
    left: i32,
    top: i32,
}

/// A premultiplied RGBA image in f32, row-major.
struct Rgba {
    pixels: Vec<[f32; 4]>,
    width: usize,
    height: usize,
}

/// Straight 8-bit RGBA → premultiplied f32 (0..=255).
fn premultiply(straight: &[u8]) -> Vec<[f32; 4]> {
    straight
        .chunks_exact(4)
        .map(|p| {
            let a = f32::from(p[3]) / 255.0;
            [
                f32::from(p[0]) * a,
                f32::from(p[1]) * a,
                f32::from(p[2]) * a,
                f32::from(p[3]),
            ]
        })
        .collect()
}

/// For each destination pixel `origin + i` of one axis, the source pixels it overlaps and the
/// overlap length (destination pixels), with source pixel `k` covering
/// `[offset + k·factor, offset + (k + 1)·factor)`.
fn area_weights(src_len: usize, factor: f32, offset: f32) -> (i32, Vec<Vec<(usize, f32)>>) {
    let start = offset.floor();
    let end = (offset + src_len as f32 * factor).ceil();
    let len = (end - start).max(0.0) as usize;
    let mut weights = vec![Vec::new(); len];
    for k in 0..src_len {
        let lo = offset + k as f32 * factor - start;
        let hi = lo + factor;
        let first = lo.floor().max(0.0) as usize;
        let last = (hi.ceil() as usize).min(len);
        for (i, slot) in weights.iter_mut().enumerate().take(last).skip(first) {
            let overlap = hi.min(i as f32 + 1.0) - lo.max(i as f32);
            if overlap > 0.0 {
                slot.push((k, overlap));
            }
        }
    }
    (start as i32, weights)
}

/// Resamples a premultiplied image by `factor` with an area (box) filter, placing source pixel
/// (0, 0)'s corner at (`left`, `top`) in destination pixels: every source pixel contributes in
/// proportion to the destination area it covers, so downscaling a 109 px strike to a 30 px
/// glyph averages, never aliases (upscaling beyond the strike keeps its texels' edges sharp,
/// bilinear sampling on the GPU smooths them).
fn resample_area(src: &Rgba, factor: f32, left: f32, top: f32) -> ColorImage {
    let (x0, cols) = area_weights(src.width, factor, left);
    let (y0, rows) = area_weights(src.height, factor, top);
    let (dw, dh) = (cols.len(), rows.len());
    // Horizontal pass: src.height × dw.
    let mut tmp = vec![[0f32; 4]; src.height * dw];
    for y in 0..src.height {
        let row = &src.pixels[y * src.width..(y + 1) * src.width];
        for (x, taps) in cols.iter().enumerate() {
            let mut acc = [0f32; 4];
            for &(k, wgt) in taps {
                for c in 0..4 {
                    acc[c] += row[k][c] * wgt;
                }
            }
            tmp[y * dw + x] = acc;
        }
    }
    let mut rgba = vec![0u8; dw * dh * 4];
    for (y, taps) in rows.iter().enumerate() {
        for x in 0..dw {
            let mut acc = [0f32; 4];
            for &(k, wgt) in taps {
                for c in 0..4 {
                    acc[c] += tmp[k * dw + x][c] * wgt;
                }
            }
            let alpha = acc[3].round().clamp(0.0, 255.0);
            let out = &mut rgba[(y * dw + x) * 4..(y * dw + x + 1) * 4];
            for c in 0..3 {
                // Premultiplied: a colour channel never exceeds alpha.
                out[c] = acc[c].round().clamp(0.0, alpha) as u8;
            }
            out[3] = alpha as u8;
        }
    }
    ColorImage {
        rgba,
        width: dw as u32,
        height: dh as u32,
        left: x0,
        top: y0,
    }
}

/// Largest em size a glyph is rasterised at, in raster pixels.
const MAX_RASTER_EM: f32 = 1024.0;
/// Largest shadow / filter blur σ, CSS px.
const MAX_BLUR_SIGMA: f32 = 48.0;

/// Blur radius steps per CSS pixel (mask cache granularity).
const BLUR_STEPS: f32 = 4.0;

/// Horizontal subpixel positions per raster pixel.
pub const SUBPIXEL_BINS: u8 = 4;

/// The scale a glyph drawn at `draw_scale` is rasterised at.
pub fn raster_scale(draw_scale: f32) -> f32 {
    bucket_scale(scale_bucket(draw_scale))
}

/// Quarter-octave buckets: scale 1 → 0, 2 → 4, 1.19 → 1 … (always rounding up, so a glyph is
/// never magnified by more than 2^(1/4) ≈ 1.19 at raster time; minification stays sharp).
fn scale_bucket(scale: f32) -> i32 {
    let s = scale.clamp(1.0 / 64.0, 64.0);
    (s.log2() * 4.0 - 1e-4).ceil() as i32
}

/// The largest bucket whose scale does not exceed `scale`.
fn scale_bucket_floor(scale: f32) -> i32 {
    let s = scale.clamp(1.0 / 64.0, 64.0);
    (s.log2() * 4.0 + 1e-4).floor() as i32
}

fn bucket_scale(bucket: i32) -> f32 {
    2f32.powf(bucket as f32 / 4.0)
}

/// Coverage of same-coloured layers drawn over each other: 1 − Π(1 − bᵢ).
fn combine_over(layers: &[Vec<u8>]) -> Vec<u8> {
    let Some(first) = layers.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let clear: f32 = layers
                .iter()
                .map(|l| 1.0 - f32::from(l[i]) / 255.0)
                .product();
            ((1.0 - clear) * 255.0).round() as u8
        })
        .collect()
}

/// Separable Gaussian blur of an 8-bit mask, grown by `pad` pixels on every side.
fn gaussian_blur(src: &[u8], w: u32, h: u32, pad: u32, sigma: f32) -> Vec<u8> {
    let (w, h, pad) = (w as usize, h as usize, pad as usize);
    let (ow, oh) = (w + 2 * pad, h + 2 * pad);
    let radius = pad as isize;
    let kernel: Vec<f32> = {
        let k: Vec<f32> = (-radius..=radius)
            .map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp())
            .collect();
        let sum: f32 = k.iter().sum();
        k.into_iter().map(|v| v / sum).collect()
    };
    let mut padded = vec![0f32; ow * oh];
    for y in 0..h {
        for x in 0..w {
            padded[(y + pad) * ow + x + pad] = src[y * w + x] as f32;
        }
    }
    let mut tmp = vec![0f32; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let mut acc = 0.0;
            for (k, kv) in kernel.iter().enumerate() {
                let sx = x as isize + k as isize - radius;
                if sx >= 0 && (sx as usize) < ow {
                    acc += padded[y * ow + sx as usize] * kv;
                }
            }
            tmp[y * ow + x] = acc;
        }
    }
    let mut out = vec![0u8; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let mut acc = 0.0;
            for (k, kv) in kernel.iter().enumerate() {
                let sy = y as isize + k as isize - radius;
                if sy >= 0 && (sy as usize) < oh {
                    acc += tmp[sy as usize * ow + x] * kv;
                }
            }
            out[y * ow + x] = acc.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> TextEngine {
        FontLibrary::load(None).expect("fonts installed").engine()
    }

    fn spec(engine: &mut TextEngine, family: &str, size: f32) -> FontSpec {
        FontSpec {
            family: engine.resolve_family(Some(family)),
            weight: 400,
            size,
            line_height: size * 1.6,
        }
    }

    #[test]
    fn css_family_lists_resolve_to_installed_faces() {
        let mut e = engine();
        assert_eq!(
            e.resolve_family(Some("Arial, sans-serif")),
            "Liberation Sans"
        );
        assert_eq!(
            e.resolve_family(Some("'No Such Font', \"Helvetica\"")),
            "Liberation Sans"
        );
        assert_eq!(e.resolve_family(Some("NoSuch")), DEFAULT_FAMILY);
        assert_eq!(e.resolve_family(None), DEFAULT_FAMILY);
    }

    #[test]
    fn shaping_mixed_hangul_and_latin_uses_fallback_and_measures() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 40.0);
        let shaped = e.shape("안녕하세요 MotionText 123!", &s, None);
        assert_eq!(shaped.lines.len(), 1);
        assert!(
            shaped.width > 300.0 && shaped.width < 700.0,
            "width {}",
            shaped.width
        );
        let glyphs = &shaped.lines[0].glyphs;
        // Hangul comes from a different face than Latin (font fallback).
        let hangul_font = glyphs.first().map(|g| g.key.font);
        let latin_font = glyphs
            .iter()
            .find(|g| &"안녕하세요 MotionText 123!"[g.start..g.end] == "M")
            .map(|g| g.key.font);
        assert!(hangul_font.is_some() && latin_font.is_some() && hangul_font != latin_font);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_between_hangul_syllables() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 20.0);
        let one = e.shape("hello world again", &s, None);
        let wrapped = e.shape("hello world again", &s, Some(one.width * 0.6));
        assert!(wrapped.lines.len() >= 2);
        assert!(wrapped.width <= one.width * 0.6 + 0.5);
        let hangul = e.shape("가나다라마바사아자차카타파하", &s, Some(60.0));
        assert!(hangul.lines.len() > 2, "Hangul breaks between syllables");
    }

    #[test]
    fn glyph_masks_are_cached_and_scale_with_bucket() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 32.0);
        let shaped = e.shape("H", &s, None);
        let g = shaped.lines[0].glyphs[0].key;
        let m1 = e
            .glyph_mask(g, 1.0, MaskStyle::Fill)
            .expect("H has an outline");
        let again = e.glyph_mask(g, 1.0, MaskStyle::Fill).expect("cached");
        assert_eq!(m1.mask.id, again.mask.id);
        let big = e.glyph_mask(g, 1.5, MaskStyle::Fill).expect("H at 1.5x");
        assert!(
            big.mask.height > m1.mask.height,
            "rasterised larger for a larger scale"
        );
        // Same CSS-px rectangle whatever the raster scale (within a pixel).
        assert!((big.rect[3] - m1.rect[3]).abs() < 1.5);
        // 'H' at 32 px: cap height about 23 px, above the baseline.
        assert!(
            m1.rect[1] < -18.0 && m1.rect[1] > -28.0,
            "top {}",
            m1.rect[1]
        );
        let covered = m1.mask.pixels.iter().filter(|&&p| p > 128).count();
        assert!(covered > 50);
    }

    #[test]
    fn stroke_and_blur_masks_grow_the_glyph() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 32.0);
        let g = e.shape("O", &s, None).lines[0].glyphs[0].key;
        let fill = e.glyph_mask(g, 1.0, MaskStyle::Fill).expect("fill");
        let stroke = e
            .glyph_mask(g, 1.0, MaskStyle::Stroke(4.0))
            .expect("stroke");
        let blur = e.glyph_mask(g, 1.0, MaskStyle::Blur(4.0)).expect("blur");
        assert!(stroke.rect[2] > fill.rect[2] + 2.0);
        assert!(blur.rect[2] >= fill.rect[2] + 20.0);
        // The stroke's centre (inside of the 'O' ring) is empty; the blur is soft: no hard 255 edge.
        assert!(
            blur.mask.pixels.iter().all(|&p| p < 255)
                || blur.mask.pixels.iter().filter(|&&p| p == 255).count() < 10
        );
    }

    #[test]
    fn normal_line_height_follows_the_face() {
        let mut e = engine();
        // Liberation Sans: (1854 + 434 + 67) / 2048 ≈ 1.15 em; Noto Sans CJK KR ≈ 1.45 em.
        let latin = e.normal_line_height("Liberation Sans", 400, 50.0);
        assert!((56.0..=59.0).contains(&latin), "{latin}");
        let s = spec(&mut e, "Arial", 50.0);
        let mixed = e.shape_normal("Go 가자", &s, None);
        assert!(
            mixed.line_height > 70.0,
            "Hangul fallback makes the line taller: {}",
            mixed.line_height
        );
    }

    #[test]
    fn glow_mask_equals_its_layers_drawn_one_over_another() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 32.0);
        let g = e.shape("O", &s, None).lines[0].glyphs[0].key;
        let glow = e
            .glyph_mask(g, 1.0, MaskStyle::Glow([1.0, 2.0, 4.0]))
            .expect("glow");
        let widest = e.glyph_mask(g, 1.0, MaskStyle::Blur(4.0)).expect("blur");
        assert_eq!(
            (glow.mask.width, glow.mask.height),
            (widest.mask.width, widest.mask.height)
        );
        assert_eq!(glow.rect, widest.rect);
        // Everywhere at least as covered as the widest blur alone, and darker where they overlap.
        let more = glow
            .mask
            .pixels
            .iter()
            .zip(&widest.mask.pixels)
            .filter(|(a, b)| a > b)
            .count();
        assert!(glow
            .mask
            .pixels
            .iter()
            .zip(&widest.mask.pixels)
            .all(|(a, b)| a >= b));
        assert!(more > 50);
    }

    #[test]
    fn hostile_sizes_are_capped() {
        let mut e = engine();
        let huge = FontSpec {
            family: e.resolve_family(Some("Arial")),
            weight: 400,
            size: 20_000.0,
            line_height: 24_000.0,
        };
        let g = e.shape("W", &huge, None).lines[0].glyphs[0].key;
        let m = e
            .glyph_mask(g, 1.0, MaskStyle::Blur(5_000.0))
            .expect("mask");
        assert!(
            m.mask.width <= 2048 && m.mask.height <= 2048,
            "{}x{}",
            m.mask.width,
            m.mask.height
        );
        // Drawn at the requested size: the CSS-px rectangle is still about the glyph's size.
        assert!(m.rect[2] > 15_000.0, "{:?}", m.rect);
    }

    #[test]
    fn emoji_fall_back_to_the_colour_emoji_face_and_rasterise_in_colour() {
        let mut e = engine();
        let s = spec(&mut e, "Arial", 48.0);
        let text = "안녕 Hello 😀";
        let shaped = e.shape(text, &s, None);
        let glyphs = &shaped.lines[0].glyphs;
        let emoji = glyphs
            .iter()
            .find(|g| &text[g.start..g.end] == "😀")
            .expect("the emoji is shaped");
        let family = e
            .fonts
            .db()
            .face(emoji.key.font)
            .and_then(|f| f.families.first().map(|(n, _)| n.clone()));
        assert_eq!(family.as_deref(), Some("Noto Color Emoji"));
        assert!(emoji.key.glyph != 0, "not .notdef");
        assert!(emoji.w > 40.0 && emoji.w < 80.0, "advance {}", emoji.w);

        let m = e
            .glyph_mask(emoji.key, 1.0, MaskStyle::Fill)
            .expect("colour image");
        assert_eq!(m.mask.format, MaskFormat::Rgba);
        let (w, h) = (m.mask.width as usize, m.mask.height as usize);
        assert_eq!(m.mask.pixels.len(), w * h * 4);
        // Scaled from the 109 ppem strike to a 48 px em: about 48-60 px square, above the
        // baseline (a little below it).
        assert!((40..=64).contains(&w) && (40..=64).contains(&h), "{w}x{h}");
        assert!(
            m.rect[1] < -30.0 && m.rect[1] + m.rect[3] < 20.0,
            "{:?}",
            m.rect
        );
        // Premultiplied (no channel above alpha), and mostly the face's yellow.
        assert!(m
            .mask
            .pixels
            .chunks_exact(4)
            .all(|p| p[0] <= p[3] && p[1] <= p[3] && p[2] <= p[3]));
        let yellow = m
            .mask
            .pixels
            .chunks_exact(4)
            .filter(|p| p[3] > 250 && p[0] > 200 && p[1] > 150 && p[2] < 100)
            .count();
        assert!(yellow > w * h / 4, "{yellow} yellow of {}", w * h);
        // Cached like masks.
        let again = e
            .glyph_mask(emoji.key, 1.0, MaskStyle::Fill)
            .expect("cached");
        assert_eq!(again.mask.id, m.mask.id);

        // Its shadow is the blurred alpha; strokes leave colour glyphs alone (as Chromium).
        let shadow = e
            .glyph_mask(emoji.key, 1.0, MaskStyle::Blur(3.0))
            .expect("shadow");
        assert_eq!(shadow.mask.format, MaskFormat::Alpha);
        assert!(shadow.rect[2] > m.rect[2] + 10.0);
        assert!(shadow.mask.pixels.iter().any(|&p| p > 200));
        assert!(e
            .glyph_mask(emoji.key, 1.0, MaskStyle::Stroke(2.0))
            .is_none());

        // Latin and Hangul stay coverage masks.
        let h_glyph = glyphs
            .iter()
            .find(|g| &text[g.start..g.end] == "H")
            .expect("H");
        let hm = e.glyph_mask(h_glyph.key, 1.0, MaskStyle::Fill).expect("H");
        assert_eq!(hm.mask.format, MaskFormat::Alpha);
    }

    #[test]
    fn area_resampling_keeps_coverage_and_placement() {
        // A 4×4 opaque red square halved: 2×2 opaque red, placed at half the offset.
        let src = Rgba {
            pixels: premultiply(&[255, 0, 0, 255].repeat(16)),
            width: 4,
            height: 4,
        };
        let out = resample_area(&src, 0.5, 1.0, -2.0);
        assert_eq!((out.width, out.height, out.left, out.top), (2, 2, 1, -2));
        assert!(out.rgba.chunks_exact(4).all(|p| p == [255, 0, 0, 255]));
        // A half-pixel shift spreads it over three columns, total coverage kept.
        let shifted = resample_area(&src, 0.5, 1.5, 0.0);
        assert_eq!((shifted.width, shifted.left), (3, 1));
        let alpha: u32 = shifted.rgba.chunks_exact(4).map(|p| u32::from(p[3])).sum();
        assert!((alpha as i32 - 4 * 255).abs() <= 3, "{alpha}");
        // Half-transparent white premultiplies to grey.
        assert_eq!(premultiply(&[255, 255, 255, 128])[0][0].round(), 128.0);
    }

    #[test]
    fn scale_buckets_round_up() {
        assert_eq!(scale_bucket(1.0), 0);
        assert_eq!(scale_bucket(2.0), 4);
        assert!(bucket_scale(scale_bucket(1.3)) >= 1.3);
        assert!(bucket_scale(scale_bucket(0.5)) >= 0.5);
    }
}

#[cfg(test)]
mod font_loading_tests {
    use super::*;

    #[test]
    fn an_engine_without_the_default_family_still_shapes() {
        // Only Liberation Sans: the default family (Noto Sans CJK KR) is missing, Hangul has
        // no glyphs; shaping must pick an existing family instead of panicking.
        let mut db = cosmic_text::fontdb::Database::new();
        db.load_font_file("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf")
            .expect("font file");
        let lib = FontLibrary {
            db: Arc::new(db),
            locale: "en-US".into(),
        };
        let mut e = lib.engine();
        let family = e.resolve_family(None);
        assert_eq!(family, "Liberation Sans");
        let spec = FontSpec {
            family,
            weight: 400,
            size: 20.0,
            line_height: 24.0,
        };
        let shaped = e.shape("Hello 자막", &spec, None);
        assert!(shaped.width > 40.0);
    }
}
