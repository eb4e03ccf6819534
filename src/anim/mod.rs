//! Plugin evaluation (SPEC §12, PLUGINS.md): windows and progress, channel composition,
//! easing, the GSAP timeline model, text splitting, and the plugins listed in
//! [`IMPLEMENTED`]. Pure functions of time (and of a per-node seed for random plugins).
//! Plugins that change the layout itself (elastic, typewriter) also say so through
//! [`text_layout`], which the compositor's layout consults.
//!
//! Choices where the spec leaves room:
//! * Channel plugins outside their window: after it they contribute their p = 1 values
//!   (with their `compose`), before it nothing (SPEC §12.3 "Recommended" stateless rule).
//! * DOM plugins: before their window not initialised (plain text), after it held at
//!   p = 1.
//! * Two split plugins on one node: the later one in the chain replaces the split
//!   structure of the earlier one (the reference would re-split already split text,
//!   which PLUGINS.md §0.2 advises against). `cwi_word` stays once a CWI plugin set it.
//! * An entry `type` override limits a hybrid to its channel or DOM half; a `dom`
//!   override on a channel-only plugin leaves nothing to run, and vice versa.

pub mod color;
pub mod easing;
mod plugins;
pub mod split;
pub mod timeline;

use crate::compose::display::Color;
use crate::scene::model::{Compose, PluginEntry, PluginKind};
pub use plugins::flames::{FlamesAnim, ASSET as FLAMES_ASSET};
pub use split::{split_text, Segment, SplitKind};
// fx: the glitch noise filter on a flat colour, for the painter.
pub(crate) use plugins::noise_color;

/// Channel values of SPEC §12.5 after compose (§12.4); identity = tx 0, ty 0, sx 1, sy 1, rot 0, opacity 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channels {
    pub tx: f64,
    pub ty: f64,
    pub sx: f64,
    pub sy: f64,
    pub rot: f64,
    pub opacity: f64,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            tx: 0.0,
            ty: 0.0,
            sx: 1.0,
            sy: 1.0,
            rot: 0.0,
            opacity: 1.0,
        }
    }
}

/// A resolved text-shadow override (CSS px, colour).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowPx {
    pub x: f64,
    pub y: f64,
    pub blur: f64,
    pub color: Color,
}

/// Visual state of one animated box (the effects box E, a character, a word, a CWI word or letter).
/// Transform about the box origin (PLUGINS.md §0.4 rule 10): translate(tx, ty) ·
/// rotate(rotation_deg) · rotateY(rotation_y_deg) · rotateX(rotation_x_deg) · skewX(skew_x_deg) ·
/// scale(scale_x, scale_y), seen through `perspective_px` when set.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxAnim {
    pub tx: f64,
    pub ty: f64,
    pub scale_x: f64,
    pub scale_y: f64,
    pub rotation_deg: f64,
    pub opacity: f64,
    /// `None` = inherit.
    pub color: Option<Color>,
    /// `None` = inherit the node's; `Some(vec![])` = none.
    pub text_shadow: Option<Vec<ShadowPx>>,
    /// CSS `brightness()`; 1 = none.
    pub brightness: f64,
    /// CSS `blur()` radius in px; 0 = none.
    pub blur_px: f64,
    /// The box clips its own content to its box (slideup words).
    pub clip_to_box: bool,
    /// Where the transform (rotation, scale) is anchored in the box.
    pub origin: BoxOrigin,
    // rot: 3-D transforms (PLUGINS.md §0.4 rule 10, §10).
    /// `rotationX` in degrees: 3-D turn about the box's horizontal axis through its origin.
    pub rotation_x_deg: f64,
    /// `rotationY` in degrees: 3-D turn about the box's vertical axis through its origin.
    pub rotation_y_deg: f64,
    /// `skewX` in degrees.
    pub skew_x_deg: f64,
    /// CSS `perspective` (px) of the box's container, whose vanishing point is the centre of
    /// the effects box E (rotation's full-width block container); `None` = no perspective
    /// (3-D turns flattened orthographically).
    pub perspective_px: Option<f64>,
}

/// Transform origin of an animated box (CSS `transform-origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoxOrigin {
    /// The centre of the box (the CSS default).
    #[default]
    Center,
    /// The middle of the bottom edge (`center bottom`, elastic words).
    CenterBottom,
}

