//! Scene at time t → display list: which cues and nodes are active (SPEC §6–§7), their layout
//! (cached per set of active nodes), plugin state at t, and paint order (§11.10).

pub mod display;
pub mod layout;
pub mod paint;
pub mod style;

use std::collections::HashMap;
use std::sync::Arc;

use display::{Affine, DisplayList};
use layout::{is_active, layout_cue_with_media, LaidNode, StageBox};
use paint::{AnimSource, Painter};

use crate::anim::{self, AnimInput, TextLayout};
use crate::media::assets::{ImageMasks, MediaAssets};
use crate::scene::{Node, NodeKind, Scene};
use crate::text::TextEngine;

/// How the virtual CSS stage maps onto output pixels (SPEC §1.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ComposeOptions {
    /// Height of the CSS-pixel stage; `None` = the stage's height in output pixels (a browser
    /// page rendered at the output resolution, as the old capture service did).
    pub css_stage_height: Option<f64>,
}

/// Turns a scene into display lists, frame after frame. Owns the text engine (fonts, glyph
/// masks) and a layout cache; one per render thread.
pub struct Composer {
    scene: Arc<Scene>,
    text: TextEngine,
    options: ComposeOptions,
    anims: HashMap<String, AnimSource>,
    layouts: HashMap<LayoutKey, Arc<Vec<LaidNode>>>,
    /// Cue indices in paint order (appearance order: lifetime start, then array order).
    paint_order: Vec<usize>,
    /// The job's decoded pictures and their drawn masks.
    media: Arc<MediaAssets>,
    images: ImageMasks,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LayoutKey {
    cue: usize,
    active: Vec<bool>,
    stage: (u64, u64),
    /// Text nodes whose layout a plugin changes at t (typewriter's typed prefix, elastic's
    /// word margins), sorted by node id: the layout differs whenever one of them does.
    text_layouts: Vec<(String, TextLayout)>,
}

const LAYOUT_CACHE_LIMIT: usize = 512;

impl Composer {
    pub fn new(scene: Arc<Scene>, text: TextEngine, options: ComposeOptions) -> Self {
        let mut anims = HashMap::new();
        for (ci, cue) in scene.cues.iter().enumerate() {
            collect_anims(&cue.root, ci as u64, &mut anims);
        }
        let mut paint_order: Vec<usize> = (0..scene.cues.len()).collect();
        paint_order.sort_by(|&a, &b| {
            let (la, lb) = (scene.cues[a].dom_lifetime.0, scene.cues[b].dom_lifetime.0);
            la.partial_cmp(&lb)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        Composer {
            scene,
            text,
            options,
            anims,
            layouts: HashMap::new(),
            paint_order,
            media: Arc::new(MediaAssets::default()),
            images: ImageMasks::default(),
        }
    }

    /// Uses the job's assets ([`crate::media::assets::AssetLoader::load`]): pictures for image
    /// and video nodes and plugins, and the define fonts, registered under their names.
    pub fn with_media(mut self, media: Arc<MediaAssets>) -> Self {
        for font in &media.fonts {
            self.text.register_font(Arc::clone(&font.data), &font.names);
        }
        self.layouts.clear();
        self.media = media;
        self
    }

    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The display list for media time `t`, with the stage at `stage_rect` (x, y, w, h) in
    /// output pixels.
    pub fn compose(&mut self, t: f64, stage_rect: [f32; 4]) -> DisplayList {
        let [sx, sy, sw, sh] = stage_rect;
        let css_h = self.options.css_stage_height.unwrap_or(sh as f64).max(1.0);
        let css_w = css_h * sw as f64 / sh.max(1.0) as f64;
        let k = sh / css_h as f32;
        let to_output = Affine::translate(sx, sy).then(Affine::scale(k, k));
        let stage = StageBox {
            w: css_w,
            h: css_h,
            safe_area: self.scene.stage.safe_area,
        };

        let mut list = DisplayList::default();
        let scene = Arc::clone(&self.scene);
        for &ci in &self.paint_order {
            let cue = &scene.cues[ci];
            let (l0, l1) = cue.dom_lifetime;
            if t < l0 || t > l1 {
                continue;
            }
            let mut active = Vec::new();
            activity(&cue.root, t, &mut active);
            if !active.iter().any(|a| *a) {
                continue;
            }
            let mut text_layouts = Vec::new();
            plugin_layouts(&cue.root, t, &self.anims, &mut text_layouts);
            text_layouts.sort();
            let key = LayoutKey {
                cue: ci,
                active,
                stage: (css_w.to_bits(), css_h.to_bits()),
                text_layouts,
            };
            let laid = match self.layouts.get(&key) {
                Some(l) => Arc::clone(l),
                None => {
                    let track = &scene.tracks[cue.track];
                    let by_node: HashMap<String, TextLayout> =
                        key.text_layouts.iter().cloned().collect();
                    let laid = Arc::new(layout_cue_with_media(
                        &cue.root,
                        track,
                        stage,
                        t,
                        &by_node,
                        &mut self.text,
                        &self.media,
                    ));
                    if self.layouts.len() >= LAYOUT_CACHE_LIMIT {
                        self.layouts.clear();
                    }
                    self.layouts.insert(key, Arc::clone(&laid));
                    laid
                }
            };
            let mut painter = Painter {
                text: &mut self.text,
                out: &mut list,
                t,
                media: &self.media,
                images: &mut self.images,
            };
            for root in laid.iter() {
                painter.paint(root, to_output, 1.0, &self.anims);
            }
        }
        list
    }
}

fn activity(node: &Node, t: f64, out: &mut Vec<bool>) {
    out.push(is_active(node, t));
    for c in &node.children {
        activity(c, t, out);
    }
}

/// The drawn text nodes whose plugins change their layout at t (see [`TextLayout`]).
fn plugin_layouts(
    node: &Node,
    t: f64,
    anims: &HashMap<String, AnimSource>,
    out: &mut Vec<(String, TextLayout)>,
) {
    if let (NodeKind::Text { text }, Some(src)) = (&node.kind, anims.get(&node.id)) {
        if is_active(node, t) {
            let layout = anim::text_layout(&AnimInput {
                text,
                entries: &src.plugins,
                display: src.display,
                node_base: src.base_time,
                t,
                seed: src.seed,
            });
            if layout != TextLayout::Plain {
                out.push((node.id.clone(), layout));
            }
        }
    }
    for c in &node.children {
        plugin_layouts(c, t, anims, out);
    }
}

fn collect_anims(node: &Node, cue_index: u64, out: &mut HashMap<String, AnimSource>) {
    if let Some(display) = node.resolved_display_time {
        // Only the installed plugin versions run (SPEC §12.1): `typewriter@1.0.0` is ignored.
        let plugins: Vec<_> = node
            .plugins
            .iter()
            .filter(|p| p.version.as_deref().is_none_or(|v| v == "2.0.0"))
            .cloned()
            .collect();
        if !plugins.is_empty() {
            out.insert(
                node.id.clone(),
                AnimSource {
                    plugins,
                    display,
                    base_time: node.base_time,
                    seed: seed_for(cue_index, &node.id),
                },
            );
        }
    }
    for c in &node.children {
        collect_anims(c, cue_index, out);
    }
}

/// A stable per-node seed (FNV-1a of the cue index and node id): two renders of one scenario
/// draw the same "random" values.
fn seed_for(cue_index: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ cue_index;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::display::DrawItem;
    use super::*;
    use crate::scene::{parse_scenario, ParseOptions};

    fn sample(name: &str) -> Arc<Scene> {
        let path = format!(
            "{}/../shared/motiontext/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).expect("sample exists");
        Arc::new(parse_scenario(&bytes, &ParseOptions::default()).expect("sample parses"))
    }

    /// A composer for cwi_demo_full, the realistic word-caption sample.
    fn composer(options: ComposeOptions) -> Composer {
        let fonts = crate::text::FontLibrary::load(None).expect("fonts installed");
        Composer::new(sample("cwi_demo_full.json"), fonts.engine(), options)
    }

    fn boxes(list: &DisplayList) -> Vec<[f32; 4]> {
        list.items
            .iter()
            .filter_map(|i| match i {
                DrawItem::Box(b) => {
                    let (x0, y0) = b.transform.apply(b.rect[0], b.rect[1]);
                    let (x1, y1) = b
                        .transform
                        .apply(b.rect[0] + b.rect[2], b.rect[1] + b.rect[3]);
                    Some([x0, y0, x1, y1])
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn word_caption_box_matches_the_reference_geometry() {
        // reference/cwi_demo_full/frame_5.160.png: the caption box spans x 320..960,
        // y 520..666 (two rows of words, 8px 16px padding, bottom-centre at (640, 666)).
        let mut c = composer(ComposeOptions::default());
        let list = c.compose(5.16, [0.0, 0.0, 1280.0, 720.0]);
        let b = boxes(&list);
        assert_eq!(b.len(), 1, "one caption box: {b:?}");
        let [x0, y0, x1, y1] = b[0];
        assert!(
            (x0 - 320.0).abs() <= 2.0 && (x1 - 960.0).abs() <= 2.0,
            "x {x0}..{x1}"
        );
        assert!((y1 - 666.0).abs() <= 2.0, "bottom {y1}");
        assert!((y0 - 520.0).abs() <= 4.0, "top {y0}");
        let glyphs = list
            .items
            .iter()
            .filter(|i| matches!(i, DrawItem::Mask(_)))
            .count();
        assert!(glyphs > 30, "glyphs and their shadows are drawn: {glyphs}");
    }

    /// Lays out the single text node of a plugin golden scenario with the given text layout.
    fn laid_plugin_node(plugin: &str, layout: Option<TextLayout>) -> (LaidNode, String) {
        let path = format!(
            "{}/tests/golden/plugins/{plugin}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).expect("golden scenario exists");
        let scene = parse_scenario(&bytes, &ParseOptions::default()).expect("scenario parses");
        let cue = &scene.cues[0];
        let text = match &cue.root.kind {
            NodeKind::Text { text } => text.clone(),
            other => panic!("not a text node: {other:?}"),
        };
        let map: HashMap<String, TextLayout> = layout
            .map(|l| (cue.root.id.clone(), l))
            .into_iter()
            .collect();
        let stage = StageBox {
            w: 1280.0,
            h: 720.0,
            safe_area: scene.stage.safe_area,
        };
        let fonts = crate::text::FontLibrary::load(None).expect("fonts installed");
        let mut engine = fonts.engine();
        let track = &scene.tracks[cue.track];
        let mut laid = layout::layout_cue(&cue.root, track, stage, 3.0, &map, &mut engine);
        (laid.remove(0), text)
    }

    fn shaped(node: &LaidNode) -> &crate::text::ShapedText {
        match &node.content {
            layout::LaidContent::Text(t) => &t.shaped,
            _ => panic!("not text"),
        }
    }

    #[test]
    fn elastic_word_boxes_are_widened_by_a_fifth_of_an_em() {
        let (plain, _) = laid_plugin_node("elastic", None);
        let (wide, _) = laid_plugin_node(
            "elastic",
            Some(TextLayout::WordMargins {
                margin_milli_em: 100,
            }),
        );
        let font_px = match &plain.content {
            layout::LaidContent::Text(t) => t.look.font_px as f32,
            _ => 0.0,
        };
        assert!(font_px > 0.0);
        // Three words, each 0.2 em wider; per-word shaping loses no more than a pixel.
        let grown = shaped(&wide).width - shaped(&plain).width;
        assert!(
            (grown - 0.6 * font_px).abs() < 1.0,
            "grown {grown} for font {font_px}"
        );
        assert_eq!(shaped(&wide).lines.len(), 1);
        assert_eq!(shaped(&wide).line_height, shaped(&plain).line_height);
        // The first glyph sits one margin in; baselines unchanged.
        let (g0, p0) = (
            shaped(&wide).lines[0].glyphs[0],
            shaped(&plain).lines[0].glyphs[0],
        );
        assert!((g0.x - p0.x - 0.1 * font_px).abs() < 0.01);
        assert!((g0.y - p0.y).abs() < 0.01);
        // The wider box stays centred on the anchor.
        let centre = |n: &LaidNode| n.to_parent.apply(n.w as f32 / 2.0, 0.0).0;
        assert!((centre(&wide) - centre(&plain)).abs() < 0.5);
    }

    #[test]
    fn typewriter_lays_out_the_prefix_and_the_cursor_only() {
        let (full, text) = laid_plugin_node("typewriter", None);
        let typed = |bytes: usize, cursor: Option<&str>| {
            laid_plugin_node(
                "typewriter",
                Some(TextLayout::Typed {
                    prefix_bytes: bytes,
                    cursor: cursor.map(str::to_owned),
                }),
            )
            .0
        };
        let hello = typed(5, Some("|"));
        let glyphs = &shaped(&hello).lines[0].glyphs;
        // "Hello" then the cursor, whose glyph is numbered after the text's last byte.
        assert_eq!(glyphs.len(), 6);
        assert!(glyphs[..5].iter().all(|g| g.end <= 5));
        assert_eq!(glyphs[5].start, text.len());
        assert!(glyphs[5].x >= glyphs[4].x + glyphs[4].w - 0.01);
        // The box grows while typing and stays centred.
        let bare = typed(5, None);
        let cursor_only = typed(0, Some("|"));
        assert!(shaped(&cursor_only).width > 0.0);
        assert!(shaped(&bare).width < shaped(&hello).width);
        assert!(shaped(&hello).width < shaped(&full).width);
        assert!(hello.w < full.w);
        let centre = |n: &LaidNode| n.to_parent.apply(n.w as f32 / 2.0, 0.0).0;
        assert!((centre(&hello) - centre(&full)).abs() < 0.5);
        assert!((centre(&cursor_only) - centre(&full)).abs() < 0.5);
        // Everything typed and no cursor: the plain layout.
        let all = typed(text.len(), None);
        assert_eq!(shaped(&all), shaped(&full));
    }

    #[test]
    fn nothing_is_drawn_outside_every_cue() {
        let mut c = composer(ComposeOptions::default());
        assert!(c.compose(0.5, [0.0, 0.0, 1280.0, 720.0]).is_empty());
    }

    #[test]
    fn stage_scales_to_the_output() {
        let mut c = composer(ComposeOptions::default());
        let small = boxes(&c.compose(5.16, [0.0, 0.0, 1280.0, 720.0]))[0];
        let mut c = composer(ComposeOptions {
            css_stage_height: Some(720.0),
        });
        let big = boxes(&c.compose(5.16, [0.0, 0.0, 1920.0, 1080.0]))[0];
        for i in 0..4 {
            assert!(
                (big[i] - small[i] * 1.5).abs() < 1.0,
                "{big:?} vs {small:?}"
            );
        }
    }
}
