//! The implemented plugins: here §1, §2, §3, §11, §12, §13, §15 of PLUGINS.md; one
//! submodule per further plugin. Parameters come from the entry's `params` with each
//! plugin's built-in defaults; a value of the wrong type falls back to the default.

// plug-b: layout-changing plugins (their own files).
mod elastic;
mod typewriter;

use std::f64::consts::TAU;

use serde_json::Value;

use super::color::{lerp_color, parse_css_color, parse_hex_rgb};
use super::easing::{sine_in_out, Ease};
use super::split::{split_text, SplitKind};
use super::timeline::{PropValue, Timeline};
use super::{BoxAnim, Channel, InheritedStyle, NodeAnim, ShadowPx, SplitAnim, TextLayout};
use crate::compose::display::Color;

// plug-a
mod cwi_bouncing;
mod cwi_loud;
mod cwi_whisper;
mod fliptype;
mod magnetic;

// rot
mod rotation;
// fx
mod glitch;
mod glow;
pub(crate) use glitch::noise_color;
// media
pub mod flames;

/// What a DOM plugin sees on one frame (it is initialised).
pub(super) struct DomInput<'a> {
    pub params: &'a Value,
    /// Progress in its window, 0 before and 1 after it.
    pub p: f64,
    pub text: &'a str,
    pub inherited: &'a InheritedStyle,
    /// Seed of this chain entry on this node: random plugins draw from it only.
    pub seed: u64,
    /// The plugin window in media seconds.
    pub window: (f64, f64),
    /// Media time.
    pub t: f64,
}

fn num(params: &Value, key: &str, default: f64) -> f64 {
    params
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
        .unwrap_or(default)
}

