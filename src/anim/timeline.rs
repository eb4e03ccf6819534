//! The GSAP 3 timeline model of PLUGINS.md §0.4, as a pure function of the timeline
//! position τ.
//!
//! Rules implemented: tweens rendered in start order (ties in insertion order), every
//! tween with `s ≤ τ` renders (completed ones keep writing their final value, the last
//! rendered wins); start values are captured as if played continuously, i.e. from the
//! state at exactly `τ = s`; `repeat`/`yoyo` legs; `set` = zero-length tween; `fromTo`
//! writes its from-values into the initial state when built. Every call evaluates from
//! the initial state, so seeking backwards is free.

use super::color::lerp_color;
use super::easing::Ease;
use super::{BoxAnim, InheritedStyle, ShadowPx};
use crate::compose::display::Color;

/// The CSS `filter` of a box, as far as the tweened plugins use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Filter {
    None,
    Brightness(f64),
    /// Blur radius in CSS px.
    Blur(f64),
}

impl Filter {
    /// The first number of the filter string (0 for `none`): what GSAP's string morph
    /// starts from.
    fn number(self) -> f64 {
        match self {
            Filter::None => 0.0,
            Filter::Brightness(v) | Filter::Blur(v) => v,
        }
    }
}

/// Animated state of one target box.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxState {
    pub x: f64,
    pub y: f64,
    pub scale_x: f64,
    pub scale_y: f64,
    pub rotation: f64,
    pub opacity: f64,
    /// `None` = inherited from the node.
    pub color: Option<Color>,
    pub filter: Filter,
    /// `None` = inherited from the node; `Some(vec![])` = none.
    pub text_shadow: Option<Vec<ShadowPx>>,
}

impl Default for BoxState {
    fn default() -> Self {
        BoxState {
            x: 0.0,
            y: 0.0,
            scale_x: 1.0,
            scale_y: 1.0,
            rotation: 0.0,
            opacity: 1.0,
            color: None,
            filter: Filter::None,
            text_shadow: None,
        }
    }
}

impl BoxState {
    /// The box as the compositor consumes it: opacity clamped to [0, 1], fully
    /// transparent shadows dropped.
    pub fn to_box_anim(&self) -> BoxAnim {
        let (brightness, blur_px) = match self.filter {
            Filter::None => (1.0, 0.0),
            Filter::Brightness(b) => (b.max(0.0), 0.0),
            Filter::Blur(r) => (1.0, r.max(0.0)),
        };
        BoxAnim {
            tx: self.x,
            ty: self.y,
            scale_x: self.scale_x,
            scale_y: self.scale_y,
            rotation_deg: self.rotation,
            opacity: self.opacity.clamp(0.0, 1.0),
            color: self.color,
            text_shadow: self
                .text_shadow
                .as_ref()
                .map(|v| v.iter().copied().filter(|s| s.color.a > 0.0).collect()),
            brightness,
            blur_px,
            // Plugins that need another origin or clipping set it on the result.
            ..BoxAnim::default()
        }
    }
}

/// A property and its target value, as written in a GSAP vars object.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    X(f64),
    Y(f64),
    /// Both axes.
    Scale(f64),
    ScaleX(f64),
    ScaleY(f64),
    Rotation(f64),
    Opacity(f64),
    Color(Color),
    /// `filter: brightness(b)`.
    Brightness(f64),
    /// `filter: blur(r px)`.
    Blur(f64),
    /// `filter: none`.
    FilterNone,
    /// A text-shadow list (`vec![]` = none).
    TextShadow(Vec<ShadowPx>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    X,
    Y,
    ScaleX,
    ScaleY,
    Rotation,
    Opacity,
    Color,
    Filter,
    TextShadow,
}

#[derive(Debug, Clone, PartialEq)]
enum SlotVal {
    Num(f64),
    Color(Option<Color>),
    Filter(Filter),
    Shadow(Option<Vec<ShadowPx>>),
}

