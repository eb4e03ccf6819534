//! Plugin evaluation (SPEC §12, PLUGINS.md): windows and progress, channel composition,
//! easing, the GSAP timeline model, text splitting, and the first seven plugins
//! (fadein, slideup, scalepop, pulse, spin, bobY, cwi-color). Pure functions of time.
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
pub use split::{split_text, Segment, SplitKind};

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
/// Transform about the box centre: translate(tx, ty) · rotate(rotation_deg) · scale(scale_x, scale_y).
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
    /// Seed for plugins that draw random numbers (none of the implemented ones does).
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
];

/// True for the plugin ids implemented here: fadein, slideup, scalepop, pulse, spin, bobY, cwi-color.
pub fn is_implemented(id: &str) -> bool {
    IMPLEMENTED.contains(&id)
}

/// The manifest kind of an implemented plugin.
pub fn manifest_kind(id: &str) -> Option<PluginKind> {
    match id {
        "fadein" | "slideup" | "scalepop" | "cwi-color" => Some(PluginKind::Dom),
        "pulse" | "bobY" => Some(PluginKind::Hybrid),
        "spin" => Some(PluginKind::Channel),
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
    for entry in input.entries {
        let Some(kind) = manifest_kind(&entry.id) else {
            continue;
        };
        let kind = entry.kind_override.unwrap_or(kind);
        let ph = phase(input.t, entry.window(input.node_base, input.display));
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
                plugins::apply_dom(&entry.id, &entry.params, p, input.text, inherited, &mut out);
            }
        }
    }
    out.channels = acc.finish();
    out
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