fn boolean(params: &Value, key: &str, default: bool) -> bool {
    params.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn string<'a>(params: &'a Value, key: &str, default: &'a str) -> &'a str {
    params.get(key).and_then(Value::as_str).unwrap_or(default)
}

/// Uniform in [a, b] (either order, no panic on an empty range), 5-decimal resolution like the
/// reference's generator (PLUGINS.md §0.6); seeded per node by the caller.
fn uniform(rng: &mut rand::rngs::SmallRng, a: f64, b: f64) -> f64 {
    use rand::Rng;
    let u = (rng.random::<f64>() * 1e5).floor() / 1e5;
    a + (b - a) * u
}

fn shadow(blur: f64, color: Color) -> Vec<ShadowPx> {
    vec![ShadowPx {
        x: 0.0,
        y: 0.0,
        blur,
        color,
    }]
}

/// The channel half of a plugin at progress p.
pub(super) fn channel_values(id: &str, params: &Value, p: f64) -> Vec<(Channel, f64)> {
    match id {
        "pulse" => {
            let m = num(params, "maxScale", 1.2);
            let cycles = num(params, "cycles", 1.0).max(1.0);
            let s = 1.0 + (m - 1.0) * (1.0 - (TAU * cycles * p).cos()) / 2.0;
            vec![(Channel::Sx, s), (Channel::Sy, s)]
        }
        "spin" => vec![(Channel::Rot, 360.0 * num(params, "fullTurns", 1.0) * p)],
        "bobY" => {
            let a = num(params, "amplitudePx", 8.0);
            let cycles = num(params, "cycles", 1.0).max(1.0);
            vec![(Channel::Ty, a * (TAU * cycles * p).sin())]
        }
        // plug-a
        "cwi-bouncing" => cwi_bouncing::channel_values(params, p),
        // fliptype's flip is a rotateX/rotateY channel, which has no visual effect in the
        // reference (SPEC §12.5): nothing is drawn for it (PLUGINS.md §6).
        "fliptype" => Vec::new(),
        _ => Vec::new(),
    }
}

/// The layout a DOM plugin imposes at progress p, if it changes the layout.
pub(super) fn layout_of(id: &str, params: &Value, p: f64, text: &str) -> Option<TextLayout> {
    match id {
        // plug-b
        "elastic" => Some(elastic::LAYOUT),
        "typewriter" => Some(typewriter::layout(text, params, p)),
        _ => None,
    }
}

/// The DOM half of a plugin at progress p (the plugin is initialised).
pub(super) fn apply_dom(id: &str, input: &DomInput, out: &mut NodeAnim) {
    let DomInput {
        params,
        p,
        text,
        inherited,
        seed,
        window,
        t,
    } = *input;
    match id {
        // plug-b: elastic and typewriter replace what earlier plugins built.
        "elastic" => {
            out.typed = None;
            out.split = Some(elastic::elastic(text, params, p, inherited, seed));
        }
        "typewriter" => {
            out.split = None;
            out.typed = Some(typewriter::typewriter(
                text, params, p, inherited, window, t,
            ));
        }
        "pulse" => {
            let m = num(params, "maxScale", 1.2);
            let s = up_and_down(p, 1.0, m);
            out.effects.scale_x = s;
            out.effects.scale_y = s;
        }
        "bobY" => out.effects.ty = up_and_down(p, 0.0, num(params, "amplitudePx", 8.0)),
        "fadein" => out.split = Some(fadein(text, params, p, inherited)),
        "slideup" => out.split = Some(slideup(text, params, p, inherited)),
        "scalepop" => out.split = Some(scalepop(text, params, p, inherited)),
        "cwi-color" => {
            let colored = cwi_color(text, params, p);
            let letters = cwi_letters(out, text);
            for (letter, c) in letters.boxes.iter_mut().zip(colored.boxes) {
                letter.color = c.color;
            }
        }
        // plug-a
        "magnetic" => out.split = Some(magnetic::split(text, params, p, inherited, seed)),
        "fliptype" => out.split = Some(fliptype::split(text, params, p, inherited)),
        "cwi-loud" => cwi_loud::apply(cwi_word(out), params, p),
        "cwi-whisper" => cwi_whisper::apply(cwi_word(out), params, p),
        "cwi-bouncing" => cwi_bouncing::apply(cwi_letters(out, text), params, p),
        // rot
        "rotation" => out.split = Some(rotation::split(text, params, p, inherited, seed)),
        // fx
        "glow" => glow::apply(out, params, p),
        "glitch" => out.glitch = Some(glitch::glitch(params, p, seed)),
        // media
        "flames" => out.flames = Some(flames::anim(params, p, window, t)),
        _ => {}
    }
}

/// The shared CWI word box (PLUGINS.md §15), created 90 % white by the first CWI plugin.
fn cwi_word(out: &mut NodeAnim) -> &mut BoxAnim {
    out.cwi_word.get_or_insert_with(|| BoxAnim {
        color: Some(CWI_WHITE),
        ..BoxAnim::default()
    })
}

/// The shared CWI letter boxes inside the word box: kept when a CWI plugin earlier in the
/// chain made them (so cwi-color's colours and cwi-bouncing's hops combine in either
/// order), otherwise made afresh with inherited (word) colour, replacing any other split.
fn cwi_letters<'a>(out: &'a mut NodeAnim, text: &str) -> &'a mut SplitAnim {
    cwi_word(out);
    let segments = split_text(text, SplitKind::CwiLetters);
    let reuse = out
        .split
        .as_ref()
        .is_some_and(|s| s.kind == SplitKind::CwiLetters && s.segments == segments);
    if !reuse {
        out.split = None;
    }
    out.split.get_or_insert_with(|| SplitAnim {
        kind: SplitKind::CwiLetters,
        boxes: vec![BoxAnim::default(); segments.len()],
        segments,
    })
}