fn expand(props: &[PropValue]) -> Vec<(Slot, SlotVal)> {
    let mut out = Vec::with_capacity(props.len() + 1);
    for p in props {
        match p {
            PropValue::X(v) => out.push((Slot::X, SlotVal::Num(*v))),
            PropValue::Y(v) => out.push((Slot::Y, SlotVal::Num(*v))),
            PropValue::Scale(v) => {
                out.push((Slot::ScaleX, SlotVal::Num(*v)));
                out.push((Slot::ScaleY, SlotVal::Num(*v)));
            }
            PropValue::ScaleX(v) => out.push((Slot::ScaleX, SlotVal::Num(*v))),
            PropValue::ScaleY(v) => out.push((Slot::ScaleY, SlotVal::Num(*v))),
            PropValue::Rotation(v) => out.push((Slot::Rotation, SlotVal::Num(*v))),
            PropValue::Opacity(v) => out.push((Slot::Opacity, SlotVal::Num(*v))),
            PropValue::Color(c) => out.push((Slot::Color, SlotVal::Color(Some(*c)))),
            PropValue::Brightness(b) => {
                out.push((Slot::Filter, SlotVal::Filter(Filter::Brightness(*b))))
            }
            PropValue::Blur(r) => out.push((Slot::Filter, SlotVal::Filter(Filter::Blur(*r)))),
            PropValue::FilterNone => out.push((Slot::Filter, SlotVal::Filter(Filter::None))),
            PropValue::TextShadow(s) => {
                out.push((Slot::TextShadow, SlotVal::Shadow(Some(s.clone()))))
            }
        }
    }
    out
}

fn read(state: &BoxState, slot: Slot) -> SlotVal {
    match slot {
        Slot::X => SlotVal::Num(state.x),
        Slot::Y => SlotVal::Num(state.y),
        Slot::ScaleX => SlotVal::Num(state.scale_x),
        Slot::ScaleY => SlotVal::Num(state.scale_y),
        Slot::Rotation => SlotVal::Num(state.rotation),
        Slot::Opacity => SlotVal::Num(state.opacity),
        Slot::Color => SlotVal::Color(state.color),
        Slot::Filter => SlotVal::Filter(state.filter),
        Slot::TextShadow => SlotVal::Shadow(state.text_shadow.clone()),
    }
}

fn write(state: &mut BoxState, slot: Slot, val: SlotVal) {
    match (slot, val) {
        (Slot::X, SlotVal::Num(v)) => state.x = v,
        (Slot::Y, SlotVal::Num(v)) => state.y = v,
        (Slot::ScaleX, SlotVal::Num(v)) => state.scale_x = v,
        (Slot::ScaleY, SlotVal::Num(v)) => state.scale_y = v,
        (Slot::Rotation, SlotVal::Num(v)) => state.rotation = v,
        (Slot::Opacity, SlotVal::Num(v)) => state.opacity = v,
        (Slot::Color, SlotVal::Color(c)) => state.color = c,
        (Slot::Filter, SlotVal::Filter(f)) => state.filter = f,
        (Slot::TextShadow, SlotVal::Shadow(s)) => state.text_shadow = s,
        // `expand` and `read` only ever pair a slot with its own value kind.
        _ => {}
    }
}

const NO_SHADOW: ShadowPx = ShadowPx {
    x: 0.0,
    y: 0.0,
    blur: 0.0,
    color: Color::TRANSPARENT,
};

/// The value at eased fraction `e` between `start` and `end` (GSAP semantics: string-like
/// values show the start unchanged at e = 0 and the end at e = 1).
fn interpolate(start: &SlotVal, end: &SlotVal, e: f64, inherited: &InheritedStyle) -> SlotVal {
    match (start, end) {
        (SlotVal::Num(a), SlotVal::Num(b)) => SlotVal::Num(a + (b - a) * e),
        (_, _) if e == 0.0 => start.clone(),
        (_, _) if e == 1.0 => end.clone(),
        (SlotVal::Color(a), SlotVal::Color(b)) => {
            let a = a.unwrap_or(inherited.color);
            let b = b.unwrap_or(inherited.color);
            SlotVal::Color(Some(lerp_color(a, b, e)))
        }
        (SlotVal::Filter(a), SlotVal::Filter(b)) => {
            let from = a.number();
            let lerp = |to: f64| from + (to - from) * e;
            SlotVal::Filter(match *b {
                Filter::None => Filter::None,
                Filter::Brightness(to) => Filter::Brightness(lerp(to)),
                Filter::Blur(to) => Filter::Blur(lerp(to)),
            })
        }
        (SlotVal::Shadow(a), SlotVal::Shadow(b)) => {
            let from = a
                .as_ref()
                .unwrap_or(&inherited.text_shadow)
                .first()
                .copied()
                .unwrap_or(NO_SHADOW);
            let to = b
                .as_ref()
                .unwrap_or(&inherited.text_shadow)
                .first()
                .copied()
                .unwrap_or(NO_SHADOW);
            let l = |x: f64, y: f64| x + (y - x) * e;
            SlotVal::Shadow(Some(vec![ShadowPx {
                x: l(from.x, to.x),
                y: l(from.y, to.y),
                blur: l(from.blur, to.blur).max(0.0),
                color: lerp_color(from.color, to.color, e),
            }]))
        }
        // Mismatched kinds cannot be built (see `write`); keep the end value.
        _ => end.clone(),
    }
}

