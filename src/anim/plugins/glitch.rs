//! §7 glitch: red and cyan copies of the text (opacity 0.5, screen blend, in the node's own
//! layer) jitter under the white original, which goes grey and blurred, blinks and vanishes,
//! then everything eases back to plain white text.
//!
//! The intended behaviour is built (once per appearance, PLUGINS §0.7), with the random
//! offsets drawn from the entry's seed (§0.6) at the reference's 5-decimal resolution. The
//! original's transforms (x/y jitter, the scaleY/skewX squash) are in the timeline but never
//! drawn: the reference cannot transform the plain inline text.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::{boolean, num};
use crate::anim::easing::Ease;
use crate::anim::timeline::{Filter, PropValue, Timeline};
use crate::anim::{BoxAnim, GlitchAnim, GlitchCopy, InheritedStyle};
use crate::compose::display::Color;

const ORIGINAL: usize = 0;
const RED: usize = 1;
const CYAN: usize = 2;
/// `#ff0040` and `#00ffff`.
const RED_COLOR: Color = Color {
    r: 1.0,
    g: 0.0,
    b: 64.0 / 255.0,
    a: 1.0,
};
const CYAN_COLOR: Color = Color {
    r: 0.0,
    g: 1.0,
    b: 1.0,
    a: 1.0,
};
/// The copies' resting opacity.
const COPY_OPACITY: f64 = 0.5;

/// The random numbers of one build, in drawing order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Draws {
    /// Original jitter (invisible): X ∈ U(−I, I), Y ∈ U(−I/2, I/2).
    pub x: f64,
    pub y: f64,
    /// Red and cyan: x ∈ U(−I/2, I/2), opacity ∈ U(0.3, 0.8).
    pub red: (f64, f64),
    pub cyan: (f64, f64),
    /// The squash's skew (invisible), degrees ∈ U(−5, 5).
    pub skew: f64,
}

impl Draws {
    pub(super) fn new(seed: u64, intensity: f64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut uniform = |lo: f64, hi: f64| {
            let u: f64 = rng.random();
            lo + (hi - lo) * ((u * 1e5).round() / 1e5)
        };
        let i = intensity;
        Draws {
            x: uniform(-i, i),
            y: uniform(-i / 2.0, i / 2.0),
            red: (uniform(-i / 2.0, i / 2.0), uniform(0.3, 0.8)),
            cyan: (uniform(-i / 2.0, i / 2.0), uniform(0.3, 0.8)),
            skew: uniform(-5.0, 5.0),
        }
    }
}

/// The timeline of one build and its length T = max(1.3, A).
pub(super) fn timeline(params: &Value, draws: &Draws) -> (Timeline, f64) {
    let a = num(params, "animationDuration", 2.0).max(0.2);
    let separation = boolean(params, "colorSeparation", true);
    let noise = boolean(params, "noiseEffect", true);
    let mut tl = Timeline::new(3, &InheritedStyle::default());
    // The original's jitter: 4 linear legs of 0.1 (not drawn, see the module doc).
    tl.to(
        ORIGINAL,
        0.0,
        0.1,
        Ease::LINEAR,
        &[PropValue::X(draws.x), PropValue::Y(draws.y)],
    )
    .repeat(3, true);
    if separation {
        for target in [RED, CYAN] {
            tl.set(target, 0.0, &[PropValue::Opacity(COPY_OPACITY)]);
        }
        let (xr, or) = draws.red;
        tl.to(
            RED,
            0.0,
            0.05,
            Ease::LINEAR,
            &[PropValue::X(xr), PropValue::Opacity(or)],
        )
        .repeat(5, true);
        let (xc, oc) = draws.cyan;
        tl.to(
            CYAN,
            0.1,
            0.07,
            Ease::LINEAR,
            &[PropValue::X(xc), PropValue::Opacity(oc)],
        )
        .repeat(4, true);
    }
    if noise {
        // `none → blur(1px) saturate(2) contrast(1.2)`: every argument rises from 0 together,
        // so one number (the blur radius) carries the level u.
        tl.to(ORIGINAL, 0.3, 0.1, Ease::LINEAR, &[PropValue::Blur(1.0)])
            .repeat(1, true);
    }
    tl.to(
        ORIGINAL,
        0.5,
        0.05,
        Ease::POWER1_OUT,
        &[PropValue::Opacity(0.0)],
    )
    .repeat(1, true);
    tl.to(
        ORIGINAL,
        1.0,
        0.03,
        Ease::POWER1_OUT,
        &[PropValue::Opacity(0.0)],
    )
    .repeat(2, true);
    tl.to(ORIGINAL, 1.2, 0.05, Ease::LINEAR, &[PropValue::ScaleY(0.8)])
        .repeat(1, true);
    let reset = |opacity: f64| {
        [
            PropValue::X(0.0),
            PropValue::Y(0.0),
            PropValue::ScaleY(1.0),
            PropValue::FilterNone,
            PropValue::Opacity(opacity),
        ]
    };
    tl.to(ORIGINAL, a - 0.2, 0.2, Ease::POWER2_OUT, &reset(1.0));
    if separation {
        for target in [RED, CYAN] {
            tl.to(target, a - 0.2, 0.2, Ease::POWER2_OUT, &reset(COPY_OPACITY));
        }
    }
    (tl, a.max(1.3))
}