impl Default for BoxAnim {
    fn default() -> Self {
        BoxAnim {
            tx: 0.0,
            ty: 0.0,
            scale_x: 1.0,
            scale_y: 1.0,
            rotation_deg: 0.0,
            opacity: 1.0,
            color: None,
            text_shadow: None,
            brightness: 1.0,
            blur_px: 0.0,
            clip_to_box: false,
            origin: BoxOrigin::Center,
            // rot
            rotation_x_deg: 0.0,
            rotation_y_deg: 0.0,
            skew_x_deg: 0.0,
            perspective_px: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SplitAnim {
    pub kind: SplitKind,
    pub segments: Vec<Segment>,
    /// One per segment (`Words` separators get the identity box).
    pub boxes: Vec<BoxAnim>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeAnim {
    /// Applied to wrapper B.
    pub channels: Channels,
    /// DOM whole-text transform of E (pulse/bobY DOM halves).
    pub effects: BoxAnim,
    /// Per char/word boxes when a split plugin has initialised.
    pub split: Option<SplitAnim>,
    /// The shared CWI word box (colour rgba(255,255,255,0.9)).
    pub cwi_word: Option<BoxAnim>,
    /// Typewriter (PLUGINS §5): the node shows only a typed prefix and a cursor; the layout
    /// ([`text_layout`]) lays out exactly that, this is how each part is painted.
    pub typed: Option<TypedAnim>,
    /// flames (PLUGINS §14): the fire picture behind the glyphs, once initialised.
    pub flames: Option<FlamesAnim>,
    // fx: glow and glitch.
    /// Glow (PLUGINS §8): the blurred halo layer drawn behind the glyphs (its text shadow is
    /// `effects.text_shadow`).
    pub glow: Option<GlowLayer>,
    /// Glitch (PLUGINS §7): the node is drawn as an isolated layer of two screen-blended
    /// coloured copies under the (filtered, blinking) original.
    pub glitch: Option<GlitchAnim>,
}

/// The glow plugin's halo: a rectangle the size of E filled with a radial gradient of
/// `color` (straight, its alpha the intensity) to 30 % of half the diagonal, linear to
/// transparent at 80 %, blurred by a Gaussian of σ = `blur_px` CSS px, drawn with `opacity`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlowLayer {
    pub color: Color,
    pub opacity: f64,
    pub blur_px: f64,
}

/// The glitch plugin's state: the white original on top of its coloured copies.
#[derive(Debug, Clone, PartialEq)]
pub struct GlitchAnim {
    /// The original text: colour `#ffffff`, its opacity (transforms are never visible on it).
    pub original: BoxAnim,
    /// The noise filter level u ∈ [0, 1]: `blur(u px) saturate(2u) contrast(1.2u)`; the
    /// filter is `none` (not u = 0) when `noise` is `None`.
    pub noise: Option<f64>,
    /// Drawn first, bottom first (red, cyan), each with screen blend.
    pub copies: Vec<GlitchCopy>,
}

/// One coloured copy of the text, over the original's place shifted by `tx` CSS px.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlitchCopy {
    pub color: Color,
    pub tx: f64,
    pub opacity: f64,
}

/// The paint state of a typewriter node: the typed prefix and the cursor after it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedAnim {
    /// Byte length of the typed prefix of the node text.
    pub prefix_bytes: usize,
    /// The typed text (its typing flash is a text-shadow override).
    pub text: BoxAnim,
    /// The cursor glyph's box (colour `#ffffff`, blink opacity); `None` = no cursor.
    pub cursor: Option<BoxAnim>,
}

/// How the text of a node is laid out at time t, when a plugin changes the layout itself
/// (the layout is cached per value, so it is `Eq + Hash`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TextLayout {
    /// The node's text as it is.
    #[default]
    Plain,
    /// Word boxes (split on every `' '`) with an extra horizontal margin of this many
    /// thousandths of an em on each side (elastic: 100); lines break between boxes.
    WordMargins { margin_milli_em: u32 },
    /// Only the first `prefix_bytes` bytes of the text, then `cursor` (weight 400) if any.
    Typed {
        prefix_bytes: usize,
        cursor: Option<String>,
    },
}