#[derive(Debug, Clone)]
struct Tween {
    target: usize,
    start: f64,
    duration: f64,
    ease: Ease,
    repeat: u32,
    yoyo: bool,
    ends: Vec<(Slot, SlotVal)>,
    /// fromTo start values (aligned with `ends`); `None` = capture at `start`.
    fixed_start: Option<Vec<Option<SlotVal>>>,
}

impl Tween {
    fn end_time(&self) -> f64 {
        self.start + self.duration * (f64::from(self.repeat) + 1.0)
    }

    /// Writes the tween's values at timeline time `tau ≥ start`.
    fn render(&self, starts: &[SlotVal], tau: f64, state: &mut BoxState, inh: &InheritedStyle) {
        let e = if self.duration <= 0.0 {
            1.0
        } else {
            let local = (tau - self.start).max(0.0);
            let (leg, u) = if tau >= self.end_time() {
                (self.repeat, 1.0)
            } else {
                let leg = ((local / self.duration).floor() as u32).min(self.repeat);
                (
                    leg,
                    (local - f64::from(leg) * self.duration) / self.duration,
                )
            };
            if self.yoyo && leg % 2 == 1 {
                self.ease.apply(1.0 - u)
            } else {
                self.ease.apply(u)
            }
        };
        for ((slot, end), start) in self.ends.iter().zip(starts) {
            write(state, *slot, interpolate(start, end, e, inh));
        }
    }
}

/// Handle to tune a tween just added (repeat / yoyo).
pub struct TweenRef<'a>(&'a mut Tween);

impl TweenRef<'_> {
    /// `repeat` extra legs; with `yoyo` the odd legs run backwards.
    pub fn repeat(self, repeat: u32, yoyo: bool) -> Self {
        self.0.repeat = repeat;
        self.0.yoyo = yoyo;
        self
    }
}

/// A GSAP-style timeline over a fixed set of target boxes.
#[derive(Debug, Clone)]
pub struct Timeline {
    initial: Vec<BoxState>,
    inherited: InheritedStyle,
    tweens: Vec<Tween>,
}

impl Timeline {
    /// `targets` boxes, each starting from the identity state; `inherited` resolves
    /// `None` (inherited) colours and shadows when a tween interpolates from them.
    pub fn new(targets: usize, inherited: &InheritedStyle) -> Self {
        Timeline {
            initial: vec![BoxState::default(); targets],
            inherited: inherited.clone(),
            tweens: Vec::new(),
        }
    }

    pub fn targets(&self) -> usize {
        self.initial.len()
    }