/// The glitch state at progress p of a build seeded with `seed`.
pub(super) fn glitch(params: &Value, p: f64, seed: u64) -> GlitchAnim {
    let intensity = num(params, "glitchIntensity", 5.0);
    let draws = Draws::new(seed, intensity);
    let (tl, total) = timeline(params, &draws);
    let states = tl.states_at(p.clamp(0.0, 1.0) * total);
    let original = states
        .get(ORIGINAL)
        .map(|s| s.to_box_anim())
        .unwrap_or_default();
    let noise = match states.get(ORIGINAL).map(|s| s.filter) {
        Some(Filter::Blur(u)) => Some(u.clamp(0.0, 1.0)),
        _ => None,
    };
    let copies = if boolean(params, "colorSeparation", true) {
        [(RED, RED_COLOR), (CYAN, CYAN_COLOR)]
            .into_iter()
            .filter_map(|(i, color)| {
                states.get(i).map(|s| GlitchCopy {
                    color,
                    tx: s.x,
                    opacity: s.opacity.clamp(0.0, 1.0),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    GlitchAnim {
        original: BoxAnim {
            color: Some(Color::WHITE),
            blur_px: 0.0,
            brightness: 1.0,
            ..original
        },
        noise,
        copies,
    }
}

/// A flat colour through `saturate(2u) contrast(1.2u)` (CSS filters act on unpremultiplied
/// sRGB; each function's result is clamped to [0, 1]). Alpha is untouched.
pub(crate) fn noise_color(c: Color, u: f64) -> Color {
    let s = 2.0 * u;
    let k = 1.2 * u;
    let (r, g, b) = (f64::from(c.r), f64::from(c.g), f64::from(c.b));
    let sat = [
        (0.213 + 0.787 * s) * r + (0.715 - 0.715 * s) * g + (0.072 - 0.072 * s) * b,
        (0.213 - 0.213 * s) * r + (0.715 + 0.285 * s) * g + (0.072 - 0.072 * s) * b,
        (0.213 - 0.213 * s) * r + (0.715 - 0.715 * s) * g + (0.072 + 0.928 * s) * b,
    ]
    .map(|v| v.clamp(0.0, 1.0));
    let [r, g, b] = sat.map(|v| ((v - 0.5) * k + 0.5).clamp(0.0, 1.0) as f32);
    Color { r, g, b, a: c.a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::{close, rgb};
    use serde_json::json;

    /// Defaults: A = 2, T = 2.
    fn at(tau: f64) -> GlitchAnim {
        glitch(&Value::Null, tau / 2.0, 11)
    }

    #[test]
    fn copies_jitter_from_their_seeded_draws() {
        let d = Draws::new(11, 5.0);
        assert_eq!(d, Draws::new(11, 5.0));
        assert_ne!(d, Draws::new(12, 5.0));
        assert!(d.red.0.abs() <= 2.5 && d.cyan.0.abs() <= 2.5);
        assert!((0.3..=0.8).contains(&d.red.1) && (0.3..=0.8).contains(&d.cyan.1));
        // Same seed → same offsets; copies bottom first: red, cyan.
        assert_eq!(at(0.125), at(0.125));
        let g = at(0.025);
        assert_eq!(g.copies.len(), 2);
        assert_eq!(rgb(Some(g.copies[0].color)), (255, 0, 64));
        assert_eq!(rgb(Some(g.copies[1].color)), (0, 255, 255));
        // Red mid first leg; cyan not started yet (resting at 0.5).
        close(g.copies[0].tx, 0.5 * d.red.0, 1e-9);
        close(g.copies[0].opacity, 0.5 + 0.5 * (d.red.1 - 0.5), 1e-9);
        close(g.copies[1].tx, 0.0, 1e-12);
        close(g.copies[1].opacity, 0.5, 1e-12);
        // Red ends at rest after 6 legs; cyan's odd leg count leaves it shifted.
        let g = at(0.8);
        close(g.copies[0].tx, 0.0, 1e-12);
        close(g.copies[0].opacity, 0.5, 1e-12);
        close(g.copies[1].tx, d.cyan.0, 1e-9);
        close(g.copies[1].opacity, d.cyan.1, 1e-9);
    }

    #[test]
    fn the_original_goes_grey_blurred_blinks_and_vanishes() {
        // Before the noise: plain white, no filter; the original is never transformed.
        let g = at(0.25);
        assert_eq!(g.noise, None);
        assert_eq!(g.original.color, Some(Color::WHITE));
        close(g.original.opacity, 1.0, 1e-12);
        // τ = 0.4: blur(1px) saturate(2) contrast(1.2): white and blurred 1 px.
        let g = at(0.4);
        close(g.noise.unwrap_or(-1.0), 1.0, 1e-9);
        assert_eq!(rgb(Some(noise_color(Color::WHITE, 1.0))), (255, 255, 255));
        // τ = 0.35: u = 0.5 → contrast 0.6: white becomes 0.5 + 0.5·0.6 = 0.8.
        let u = at(0.35).noise.unwrap_or(-1.0);
        close(u, 0.5, 1e-9);
        assert_eq!(rgb(Some(noise_color(Color::WHITE, u))), (204, 204, 204));
        // Exactly unfiltered at 0.3 and 0.5.
        assert_eq!(at(0.3).noise, None);
        assert_eq!(at(0.5).noise, None);
        // Blink [0.5, 0.6]: 0 at 0.55, back at 0.6.
        close(at(0.55).original.opacity, 0.0, 1e-12);
        close(at(0.6).original.opacity, 1.0, 1e-12);
        // τ = 1.05: second leg of the last blink, power1.out at 1 − u = 1/3.
        let e = Ease::POWER1_OUT.apply(1.0 / 3.0);
        close(at(1.05).original.opacity, 1.0 - e, 1e-9);
        close(1.0 - e, 4.0 / 9.0, 1e-12);
        // Gone until the reset at [1.8, 2].
        close(at(1.5).original.opacity, 0.0, 1e-12);
        let e = Ease::POWER2_OUT.apply(0.5);
        close(at(1.9).original.opacity, e, 1e-9);
        // The squash never shows up as anything but a state nobody draws.
        close(at(1.225).original.tx, 0.0, 1e-12);
    }

    #[test]
    fn after_the_timeline_plain_white_text_over_resting_copies() {
        for p in [1.0, 2.0] {
            let g = glitch(&Value::Null, p, 3);
            assert_eq!(g.noise, None);
            close(g.original.opacity, 1.0, 1e-12);
            assert_eq!(g.original.color, Some(Color::WHITE));
            for c in &g.copies {
                close(c.tx, 0.0, 1e-12);
                close(c.opacity, 0.5, 1e-12);
            }
        }
        // A short pattern: T = max(1.3, A) = 1.3, reset at [0.5, 0.7]. The blinks at 1.0
        // render after the reset (GSAP: the later tween wins) and leave the original hidden.
        let params = json!({"animationDuration": 0.7});
        let g = glitch(&params, 1.0, 3);
        close(g.original.opacity, 0.0, 1e-12);
        close(glitch(&params, 0.7 / 1.3, 3).original.opacity, 1.0, 1e-12);
    }

    #[test]
    fn options_remove_copies_and_noise() {
        let g = glitch(&json!({"colorSeparation": false}), 0.4 / 2.0, 5);
        assert!(g.copies.is_empty());
        assert!(g.noise.is_some());
        let g = glitch(&json!({"noiseEffect": false}), 0.4 / 2.0, 5);
        assert_eq!(g.noise, None);
        assert_eq!(g.copies.len(), 2);
        // A bigger intensity widens the jitter.
        let d = Draws::new(5, 20.0);
        assert!(d.red.0.abs() <= 10.0 && d.x.abs() <= 20.0);
    }

    #[test]
    fn noise_filter_on_flat_colours() {
        // u = 0: contrast 0 → mid grey whatever the colour.
        assert_eq!(rgb(Some(noise_color(RED_COLOR, 0.0))), (128, 128, 128));
        // saturate(2) pushes red further (clamped), contrast 1.2 around 0.5.
        let c = noise_color(Color::rgba8(200, 100, 100, 0.5), 1.0);
        assert_eq!(c.a, 0.5);
        let sat_r = (0.213f64 + 0.787 * 2.0) * 200.0 / 255.0
            + (0.715 - 1.43) * 100.0 / 255.0
            + (0.072 - 0.144) * 100.0 / 255.0;
        let expected = ((sat_r.clamp(0.0, 1.0) - 0.5) * 1.2 + 0.5).clamp(0.0, 1.0);
        close(f64::from(c.r), expected, 1e-6);
        assert!(c.g < 100.0 / 255.0);
    }
}