/// A number inside an object parameter (`pulse.scale`); `None` when absent or no number.
fn nested_num(params: &Value, object: &str, key: &str) -> Option<f64> {
    params
        .get(object)
        .and_then(|o| o.get(key))
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// The CWI envelope F of cwi-loud / cwi-whisper (PLUGINS.md §16): quick rise over the
/// first 12 % of the window, hold, quick fall over the last 12 %.
fn cwi_envelope(q: f64) -> f64 {
    if q < 0.12 {
        Ease::CUBIC_OUT.apply(q / 0.12)
    } else if q > 0.88 {
        1.0 - Ease::CUBIC_IN.apply((q - 0.88) / 0.12)
    } else {
        1.0
    }
}

/// `from → peak` over p ∈ [0, ½] and back over [½, 1], both `sine.inOut`.
fn up_and_down(p: f64, from: f64, peak: f64) -> f64 {
    if p <= 0.5 {
        from + (peak - from) * sine_in_out(2.0 * p)
    } else {
        peak + (from - peak) * sine_in_out(2.0 * p - 1.0)
    }
}

fn run(tl: &Timeline, p: f64) -> Vec<BoxAnim> {
    tl.states_at(p * tl.duration())
        .iter()
        .map(|s| s.to_box_anim())
        .collect()
}

/// §1: characters fade from dim grey to white, growing from `scaleStart`.
fn fadein(text: &str, params: &Value, p: f64, inherited: &InheritedStyle) -> SplitAnim {
    let stagger = num(params, "staggerDelay", 0.1);
    let dur = num(params, "animationDuration", 0.8);
    let start_opacity = num(params, "startOpacity", 0.0);
    let scale_start = num(params, "scaleStart", 0.9);
    let ease = Ease::parse(string(params, "ease", "power2.out"));
    let segments = split_text(text, SplitKind::Chars);
    let mut tl = Timeline::new(segments.len(), inherited);
    for i in 0..segments.len() {
        let t0 = i as f64 * stagger;
        tl.set(
            i,
            0.0,
            &[
                PropValue::Opacity(start_opacity),
                PropValue::Scale(scale_start),
                PropValue::Color(Color::rgba8(0x99, 0x99, 0x99, 1.0)),
            ],
        );
        tl.to(
            i,
            t0,
            dur,
            ease,
            &[
                PropValue::Opacity(1.0),
                PropValue::Scale(1.0),
                PropValue::Color(Color::WHITE),
                PropValue::Brightness(1.3),
                PropValue::TextShadow(shadow(5.0, Color::rgba8(255, 255, 255, 0.3))),
            ],
        );
        tl.to(
            i,
            t0 + 0.6 * dur,
            0.2 * dur,
            Ease::POWER2_OUT,
            &[PropValue::Scale(1.03)],
        )
        .repeat(1, true);
        tl.to(
            i,
            t0 + dur,
            0.4,
            Ease::POWER1_OUT,
            &[
                PropValue::Brightness(1.0),
                PropValue::TextShadow(shadow(0.0, Color::rgba8(255, 255, 255, 0.0))),
            ],
        );
    }
    SplitAnim {
        kind: SplitKind::Chars,
        boxes: run(&tl, p),
        segments,
    }
}

/// §2: words rise `slideDistance` px into place, unblurring, grey → white.
fn slideup(text: &str, params: &Value, p: f64, inherited: &InheritedStyle) -> SplitAnim {
    let distance = num(params, "slideDistance", 30.0);
    let dur = num(params, "animationDuration", 1.0);
    let stagger = num(params, "staggerDelay", 0.12);
    let ease_name = string(params, "easeType", "power2.out");
    let ease = Ease::parse(ease_name);
    let blur = boolean(params, "blurEffect", true);
    let segments = split_text(text, SplitKind::Words);
    let mut tl = Timeline::new(segments.len(), inherited);
    let words = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_box(SplitKind::Words))
        .map(|(n, _)| n);
    for (i, target) in words.enumerate() {
        let t0 = i as f64 * stagger;
        tl.set(
            target,
            0.0,
            &[
                PropValue::Y(distance),
                PropValue::Opacity(0.0),
                if blur {
                    PropValue::Blur(3.0)
                } else {
                    PropValue::FilterNone
                },
            ],
        );
        tl.to(
            target,
            t0,
            dur,
            ease,
            &[
                PropValue::Y(0.0),
                PropValue::Opacity(1.0),
                PropValue::Blur(0.0),
            ],
        );
        // The plugin compares the ease name itself.
        if ease_name != "back.out" {
            tl.to(
                target,
                t0 + 0.8 * dur,
                0.2 * dur,
                Ease::POWER1_OUT,
                &[PropValue::Y(-2.0)],
            );
            tl.to(
                target,
                t0 + dur,
                0.2 * dur,
                Ease::POWER1_IN_OUT,
                &[PropValue::Y(0.0)],
            );
        }
        tl.from_to(
            target,
            t0 + 0.2 * dur,
            0.6 * dur,
            Ease::POWER1_OUT,
            &[PropValue::Color(Color::rgba8(0x88, 0x88, 0x88, 1.0))],
            &[PropValue::Color(Color::WHITE)],
        );
    }
    let mut boxes = run(&tl, p);
    for (b, seg) in boxes.iter_mut().zip(&segments) {
        b.clip_to_box = seg.is_box(SplitKind::Words);
    }
    SplitAnim {
        kind: SplitKind::Words,
        segments,
        boxes,
    }
}