    /// `tl.to(target, vars, start)` with duration and ease. Out-of-range targets are
    /// ignored by evaluation.
    pub fn to(
        &mut self,
        target: usize,
        start: f64,
        duration: f64,
        ease: Ease,
        props: &[PropValue],
    ) -> TweenRef<'_> {
        self.push(target, start, duration, ease, expand(props), None)
    }

    /// `tl.set(target, vars, at)`.
    pub fn set(&mut self, target: usize, at: f64, props: &[PropValue]) {
        self.push(target, at, 0.0, Ease::LINEAR, expand(props), None);
    }

    /// `tl.fromTo(target, from, to, start)`: the from-values are written into the initial
    /// state right away (GSAP `immediateRender`) and are the tween's start values.
    /// Properties of `to` missing from `from` capture their start as usual.
    pub fn from_to(
        &mut self,
        target: usize,
        start: f64,
        duration: f64,
        ease: Ease,
        from: &[PropValue],
        to: &[PropValue],
    ) -> TweenRef<'_> {
        let from = expand(from);
        if let Some(init) = self.initial.get_mut(target) {
            for (slot, val) in &from {
                write(init, *slot, val.clone());
            }
        }
        let ends = expand(to);
        let fixed: Vec<Option<SlotVal>> = ends
            .iter()
            .map(|(slot, _)| {
                from.iter()
                    .rev()
                    .find(|(s, _)| s == slot)
                    .map(|(_, v)| v.clone())
            })
            .collect();
        self.push(target, start, duration, ease, ends, Some(fixed))
    }

    fn push(
        &mut self,
        target: usize,
        start: f64,
        duration: f64,
        ease: Ease,
        ends: Vec<(Slot, SlotVal)>,
        fixed_start: Option<Vec<Option<SlotVal>>>,
    ) -> TweenRef<'_> {
        self.tweens.push(Tween {
            target,
            start: if start.is_finite() { start } else { 0.0 },
            duration: if duration.is_finite() {
                duration.max(0.0)
            } else {
                0.0
            },
            ease,
            repeat: 0,
            yoyo: false,
            ends,
            fixed_start,
        });
        let last = self.tweens.len() - 1;
        TweenRef(&mut self.tweens[last])
    }

    /// Total length T: the latest end of all tweens (0 when empty).
    pub fn duration(&self) -> f64 {
        self.tweens.iter().map(Tween::end_time).fold(0.0, f64::max)
    }

    /// The state of every target at timeline time `tau`.
    pub fn states_at(&self, tau: f64) -> Vec<BoxState> {
        let mut per_target: Vec<Vec<usize>> = vec![Vec::new(); self.initial.len()];
        let mut order: Vec<usize> = (0..self.tweens.len()).collect();
        // Stable: ties keep insertion order.
        order.sort_by(|&a, &b| self.tweens[a].start.total_cmp(&self.tweens[b].start));
        for i in order {
            if let Some(list) = per_target.get_mut(self.tweens[i].target) {
                list.push(i);
            }
        }
        per_target
            .iter()
            .zip(&self.initial)
            .map(|(list, init)| self.evaluate_target(list, init, tau))
            .collect()
    }

    fn evaluate_target(&self, list: &[usize], init: &BoxState, tau: f64) -> BoxState {
        // Start values of each tween, captured from the state at exactly its start.
        let mut starts: Vec<Vec<SlotVal>> = Vec::with_capacity(list.len());
        for (k, &ti) in list.iter().enumerate() {
            let tween = &self.tweens[ti];
            let mut at_start = init.clone();
            for (j, &tj) in list[..k].iter().enumerate() {
                self.tweens[tj].render(&starts[j], tween.start, &mut at_start, &self.inherited);
            }
            let captured = tween
                .ends
                .iter()
                .enumerate()
                .map(
                    |(n, (slot, _))| match tween.fixed_start.as_ref().and_then(|f| f.get(n)) {
                        Some(Some(v)) => v.clone(),
                        _ => read(&at_start, *slot),
                    },
                )
                .collect();
            starts.push(captured);
        }
        let mut state = init.clone();
        for (k, &ti) in list.iter().enumerate() {
            let tween = &self.tweens[ti];
            if tween.start <= tau {
                tween.render(&starts[k], tau, &mut state, &self.inherited);
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inh() -> InheritedStyle {
        InheritedStyle::default()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn tween_interpolates_with_ease_and_holds_end() {
        let mut tl = Timeline::new(1, &inh());
        tl.to(0, 1.0, 2.0, Ease::POWER2_OUT, &[PropValue::X(10.0)]);
        close(tl.duration(), 3.0);
        close(tl.states_at(0.5)[0].x, 0.0);
        close(tl.states_at(2.0)[0].x, 8.75);
        close(tl.states_at(5.0)[0].x, 10.0);
    }

    #[test]
    fn start_values_are_captured_at_the_tween_start() {
        // Main tween scale 0.9 → 1 over [0, 1] (linear); a later tween from 0.6
        // captures 0.96 and goes to 2 over [0.6, 0.8]; it renders after the main tween.
        let mut tl = Timeline::new(1, &inh());
        tl.set(0, 0.0, &[PropValue::Scale(0.9)]);
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::Scale(1.0)]);
        tl.to(0, 0.6, 0.2, Ease::LINEAR, &[PropValue::Scale(2.0)]);
        close(tl.states_at(0.5)[0].scale_x, 0.95);
        close(tl.states_at(0.7)[0].scale_x, 0.96 + (2.0 - 0.96) * 0.5);
        // Completed later tween keeps writing its end value over the main tween.
        let s = &tl.states_at(0.9)[0];
        close(s.scale_x, 2.0);
        close(s.scale_y, 2.0);
    }

    #[test]
    fn yoyo_legs_run_back_to_the_captured_start() {
        let mut tl = Timeline::new(1, &inh());
        tl.set(0, 0.0, &[PropValue::Y(4.0)]);
        tl.to(0, 1.0, 1.0, Ease::LINEAR, &[PropValue::Y(8.0)])
            .repeat(1, true);
        close(tl.duration(), 3.0);
        close(tl.states_at(1.5)[0].y, 6.0);
        close(tl.states_at(2.0)[0].y, 8.0);
        close(tl.states_at(2.25)[0].y, 7.0);
        close(tl.states_at(10.0)[0].y, 4.0);
        // Without yoyo the second leg restarts from the start value.
        let mut tl = Timeline::new(1, &inh());
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::Y(8.0)])
            .repeat(1, false);
        close(tl.states_at(1.25)[0].y, 2.0);
        close(tl.states_at(2.0)[0].y, 8.0);
        // Three legs with yoyo end at the end value.
        let mut tl = Timeline::new(1, &inh());
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::Y(8.0)])
            .repeat(2, true);
        close(tl.states_at(3.0)[0].y, 8.0);
    }

    #[test]
    fn set_applies_once_passed() {
        let mut tl = Timeline::new(2, &inh());
        tl.set(1, 0.5, &[PropValue::Opacity(0.25)]);
        close(tl.states_at(0.4)[1].opacity, 1.0);
        close(tl.states_at(0.5)[1].opacity, 0.25);
        close(tl.states_at(0.5)[0].opacity, 1.0);
        close(tl.duration(), 0.5);
    }

    #[test]
    fn from_to_applies_from_values_at_build() {
        let grey = Color::rgba8(0x88, 0x88, 0x88, 1.0);
        let mut tl = Timeline::new(1, &inh());
        tl.from_to(
            0,
            1.0,
            1.0,
            Ease::LINEAR,
            &[PropValue::Color(grey)],
            &[PropValue::Color(Color::WHITE)],
        );
        assert_eq!(tl.states_at(0.0)[0].color, Some(grey));
        // 136 + 119·0.5 = 195.5 → 196.
        assert_eq!(
            tl.states_at(1.5)[0].color,
            Some(Color::rgba8(196, 196, 196, 1.0))
        );
        assert_eq!(tl.states_at(2.0)[0].color, Some(Color::WHITE));
    }

    #[test]
    fn last_rendered_wins_on_ties_in_insertion_order() {
        let mut tl = Timeline::new(1, &inh());
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::X(10.0)]);
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::X(-10.0)]);
        // The second captured x = 0 at τ = 0 (first tween at u = 0).
        close(tl.states_at(0.5)[0].x, -5.0);
    }

    #[test]
    fn filter_morphs_from_none_as_zero() {
        let mut tl = Timeline::new(1, &inh());
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::Brightness(1.3)]);
        tl.to(0, 1.0, 1.0, Ease::LINEAR, &[PropValue::Brightness(1.0)]);
        assert_eq!(tl.states_at(0.0)[0].filter, Filter::None);
        assert_eq!(tl.states_at(0.5)[0].filter, Filter::Brightness(0.65));
        assert_eq!(tl.states_at(1.0)[0].filter, Filter::Brightness(1.3));
        let b = tl.states_at(1.5)[0].to_box_anim().brightness;
        close(b, 1.15);
        let mut tl = Timeline::new(1, &inh());
        tl.set(0, 0.0, &[PropValue::Blur(3.0)]);
        tl.to(0, 0.0, 1.0, Ease::LINEAR, &[PropValue::Blur(0.0)]);
        close(tl.states_at(0.25)[0].to_box_anim().blur_px, 2.25);
    }

    #[test]
    fn text_shadow_morphs_single_shadow_from_first_inherited() {
        let inherited = InheritedStyle {
            color: Color::WHITE,
            text_shadow: vec![
                ShadowPx {
                    x: 2.0,
                    y: 2.0,
                    blur: 4.0,
                    color: Color::BLACK,
                },
                NO_SHADOW,
            ],
        };
        let target = ShadowPx {
            x: 0.0,
            y: 0.0,
            blur: 10.0,
            color: Color::rgba8(255, 255, 153, 0.8),
        };
        let mut tl = Timeline::new(1, &inherited);
        tl.to(
            0,
            0.0,
            1.0,
            Ease::LINEAR,
            &[PropValue::TextShadow(vec![target])],
        );
        assert_eq!(tl.states_at(0.0)[0].text_shadow, None);
        let mid = tl.states_at(0.5)[0].text_shadow.clone().unwrap_or_default();
        assert_eq!(mid.len(), 1);
        close(mid[0].x, 1.0);
        close(mid[0].blur, 7.0);
        let c = mid[0].color;
        assert_eq!(
            (c.r, c.g, c.b),
            (128.0 / 255.0, 128.0 / 255.0, 77.0 / 255.0)
        );
        assert!((c.a - 0.9).abs() < 1e-6);
        assert_eq!(tl.states_at(1.0)[0].text_shadow, Some(vec![target]));
    }

    #[test]
    fn box_anim_clamps_opacity_and_drops_clear_shadows() {
        let s = BoxState {
            opacity: 1.2,
            text_shadow: Some(vec![NO_SHADOW]),
            ..BoxState::default()
        };
        let b = s.to_box_anim();
        close(b.opacity, 1.0);
        assert_eq!(b.text_shadow, Some(vec![]));
    }
}