pub struct AnimInput<'a> {
    pub text: &'a str,
    pub entries: &'a [PluginEntry],
    /// The node's resolved display time.
    pub display: (f64, f64),
    /// The node's own `baseTime`.
    pub node_base: Option<(f64, f64)>,
    /// Media time.
    pub t: f64,
    /// Seed of the node for plugins that draw random numbers; each chain entry draws
    /// from its own seed derived from it and its index.
    pub seed: u64,
}

/// The node's text colour and text shadows (resolved to px), used as the start value
/// when a tween animates away from an inherited colour or shadow.
#[derive(Debug, Clone, PartialEq)]
pub struct InheritedStyle {
    pub color: Color,
    pub text_shadow: Vec<ShadowPx>,
}

impl Default for InheritedStyle {
    /// White text without shadow.
    fn default() -> Self {
        InheritedStyle {
            color: Color::WHITE,
            text_shadow: Vec::new(),
        }
    }
}

/// The plugin ids implemented here.
pub const IMPLEMENTED: &[&str] = &[
    "fadein",
    "slideup",
    "scalepop",
    "pulse",
    "spin",
    "bobY",
    "cwi-color",
    // plug-a
    "magnetic",
    "fliptype",
    "cwi-loud",
    "cwi-whisper",
    "cwi-bouncing",
    // plug-b
    "elastic",
    "typewriter",
    // rot
    "rotation",
    // fx
    "glitch",
    "glow",
    // media
    "flames",
];

/// True for the plugin ids in [`IMPLEMENTED`].
pub fn is_implemented(id: &str) -> bool {
    IMPLEMENTED.contains(&id)
}

/// The manifest kind of an implemented plugin.
pub fn manifest_kind(id: &str) -> Option<PluginKind> {
    match id {
        "fadein" | "slideup" | "scalepop" | "cwi-color" => Some(PluginKind::Dom),
        "elastic" | "typewriter" => Some(PluginKind::Dom),
        "pulse" | "bobY" => Some(PluginKind::Hybrid),
        "spin" => Some(PluginKind::Channel),
        // plug-a
        "magnetic" | "cwi-loud" | "cwi-whisper" => Some(PluginKind::Dom),
        "fliptype" | "cwi-bouncing" => Some(PluginKind::Hybrid),
        // rot
        "rotation" => Some(PluginKind::Dom),
        // fx
        "glitch" | "glow" => Some(PluginKind::Dom),
        // media
        "flames" => Some(PluginKind::Dom),
        _ => None,
    }
}

/// Where `t` lies relative to a plugin window `[w0, w1]` (SPEC §12.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Before,
    /// Inside the window (inclusive), with progress p ∈ [0, 1].
    Active(f64),
    After,
}

pub fn phase(t: f64, (w0, w1): (f64, f64)) -> Phase {
    if t < w0 {
        Phase::Before
    } else if t > w1 {
        Phase::After
    } else {
        let p = if w1 > w0 { (t - w0) / (w1 - w0) } else { 0.0 };
        Phase::Active(if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) })
    }
}

/// Evaluate every implemented plugin of the chain at time t (node assumed drawn at t).
/// Tweens away from inherited colours/shadows start from white / no shadow; use
/// [`evaluate_with_style`] to give the node's own.
pub fn evaluate(input: &AnimInput) -> NodeAnim {
    evaluate_with_style(input, &InheritedStyle::default())
}

/// [`evaluate`] with the node's text colour and shadows as tween start values.
pub fn evaluate_with_style(input: &AnimInput, inherited: &InheritedStyle) -> NodeAnim {
    let mut acc = ChannelAcc::default();
    let mut out = NodeAnim::default();
    for (index, entry) in input.entries.iter().enumerate() {
        // A version other than the installed 2.0.0 has no effect (SPEC §12.1).
        let Some(kind) = entry.resolved_id().and_then(manifest_kind) else {
            continue;
        };
        let kind = entry.kind_override.unwrap_or(kind);
        let window = entry.window(input.node_base, input.display);
        let ph = phase(input.t, window);
        if matches!(kind, PluginKind::Channel | PluginKind::Hybrid) {
            let p = match ph {
                Phase::Before => None,
                Phase::Active(p) => Some(p),
                Phase::After => Some(1.0),
            };
            if let Some(p) = p {
                for (channel, value) in plugins::channel_values(&entry.id, &entry.params, p) {
                    acc.apply(channel, value, entry.compose);
                }
            }
        }
        if matches!(kind, PluginKind::Dom | PluginKind::Hybrid) {
            let p = match ph {
                Phase::Before => None,
                Phase::Active(p) => Some(p),
                Phase::After => Some(1.0),
            };
            if let Some(p) = p {
                let dom = plugins::DomInput {
                    params: &entry.params,
                    p,
                    text: input.text,
                    inherited,
                    seed: entry_seed(input.seed, index),
                    window,
                    t: input.t,
                };
                plugins::apply_dom(&entry.id, &dom, &mut out);
            }
        }
    }
    out.channels = acc.finish();
    out
}