/// §3: characters pop from nothing past `popScale`, flash yellow, spring back.
fn scalepop(text: &str, params: &Value, p: f64, inherited: &InheritedStyle) -> SplitAnim {
    let pop = num(params, "popScale", 1.5);
    let dur = num(params, "animationDuration", 1.2);
    let stagger = num(params, "staggerDelay", 0.08);
    let bounce = num(params, "bounceStrength", 0.6);
    let color_pop = boolean(params, "colorPop", true);
    let segments = split_text(text, SplitKind::Chars);
    let mut tl = Timeline::new(segments.len(), inherited);
    let yellow = Color::rgba8(255, 255, 153, 1.0);
    for i in 0..segments.len() {
        let t0 = i as f64 * stagger;
        tl.set(i, 0.0, &[PropValue::Scale(0.0), PropValue::Opacity(0.0)]);
        tl.to(
            i,
            t0,
            0.4 * dur,
            Ease::back_out(2.0),
            &[PropValue::Scale(pop), PropValue::Opacity(1.0)],
        );
        if color_pop {
            tl.to(
                i,
                t0 + 0.1 * dur,
                0.2 * dur,
                Ease::POWER2_OUT,
                &[
                    PropValue::Color(yellow),
                    PropValue::TextShadow(shadow(10.0, yellow.with_alpha_mul(0.8))),
                ],
            );
            tl.to(
                i,
                t0 + 0.3 * dur,
                0.4 * dur,
                Ease::POWER2_OUT,
                &[
                    PropValue::Color(Color::WHITE),
                    PropValue::TextShadow(shadow(0.0, yellow.with_alpha_mul(0.0))),
                ],
            );
        }
        tl.to(
            i,
            t0 + 0.4 * dur,
            0.6 * dur,
            Ease::elastic_out(bounce, 0.3),
            &[PropValue::Scale(1.0)],
        );
        tl.to(
            i,
            t0 + 0.8 * dur,
            0.1,
            Ease::POWER2_OUT,
            &[PropValue::Scale(1.1)],
        )
        .repeat(1, true);
    }
    SplitAnim {
        kind: SplitKind::Chars,
        boxes: run(&tl, p),
        segments,
    }
}

/// rgba(255,255,255,0.9): the CWI word colour and a letter's colour before its sweep.
const CWI_WHITE: Color = Color {
    r: 1.0,
    g: 1.0,
    b: 1.0,
    a: 0.9,
};

const CWI_DEFAULT_TARGET: &str = "#FFD400";

/// §15: letters sweep from white to the speaker colour, one after another.
fn cwi_color(text: &str, params: &Value, p: f64) -> SplitAnim {
    let explicit = string(params, "color", "");
    let target: Option<&str> = if !explicit.is_empty() {
        Some(explicit)
    } else {
        let speaker = string(params, "speaker", "");
        match params.get("palette").and_then(|p| p.get(speaker)) {
            // A present non-string entry is used as-is by the plugin: not a colour.
            Some(v) => v.as_str(),
            None => Some(CWI_DEFAULT_TARGET),
        }
    };
    // Mixes treat a non-hex target as white; the final value is the string as-is, which
    // the browser rejects when it is no colour (the letter then stays opaque white).
    let mix_target = target.and_then(parse_hex_rgb).unwrap_or(Color::WHITE);
    let final_color = target.and_then(parse_css_color).unwrap_or(Color::WHITE);
    let bulk = boolean(params, "bulk", false);

    let segments = split_text(text, SplitKind::CwiLetters);
    let n = segments.len() as f64;
    let q = p.clamp(0.0, 1.0);
    let mix = |w: f64| lerp_color(Color::WHITE, mix_target, Ease::CUBIC_OUT.apply(w));
    let boxes = (0..segments.len())
        .map(|k| {
            let color = if q >= 0.985 {
                final_color
            } else if bulk {
                mix(q)
            } else {
                let u = (q * n + 0.0001 - k as f64).clamp(0.0, 1.0);
                if u <= 0.0 {
                    CWI_WHITE
                } else if u >= 1.0 {
                    final_color
                } else {
                    mix(u)
                }
            };
            BoxAnim {
                color: Some(color),
                ..BoxAnim::default()
            }
        })
        .collect();
    SplitAnim {
        kind: SplitKind::CwiLetters,
        segments,
        boxes,
    }
}

