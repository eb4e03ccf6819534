//! §10 rotation: characters spin in 3-D inside a container with a CSS perspective whose
//! vanishing point is the centre of E, fade in and grow past full size, spin back with a
//! back-ease overshoot, wobble, and keep a small seeded random tilt.
//!
//! Only the animated characters are shown: the reference also leaves the static text on a
//! line of its own above them (PLUGINS.md §10 "Reference defect"), which the recommended
//! behaviour drops. No sample with a reference frame uses rotation.
//!
//! GSAP renders every property of every target on its own (start values are captured per
//! property), so the `rotationY` and `rotationX` channels of character i run as the
//! `rotation` property of two extra timeline targets, `N + i` and `2N + i`, with exactly the
//! tweens the plugin gives those properties.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;

use super::super::easing::Ease;
use super::super::split::{split_text, SplitKind};
use super::super::timeline::{PropValue, Timeline};
use super::super::{InheritedStyle, SplitAnim};
use super::{boolean, num, uniform};

/// The parameters of §10 with their manifest defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    /// Sweep angle R (degrees).
    degrees: f64,
    /// Per-character duration A (timeline units), ≥ 0.
    duration: f64,
    /// Delay s between characters (timeline units), ≥ 0.
    stagger: f64,
    /// Perspective P (px); `None` when not positive (CSS: no perspective).
    perspective: Option<f64>,
    axis_x: bool,
    axis_y: bool,
    axis_z: bool,
}

impl Params {
    fn read(params: &Value) -> Self {
        let perspective = num(params, "perspective", 800.0);
        Params {
            degrees: num(params, "rotationDegrees", 360.0),
            duration: num(params, "animationDuration", 1.5).max(0.0),
            stagger: num(params, "staggerDelay", 0.1).max(0.0),
            perspective: (perspective > 0.0).then_some(perspective),
            axis_x: boolean(params, "axisX", false),
            axis_y: boolean(params, "axisY", true),
            axis_z: boolean(params, "axisZ", false),
        }
    }
}

/// The residual tilt of one character after its wobble (degrees).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tilt {
    /// rotationY ∈ [−5°, 5°].
    pub y: f64,
    /// rotationX ∈ [−3°, 3°].
    pub x: f64,
}

/// The random tilts of `n` characters, drawn when the timeline is built (both axes are
/// always drawn, so enabling one axis does not change the other's values).
pub(super) fn tilts(n: usize, seed: u64) -> Vec<Tilt> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| Tilt {
            y: uniform(&mut rng, -5.0, 5.0),
            x: uniform(&mut rng, -3.0, 3.0),
        })
        .collect()
}