/// How the node's text is laid out at `input.t` (see [`TextLayout`]): the layout-changing
/// DOM plugins (elastic, typewriter) once initialised; the later one in the chain wins, as
/// it replaces the content the earlier one built.
pub fn text_layout(input: &AnimInput) -> TextLayout {
    let mut out = TextLayout::Plain;
    for entry in input.entries {
        let Some(kind) = entry.resolved_id().and_then(manifest_kind) else {
            continue;
        };
        if !matches!(
            entry.kind_override.unwrap_or(kind),
            PluginKind::Dom | PluginKind::Hybrid
        ) {
            continue;
        }
        let p = match phase(input.t, entry.window(input.node_base, input.display)) {
            Phase::Before => continue,
            Phase::Active(p) => p,
            Phase::After => 1.0,
        };
        if let Some(layout) = plugins::layout_of(&entry.id, &entry.params, p, input.text) {
            out = layout;
        }
    }
    out
}

/// The random seed of chain entry `index` of a node seeded with `node_seed`
/// (SplitMix64 finaliser of both), so two entries of one node draw different numbers.
fn entry_seed(node_seed: u64, index: usize) -> u64 {
    let mut z = node_seed
        ^ (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Channel names of SPEC §12.5 that have a visual effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Tx,
    Ty,
    Sx,
    Sy,
    Rot,
    Opacity,
}

/// The per-frame accumulator of §12.4 (absent channels keep their identity value).
#[derive(Debug, Default)]
struct ChannelAcc {
    values: [Option<f64>; 6],
}

impl ChannelAcc {
    fn apply(&mut self, channel: Channel, v: f64, compose: Compose) {
        let slot = &mut self.values[channel as usize];
        *slot = Some(match (compose, *slot) {
            (Compose::Add, Some(a)) => a + v,
            (Compose::Multiply, Some(a)) => a * v,
            _ => v,
        });
    }

    fn finish(&self) -> Channels {
        let id = Channels::default();
        let get = |c: Channel, d: f64| self.values[c as usize].unwrap_or(d);
        Channels {
            tx: get(Channel::Tx, id.tx),
            ty: get(Channel::Ty, id.ty),
            sx: get(Channel::Sx, id.sx),
            sy: get(Channel::Sy, id.sy),
            rot: get(Channel::Rot, id.rot),
            opacity: get(Channel::Opacity, id.opacity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::model::OffsetBound;
    use serde_json::{json, Value};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn entry(id: &str, params: Value, offset: (f64, f64)) -> PluginEntry {
        PluginEntry {
            name: id.into(),
            id: id.into(),
            version: None,
            params,
            time_offset: (
                OffsetBound::Seconds(offset.0),
                OffsetBound::Seconds(offset.1),
            ),
            base_time: None,
            compose: Compose::Replace,
            kind_override: None,
            path: "cues[0].root.pluginChain[0]".into(),
        }
    }

    fn with(mut e: PluginEntry, compose: Compose) -> PluginEntry {
        e.compose = compose;
        e
    }

    fn eval(entries: &[PluginEntry], t: f64) -> NodeAnim {
        evaluate(&AnimInput {
            text: "hello world",
            entries,
            display: (0.0, 2.0),
            node_base: None,
            t,
            seed: 7,
        })
    }

    #[test]
    fn phases_of_a_window() {
        assert_eq!(phase(0.5, (1.0, 2.0)), Phase::Before);
        assert_eq!(phase(1.0, (1.0, 2.0)), Phase::Active(0.0));
        assert_eq!(phase(1.5, (1.0, 2.0)), Phase::Active(0.5));
        assert_eq!(phase(2.0, (1.0, 2.0)), Phase::Active(1.0));
        assert_eq!(phase(2.5, (1.0, 2.0)), Phase::After);
        assert_eq!(phase(1.0, (1.0, 1.0)), Phase::Active(0.0));
    }

    #[test]
    fn pulse_peaks_at_m_squared() {
        let chain = [entry("pulse", Value::Null, (0.0, 0.0))];
        let a = eval(&chain, 1.0);
        close(a.channels.sx, 1.2);
        close(a.channels.sy, 1.2);
        close(a.effects.scale_x, 1.2);
        close(a.channels.sx * a.effects.scale_x, 1.44);
        let a = eval(&chain, 0.0);
        close(a.channels.sx, 1.0);
        close(a.effects.scale_y, 1.0);
        // After the window: channel held at its p = 1 value, DOM half at 1.
        let a = eval(&chain, 3.0);
        assert!((a.channels.sx - 1.0).abs() < 1e-12);
        close(a.effects.scale_x, 1.0);
    }

    #[test]
    fn spin_and_bob_y() {
        let a = eval(&[entry("spin", Value::Null, (0.0, 0.0))], 0.5);
        close(a.channels.rot, 90.0);
        let a = eval(&[entry("spin", json!({"fullTurns": 2}), (0.0, 0.0))], 5.0);
        close(a.channels.rot, 720.0);
        let a = eval(&[entry("bobY", Value::Null, (0.0, 0.0))], 0.5);
        close(a.channels.ty, 8.0);
        close(a.effects.ty, 4.0);
        let a = eval(&[entry("bobY", Value::Null, (0.0, 0.0))], 1.0);
        assert!(a.channels.ty.abs() < 1e-9);
        close(a.effects.ty, 8.0);
    }

    #[test]
    fn compose_add_and_multiply_across_a_chain() {
        let spin = entry("spin", Value::Null, (0.0, 0.0));
        let chain = [spin.clone(), with(spin.clone(), Compose::Add)];
        close(eval(&chain, 1.0).channels.rot, 360.0);
        // Replace after add overrides.
        let chain = [
            spin.clone(),
            with(spin.clone(), Compose::Add),
            entry("spin", json!({"fullTurns": 0.5}), (0.0, 0.0)),
        ];
        close(eval(&chain, 1.0).channels.rot, 90.0);
        // First multiply behaves like multiplying 1.
        let pulse = entry("pulse", Value::Null, (0.0, 0.0));
        let big = entry("pulse", json!({"maxScale": 1.5}), (0.0, 0.0));
        close(
            eval(&[with(pulse.clone(), Compose::Multiply)], 1.0)
                .channels
                .sx,
            1.2,
        );
        let a = eval(&[pulse.clone(), with(big, Compose::Multiply)], 1.0);
        close(a.channels.sx, 1.8);
        // DOM halves are not composed: the later pulse sets E's scale.
        close(a.effects.scale_x, 1.5);
        // bobY add onto bobY.
        let bob = entry("bobY", Value::Null, (0.0, 0.0));
        let a = eval(&[bob.clone(), with(bob, Compose::Add)], 0.5);
        close(a.channels.ty, 16.0);
    }

    #[test]
    fn windows_before_and_after() {
        // spin window [1, 2] via its own baseTime; before it: identity.
        let mut late = entry("spin", Value::Null, (0.0, 0.0));
        late.base_time = Some((1.0, 2.0));
        let a = eval(&[late.clone()], 0.5);
        assert_eq!(a.channels, Channels::default());
        close(eval(&[late.clone()], 1.5).channels.rot, 180.0);
        close(eval(&[late], 1.9999).channels.rot, 360.0 * 0.9999);
        // A DOM plugin before its window: plain text; after: held at p = 1.
        let mut fade = entry("fadein", Value::Null, (0.0, 0.0));
        fade.base_time = Some((1.0, 1.5));
        assert_eq!(eval(&[fade.clone()], 0.5).split, None);
        let s = eval(&[fade], 1.9).split.unwrap_or_else(|| SplitAnim {
            kind: SplitKind::Words,
            segments: vec![],
            boxes: vec![],
        });
        assert_eq!(s.kind, SplitKind::Chars);
        assert_eq!(s.boxes.len(), 11);
        assert!(s.boxes.iter().all(|b| b.opacity == 1.0));
        // Node base and the [-0.3, 0.3] window: t = 0 is p = 0.3 / 2.6.
        let a = evaluate(&AnimInput {
            text: "x",
            entries: &[entry("fadein", json!({"ease": "none"}), (-0.3, 0.3))],
            display: (0.0, 2.0),
            node_base: None,
            t: 0.0,
            seed: 0,
        });
        // T = 0.8 + 0.4 = 1.2; τ = 1.2·0.3/2.6; linear opacity = τ / 0.8.
        let tau = 1.2 * 0.3 / 2.6;
        close(
            a.split.map(|s| s.boxes[0].opacity).unwrap_or(-1.0),
            tau / 0.8,
        );
    }

    #[test]
    fn kind_override_unknown_ids_and_split_conflicts() {
        let mut pulse = entry("pulse", Value::Null, (0.0, 0.0));
        pulse.kind_override = Some(PluginKind::Channel);
        let a = eval(&[pulse.clone()], 1.0);
        close(a.channels.sx, 1.2);
        close(a.effects.scale_x, 1.0);
        pulse.kind_override = Some(PluginKind::Dom);
        let a = eval(&[pulse], 1.0);
        close(a.channels.sx, 1.0);
        close(a.effects.scale_x, 1.2);

        let a = eval(&[entry("fadeIn", Value::Null, (0.0, 0.0))], 1.0);
        assert_eq!(a, NodeAnim::default());

        // Later split plugin wins the structure.
        let chain = [
            entry("fadein", Value::Null, (0.0, 0.0)),
            entry("slideup", Value::Null, (0.0, 0.0)),
        ];
        let s = eval(&chain, 1.0).split.map(|s| (s.kind, s.boxes.len()));
        assert_eq!(s, Some((SplitKind::Words, 3)));
    }

    #[test]
    fn cwi_color_structure() {
        let e = PluginEntry {
            time_offset: (OffsetBound::Percent(0.0), OffsetBound::Percent(-10.0)),
            ..entry("cwi-color", json!({"color": "#00ff00"}), (0.0, 0.0))
        };
        // Window [0, 1.8]; t = 1.8 → q = 1: all letters target, word box 90 % white.
        let a = eval(std::slice::from_ref(&e), 1.8);
        let word = a.cwi_word.clone().unwrap_or_default();
        assert_eq!(
            word.color,
            Some(Color {
                r: 1.0,
                g: 1.0,
                b: 1.0,
                a: 0.9
            })
        );
        let s = a.split.unwrap_or_else(|| SplitAnim {
            kind: SplitKind::Chars,
            segments: vec![],
            boxes: vec![],
        });
        assert_eq!(s.kind, SplitKind::CwiLetters);
        assert_eq!(s.boxes.len(), 11);
        assert!(s
            .boxes
            .iter()
            .all(|b| b.color == Some(Color::rgba8(0, 255, 0, 1.0))));
        assert!(s.segments[5].is_space);
    }

    #[test]
    fn versioned_names_resolve_only_to_2_0_0() {
        let versioned = |v: &str| PluginEntry {
            version: Some(v.into()),
            name: format!("spin@{v}"),
            ..entry("spin", Value::Null, (0.0, 0.0))
        };
        close(eval(&[versioned("2.0.0")], 1.0).channels.rot, 180.0);
        for v in ["1.0.0", "2.0.1", "2", ""] {
            assert_eq!(eval(&[versioned(v)], 1.0), NodeAnim::default(), "@{v}");
        }
    }

    #[test]
    fn cwi_plugins_combine_on_one_word() {
        const CWI_LETTER_WHITE: Color = Color {
            r: 1.0,
            g: 1.0,
            b: 1.0,
            a: 0.9,
        };
        let color = entry("cwi-color", json!({"color": "#00ff00"}), (0.0, 0.0));
        let bounce = entry("cwi-bouncing", Value::Null, (0.0, 0.0));
        let loud = entry("cwi-loud", Value::Null, (0.0, 0.0));
        // t = 1 of [0, 2]: q = 0.5; 11 letters, step 0.04: letter 4 at u = 0.34 / 0.6.
        for chain in [
            [color.clone(), bounce.clone(), loud.clone()],
            [loud.clone(), bounce.clone(), color.clone()],
        ] {
            let a = eval(&chain, 1.0);
            let s = a.split.clone().unwrap_or_else(|| SplitAnim {
                kind: SplitKind::Chars,
                segments: vec![],
                boxes: vec![],
            });
            assert_eq!(s.kind, SplitKind::CwiLetters);
            assert_eq!(s.boxes.len(), 11);
            // Coloured by cwi-color (letters 0..5 done) and moved by cwi-bouncing.
            assert_eq!(s.boxes[4].color, Some(Color::rgba8(0, 255, 0, 1.0)));
            assert!(s.boxes[4].ty < -8.0, "{:?}", s.boxes[4]);
            assert_eq!(s.boxes[10].color, Some(CWI_LETTER_WHITE));
            // The word box: 90 % white, swollen by cwi-loud.
            let word = a.cwi_word.clone().unwrap_or_default();
            assert_eq!(word.color.map(|c| c.a), Some(0.9));
            assert!(word.scale_x > 2.0);
            // Wrapper channels from cwi-bouncing: e = 0.5 → sy = 1.05.
            close(a.channels.sy, 1.05);
        }
    }

    #[test]
    fn random_plugins_draw_per_entry_seeds() {
        let m = entry("magnetic", Value::Null, (0.0, 0.0));
        let twice = [m.clone(), m.clone()];
        let one = eval(std::slice::from_ref(&m), 0.3);
        assert_eq!(one, eval(std::slice::from_ref(&m), 0.3));
        // The later entry wins the split, with its own (different) targets.
        assert_ne!(eval(&twice, 0.3).split, one.split);
        assert_ne!(entry_seed(7, 0), entry_seed(7, 1));
        assert_ne!(entry_seed(7, 0), entry_seed(8, 0));
    }

    #[test]
    fn layout_changing_plugins() {
        let at = |entries: &[PluginEntry], t: f64| {
            text_layout(&AnimInput {
                text: "hello world",
                entries,
                display: (0.0, 2.0),
                node_base: None,
                t,
                seed: 7,
            })
        };
        assert_eq!(at(&[], 1.0), TextLayout::Plain);
        let mut elastic = entry("elastic", Value::Null, (0.0, 0.0));
        elastic.base_time = Some((1.0, 2.0));
        assert_eq!(at(std::slice::from_ref(&elastic), 0.5), TextLayout::Plain);
        assert_eq!(
            at(std::slice::from_ref(&elastic), 1.5),
            TextLayout::WordMargins {
                margin_milli_em: 100
            }
        );
        // Typewriter over [0, 2] at t = 0.5: p = 0.25, floor(0.25 / 0.05) = 5 units.
        let typewriter = entry("typewriter", Value::Null, (0.0, 0.0));
        let typed = TextLayout::Typed {
            prefix_bytes: 5,
            cursor: Some("|".into()),
        };
        assert_eq!(at(&[elastic.clone(), typewriter.clone()], 1.5), {
            // p = 0.75 → 15 units, capped at the 11 of the text.
            TextLayout::Typed {
                prefix_bytes: 11,
                cursor: Some("|".into()),
            }
        });
        assert_eq!(at(std::slice::from_ref(&typewriter), 0.5), typed);
        // The later entry wins, and evaluation agrees with the layout.
        let a = eval(&[typewriter.clone(), elastic.clone()], 1.5);
        assert_eq!(a.typed, None);
        assert_eq!(a.split.map(|s| s.kind), Some(SplitKind::Words));
        let a = eval(&[elastic, typewriter], 1.5);
        assert_eq!(a.split, None);
        assert_eq!(a.typed.map(|t| t.prefix_bytes), Some(11));
    }

    #[test]
    fn random_plugins_are_seeded_per_node_and_chain_entry() {
        assert_ne!(entry_seed(7, 0), entry_seed(7, 1));
        assert_ne!(entry_seed(7, 0), entry_seed(8, 0));
        let chain = [entry("elastic", Value::Null, (0.0, 0.0))];
        let tilt = |seed: u64| {
            let a = evaluate(&AnimInput {
                text: "hello world",
                entries: &chain,
                display: (0.0, 2.0),
                node_base: None,
                t: 0.3,
                seed,
            });
            a.split
                .map(|s| s.boxes.iter().map(|b| b.rotation_deg).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(tilt(7), tilt(7));
        assert_ne!(tilt(7), tilt(8));
        assert!(tilt(7)[0] != 0.0);
    }

    #[test]
    fn implemented_ids() {
        for id in IMPLEMENTED {
            assert!(is_implemented(id));
            assert!(manifest_kind(id).is_some());
        }
        assert!(!is_implemented("bobj"));
        assert!(!is_implemented("cwi-color@2.0.0"));
    }
}