/// Assertions shared by the plugin tests.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::compose::display::Color;

    pub fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    /// The colour's 8-bit RGB (transparent black when unset).
    pub fn rgb(c: Option<Color>) -> (u8, u8, u8) {
        let c = c.unwrap_or(Color::TRANSPARENT);
        let ch = |v: f32| (v * 255.0).round() as u8;
        (ch(c.r), ch(c.g), ch(c.b))
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{close, rgb};
    use super::*;
    use serde_json::json;

    fn inh() -> InheritedStyle {
        InheritedStyle::default()
    }

    #[test]
    fn fadein_characters_at_start_mid_and_end() {
        // N = 2, T = (N − 1)·0.1 + 0.8 + 0.4 = 1.3.
        let params = Value::Null;
        let at = |tau: f64| fadein("ab", &params, tau / 1.3, &inh());
        let s = at(0.0);
        assert_eq!(s.kind, SplitKind::Chars);
        assert_eq!(s.boxes.len(), 2);
        for b in &s.boxes {
            close(b.opacity, 0.0, 1e-12);
            close(b.scale_x, 0.9, 1e-12);
            assert_eq!(rgb(b.color), (0x99, 0x99, 0x99));
            close(b.brightness, 1.0, 1e-12);
            assert_eq!(b.text_shadow, None);
        }
        // τ = 0.4: char 0 at u = 0.5 (power2.out → 0.875), char 1 at u = 0.375.
        let s = at(0.4);
        let b0 = &s.boxes[0];
        close(b0.opacity, 0.875, 1e-9);
        close(b0.scale_x, 0.9875, 1e-9);
        close(b0.scale_y, 0.9875, 1e-9);
        assert_eq!(rgb(b0.color), (242, 242, 242)); // 153 + 102·0.875 = 242.25
        close(b0.brightness, 1.3 * 0.875, 1e-9);
        let sh = b0.text_shadow.clone().unwrap_or_default();
        assert_eq!(sh.len(), 1);
        close(sh[0].blur, 5.0 * 0.875, 1e-9);
        close(f64::from(sh[0].color.a), 0.3 * 0.875, 1e-6);
        close(s.boxes[1].opacity, 1.0 - 0.625f64.powi(3), 1e-9);
        // τ = 0.56: char 0's little pulse (from 0.48, captured 0.9 + 0.1·E(0.6)) mid leg 0.
        let captured = 0.9 + 0.1 * (1.0 - 0.4f64.powi(3));
        let s = at(0.56);
        close(
            s.boxes[0].scale_x,
            captured + (1.03 - captured) * 0.875,
            1e-9,
        );
        // End: white, no shadow, brightness 1, scale = captured pulse start ≈ 0.994.
        let s = at(1.3);
        for b in &s.boxes {
            close(b.opacity, 1.0, 1e-12);
            close(b.scale_x, captured, 1e-9);
            assert_eq!(b.color, Some(Color::WHITE));
            close(b.brightness, 1.0, 1e-12);
            assert_eq!(b.text_shadow, Some(vec![]));
        }
    }

    #[test]
    fn fadein_params_and_wrong_types() {
        let params = json!({"staggerDelay": 0.5, "animationDuration": "fast",
                            "startOpacity": 0.5, "ease": "none"});
        // T = 0.5 + 0.8 + 0.4 = 1.7; τ = 0.4 → char 0 linear u = 0.5.
        let s = fadein("ab", &params, 0.4 / 1.7, &inh());
        close(s.boxes[0].opacity, 0.75, 1e-9);
        close(s.boxes[1].opacity, 0.5, 1e-9);
    }

    #[test]
    fn slideup_words_rise_and_settle() {
        // M = 2, T = 0.12 + 1.2 = 1.32.
        let params = Value::Null;
        let at = |tau: f64| slideup("hi yo", &params, tau / 1.32, &inh());
        let s = at(0.0);
        assert_eq!(s.kind, SplitKind::Words);
        assert_eq!(s.boxes.len(), 3);
        let w = &s.boxes[0];
        close(w.ty, 30.0, 1e-12);
        close(w.opacity, 0.0, 1e-12);
        close(w.blur_px, 3.0, 1e-12);
        assert_eq!(rgb(w.color), (0x88, 0x88, 0x88));
        assert!(w.clip_to_box);
        assert_eq!(s.boxes[1], BoxAnim::default());
        let w = &at(0.5).boxes[0];
        close(w.ty, 3.75, 1e-9);
        close(w.opacity, 0.875, 1e-9);
        close(w.blur_px, 0.375, 1e-9);
        assert_eq!(rgb(w.color), (225, 225, 225)); // 136 + 119·0.75
                                                   // Overshoot from the captured y = 30·(1 − E(0.8)) = 0.24 toward −2.
        close(at(0.9).boxes[0].ty, 0.24 - 2.24 * 0.75, 1e-9);
        let s = at(1.32);
        for n in [0, 2] {
            let w = &s.boxes[n];
            close(w.ty, 0.0, 1e-12);
            close(w.opacity, 1.0, 1e-12);
            close(w.blur_px, 0.0, 1e-12);
            assert_eq!(w.color, Some(Color::WHITE));
            assert_eq!(w.text_shadow, None);
        }
    }

    #[test]
    fn slideup_back_out_has_no_overshoot_tweens() {
        // T = 0.12 + 1 = 1.12; at τ = 1.0 word 0 is at rest.
        let params = json!({"easeType": "back.out", "blurEffect": false});
        let s = slideup("hi yo", &params, 1.0 / 1.12, &inh());
        close(s.boxes[0].ty, 0.0, 1e-12);
        let s = slideup("hi yo", &params, 0.0, &inh());
        close(s.boxes[0].blur_px, 0.0, 1e-12);
        close(s.boxes[0].ty, 30.0, 1e-12);
    }

    #[test]
    fn scalepop_pops_flashes_and_springs_back() {
        // N = 2, T = 0.08 + max(1.2, 0.96 + 0.2) = 1.28.
        let params = Value::Null;
        let at = |tau: f64| scalepop("ab", &params, tau / 1.28, &inh());
        let b = &at(0.0).boxes[0];
        close(b.scale_x, 0.0, 1e-12);
        close(b.opacity, 0.0, 1e-12);
        // τ = 0.24: back.out(2)(0.5) = 1.125; colour tween at u = 0.5 (0.875).
        let b = &at(0.24).boxes[0];
        close(b.scale_x, 1.5 * 1.125, 1e-9);
        close(b.opacity, 1.0, 1e-12);
        assert_eq!(rgb(b.color), (255, 255, 166)); // 255 − 102·0.875 = 165.75
        let end = 1.5 - 0.5 * Ease::elastic_out(0.6, 0.3).apply(2.0 / 3.0);
        close(end, 0.998, 0.001);
        let s = at(1.28);
        for b in &s.boxes {
            close(b.scale_x, end, 1e-9);
            assert_eq!(b.color, Some(Color::WHITE));
            assert_eq!(b.text_shadow, Some(vec![]));
        }
        let s = scalepop("ab", &json!({"colorPop": false}), 1.0, &inh());
        assert_eq!(s.boxes[0].color, None);
        assert_eq!(s.boxes[0].text_shadow, None);
    }

    #[test]
    fn cwi_color_sweeps_letters() {
        let params = json!({"color": "#00ff00"});
        // q = 0.625, N = 4: letters 0, 1 done, letter 2 at u = 0.5001, letter 3 not started.
        let s = cwi_color("abcd", &params, 0.625);
        assert_eq!(s.kind, SplitKind::CwiLetters);
        let e = 1.0 - (1.0f64 - 0.5001).powi(3);
        let rb = (255.0 - 255.0 * e).round() as u8;
        assert_eq!(s.boxes[0].color, Some(Color::rgba8(0, 255, 0, 1.0)));
        assert_eq!(s.boxes[1].color, Some(Color::rgba8(0, 255, 0, 1.0)));
        assert_eq!(rgb(s.boxes[2].color), (rb, 255, rb));
        assert_eq!(s.boxes[2].color.map(|c| c.a), Some(1.0));
        assert_eq!(s.boxes[3].color, Some(CWI_WHITE));
        // q = 0: the 0.0001 nudge already starts letter 0 (opaque, ≈ white).
        let s = cwi_color("abcd", &params, 0.0);
        assert_eq!(s.boxes[0].color, Some(Color::WHITE));
        assert!(s.boxes[1..].iter().all(|b| b.color == Some(CWI_WHITE)));
        let s = cwi_color("abcd", &params, 0.985);
        assert!(s
            .boxes
            .iter()
            .all(|b| b.color == Some(Color::rgba8(0, 255, 0, 1.0))));
    }

    #[test]
    fn cwi_color_targets_and_bulk() {
        let yellow = Color::rgba8(0xff, 0xd4, 0x00, 1.0);
        let s = cwi_color("ab", &Value::Null, 1.0);
        assert_eq!(s.boxes[1].color, Some(yellow));
        let palette = json!({"speaker": "A", "palette": {"A": "#ff0000"}});
        assert_eq!(
            cwi_color("ab", &palette, 1.0).boxes[0].color,
            Some(Color::rgba8(255, 0, 0, 1.0))
        );
        // Explicit colour wins over the palette.
        let both = json!({"speaker": "A", "palette": {"A": "#ff0000"}, "color": "#0000ff"});
        assert_eq!(
            cwi_color("ab", &both, 1.0).boxes[0].color,
            Some(Color::rgba8(0, 0, 255, 1.0))
        );
        // Non-hex target: mixes as white, final value as-is.
        let named = json!({"color": "red"});
        assert_eq!(
            cwi_color("ab", &named, 0.25).boxes[0].color,
            Some(Color::WHITE)
        );
        assert_eq!(
            cwi_color("ab", &named, 1.0).boxes[0].color,
            Some(Color::rgba8(255, 0, 0, 1.0))
        );
        // Bulk: every letter mix(white, target, easeOutCubic(q)).
        let bulk = json!({"color": "#000000", "bulk": true});
        let s = cwi_color("abc", &bulk, 0.5);
        assert!(s.boxes.iter().all(|b| rgb(b.color) == (32, 32, 32))); // 255·0.125
                                                                       // Empty text: one no-break-space letter.
        assert_eq!(cwi_color("", &Value::Null, 0.5).boxes.len(), 1);
    }

    #[test]
    fn whole_text_halves() {
        close(up_and_down(0.0, 1.0, 1.2), 1.0, 1e-12);
        close(up_and_down(0.25, 1.0, 1.2), 1.1, 1e-12);
        close(up_and_down(0.5, 1.0, 1.2), 1.2, 1e-12);
        close(up_and_down(0.75, 1.0, 1.2), 1.1, 1e-12);
        close(up_and_down(1.0, 1.0, 1.2), 1.0, 1e-12);
        let v = channel_values("spin", &json!({"fullTurns": 2.5}), 0.5);
        assert_eq!(v, vec![(Channel::Rot, 450.0)]);
        let v = channel_values("bobY", &json!({"amplitudePx": 10}), 0.25);
        close(v[0].1, 10.0, 1e-12);
        // cycles below 1 count as 1 in the channel part.
        let v = channel_values("pulse", &json!({"cycles": 0.5}), 0.5);
        close(v[0].1, 1.2, 1e-12);
        assert!(channel_values("fadein", &Value::Null, 0.5).is_empty());
    }
}