pub(super) fn split(
    text: &str,
    params: &Value,
    p: f64,
    inherited: &InheritedStyle,
    seed: u64,
) -> SplitAnim {
    let prm = Params::read(params);
    let segments = split_text(text, SplitKind::Chars);
    let n = segments.len();
    // Targets: i = the character (opacity, scale, rotation about Z), n + i its rotationY,
    // 2n + i its rotationX.
    let mut tl = Timeline::new(3 * n, inherited);
    let (a, r) = (prm.duration, prm.degrees);
    let axes = [(0, prm.axis_z), (n, prm.axis_y), (2 * n, prm.axis_x)];
    for (i, tilt) in tilts(n, seed).into_iter().enumerate() {
        let t0 = i as f64 * prm.stagger;
        tl.set(i, 0.0, &[PropValue::Opacity(0.0), PropValue::Scale(0.5)]);
        tl.to(
            i,
            t0,
            0.7 * a,
            Ease::POWER2_OUT,
            &[PropValue::Opacity(1.0), PropValue::Scale(1.1)],
        );
        tl.to(
            i,
            t0 + 0.7 * a,
            0.3 * a,
            Ease::back_out(1.7),
            &[PropValue::Scale(1.0)],
        );
        for (offset, enabled) in axes {
            let target = offset + i;
            // Disabled axes are held at 0: their tweens would only move 0 to 0.
            if enabled {
                tl.set(target, 0.0, &[PropValue::Rotation(-r / 4.0)]);
                tl.to(
                    target,
                    t0,
                    0.7 * a,
                    Ease::POWER2_OUT,
                    &[PropValue::Rotation(r)],
                );
            }
            tl.to(
                target,
                t0 + 0.7 * a,
                0.3 * a,
                Ease::back_out(1.7),
                &[PropValue::Rotation(0.0)],
            );
        }
        // The wobble: three linear yoyo legs of 0.1 toward the residual tilt (0 on a
        // disabled axis); an odd leg count ends at the tilt and keeps it.
        for (target, residual) in [
            (n + i, if prm.axis_y { tilt.y } else { 0.0 }),
            (2 * n + i, if prm.axis_x { tilt.x } else { 0.0 }),
        ] {
            tl.to(
                target,
                t0 + 0.8 * a,
                0.1,
                Ease::LINEAR,
                &[PropValue::Rotation(residual)],
            )
            .repeat(2, true);
        }
    }
    let states = tl.states_at(p * tl.duration());
    let boxes = (0..n)
        .map(|i| {
            let mut b = states[i].to_box_anim();
            b.rotation_y_deg = states[n + i].rotation;
            b.rotation_x_deg = states[2 * n + i].rotation;
            b.perspective_px = prm.perspective;
            b
        })
        .collect();
    SplitAnim {
        kind: SplitKind::Chars,
        segments,
        boxes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::close;
    use crate::anim::BoxAnim;
    use serde_json::json;

    fn at(text: &str, params: &Value, tau: f64, total: f64, seed: u64) -> Vec<BoxAnim> {
        split(text, params, tau / total, &InheritedStyle::default(), seed).boxes
    }

    #[test]
    fn tilts_are_seeded_and_in_range() {
        let a = tilts(50, 3);
        assert_eq!(a, tilts(50, 3));
        assert_ne!(a, tilts(50, 4));
        assert!(a.iter().all(|t| (-5.0..=5.0).contains(&t.y)));
        assert!(a.iter().all(|t| (-3.0..=3.0).contains(&t.x)));
        assert!(a.iter().any(|t| t.y > 2.0) && a.iter().any(|t| t.y < -2.0));
        assert!(a.iter().any(|t| t.x > 1.0) && a.iter().any(|t| t.x < -1.0));
    }

    #[test]
    fn default_spin_about_y() {
        // N = 2, s = 0.1, A = 1.5: T = 0.1 + max(1.5, 0.8·1.5 + 0.3) = 1.6.
        let params = Value::Null;
        let t_total = 1.6;
        assert_eq!(
            split("ab", &params, 0.0, &InheritedStyle::default(), 9)
                .boxes
                .len(),
            2
        );
        let tilt = tilts(2, 9);
        let b = &at("ab", &params, 0.0, t_total, 9)[0];
        close(b.rotation_y_deg, -90.0, 1e-9);
        close(b.opacity, 0.0, 1e-12);
        close(b.scale_x, 0.5, 1e-12);
        close(b.scale_y, 0.5, 1e-12);
        close(b.rotation_x_deg, 0.0, 0.0);
        close(b.rotation_deg, 0.0, 0.0);
        assert_eq!(b.perspective_px, Some(800.0));
        // τ = 0.525: char 0 half way through its spin, power2.out(0.5) = 0.875.
        let s = at("ab", &params, 0.525, t_total, 9);
        close(s[0].rotation_y_deg, -90.0 + 450.0 * 0.875, 1e-9);
        close(s[0].opacity, 0.875, 1e-9);
        close(s[0].scale_x, 0.5 + 0.6 * 0.875, 1e-9);
        // Char 1 started 0.1 later: u = 0.425 / 1.05.
        let e1 = 1.0 - (1.0 - 0.425 / 1.05f64).powi(3);
        close(s[1].rotation_y_deg, -90.0 + 450.0 * e1, 1e-9);
        // τ = 1.05: spin done, at R, scale 1.1.
        let b = &at("ab", &params, 1.05, t_total, 9)[0];
        close(b.rotation_y_deg, 360.0, 1e-9);
        close(b.scale_x, 1.1, 1e-9);
        close(b.opacity, 1.0, 1e-12);
        // τ = 1.125: back.out(1.7)(1/6) = 1 + 2.7·(−5/6)³ + 1.7·(5/6)² = 0.618056.
        let back = 1.0 + 2.7 * (-5.0f64 / 6.0).powi(3) + 1.7 * (5.0f64 / 6.0).powi(2);
        close(back, 0.618056, 1e-6);
        let b = &at("ab", &params, 1.125, t_total, 9)[0];
        close(b.rotation_y_deg, 360.0 * (1.0 - back), 1e-9);
        close(b.scale_x, 1.1 - 0.1 * back, 1e-9);
        // The wobble starts at 0.8A = 1.2 from the back-ease value there, back.out(1/3):
        // 360·(1 − 0.955556) = 16°; leg 0 at u = 0.5, leg 1 (backwards) at u = 0.2.
        let b = &at("ab", &params, 1.25, t_total, 9)[0];
        close(b.rotation_y_deg, 16.0 + (tilt[0].y - 16.0) * 0.5, 1e-6);
        let b = &at("ab", &params, 1.32, t_total, 9)[0];
        close(b.rotation_y_deg, 16.0 + (tilt[0].y - 16.0) * 0.8, 1e-6);
        // End: every character at its residual tilt, scale 1, opacity 1.
        for (b, t) in at("ab", &params, t_total, t_total, 9).iter().zip(&tilt) {
            close(b.rotation_y_deg, t.y, 1e-9);
            assert!(b.rotation_y_deg.abs() <= 5.0);
            close(b.rotation_x_deg, 0.0, 0.0);
            close(b.rotation_deg, 0.0, 1e-12);
            close(b.scale_x, 1.0, 1e-12);
            close(b.opacity, 1.0, 1e-12);
        }
        // Deterministic per seed, different across seeds.
        assert_eq!(
            at("ab", &params, 1.0, t_total, 9),
            at("ab", &params, 1.0, t_total, 9)
        );
        assert_ne!(
            at("ab", &params, t_total, t_total, 9),
            at("ab", &params, t_total, t_total, 10)
        );
    }

    #[test]
    fn other_axes_and_parameters() {
        // X and Z enabled, Y off, R = 180, A = 1, s = 0.2, P = 400. N = 3:
        // T = 0.4 + max(1, 0.8 + 0.3) = 1.5.
        let params = json!({
            "rotationDegrees": 180, "animationDuration": 1.0, "staggerDelay": 0.2,
            "perspective": 400, "axisX": true, "axisY": false, "axisZ": true
        });
        let t_total = 1.5;
        let tilt = tilts(3, 5);
        let s = at("a b", &params, 0.0, t_total, 5);
        assert_eq!(s.len(), 3);
        for b in &s {
            close(b.rotation_x_deg, -45.0, 1e-12);
            close(b.rotation_deg, -45.0, 1e-12);
            close(b.rotation_y_deg, 0.0, 0.0);
            assert_eq!(b.perspective_px, Some(400.0));
        }
        // τ = 0.35: char 0 at u = 0.5 of its 0.7 spin; char 1 at u = 0.15 / 0.7.
        let s = at("a b", &params, 0.35, t_total, 5);
        close(s[0].rotation_x_deg, -45.0 + 225.0 * 0.875, 1e-9);
        close(s[0].rotation_deg, -45.0 + 225.0 * 0.875, 1e-9);
        let e1 = 1.0 - (1.0 - 0.15 / 0.7f64).powi(3);
        close(s[1].rotation_deg, -45.0 + 225.0 * e1, 1e-9);
        close(s[2].rotation_deg, -45.0, 1e-12);
        // End: Z back at 0 (no wobble), X at its residual within ±3°, Y held at 0.
        for (b, t) in at("a b", &params, t_total, t_total, 5).iter().zip(&tilt) {
            close(b.rotation_deg, 0.0, 1e-9);
            close(b.rotation_x_deg, t.x, 1e-9);
            assert!(b.rotation_x_deg.abs() <= 3.0);
            close(b.rotation_y_deg, 0.0, 0.0);
        }
        // No axis at all: only the fade and the growth; a non-positive perspective is none.
        let flat = json!({"axisY": false, "perspective": 0});
        let s = at("ab", &flat, 0.525, 1.6, 1);
        assert!(s.iter().all(|b| b.rotation_y_deg == 0.0
            && b.rotation_x_deg == 0.0
            && b.rotation_deg == 0.0
            && b.perspective_px.is_none()));
        close(s[0].opacity, 0.875, 1e-9);
        // An empty text has no boxes (and no panic).
        assert!(split("", &Value::Null, 0.5, &InheritedStyle::default(), 1)
            .boxes
            .is_empty());
    }
}
