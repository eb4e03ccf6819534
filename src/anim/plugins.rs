//! The seven implemented plugins (PLUGINS.md §1, §2, §3, §11, §12, §13, §15). Parameters
//! come from the entry's `params` with each plugin's built-in defaults; a value of the
//! wrong type falls back to the default.

use std::f64::consts::TAU;

use serde_json::Value;

use super::color::{lerp_color, parse_css_color, parse_hex_rgb};
use super::easing::{sine_in_out, Ease};
use super::split::{split_text, SplitKind};
use super::timeline::{PropValue, Timeline};
use super::{BoxAnim, Channel, InheritedStyle, NodeAnim, ShadowPx, SplitAnim};
use crate::compose::display::Color;

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
        _ => Vec::new(),
    }
}

/// The DOM half of a plugin at progress p (the plugin is initialised).
pub(super) fn apply_dom(
    id: &str,
    params: &Value,
    p: f64,
    text: &str,
    inherited: &InheritedStyle,
    out: &mut NodeAnim,
) {
    match id {
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
            out.cwi_word.get_or_insert_with(|| BoxAnim {
                color: Some(CWI_WHITE),
                ..BoxAnim::default()
            });
            out.split = Some(cwi_color(text, params, p));
        }
        _ => {}
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
