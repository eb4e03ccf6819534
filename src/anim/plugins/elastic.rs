//! §4 elastic: words spring in from their bottom edge with a random tilt, dark grey → white.
//!
//! Word boxes get a 0.1 em horizontal margin on each side ([`LAYOUT`], honoured by the
//! layout) and transform about their centre-bottom. The tilt r_i ∈ [−3°, 3°] is drawn per
//! word from a PRNG seeded by the entry's seed (PLUGINS §0.6 recommendation), at the
//! reference's 5-decimal resolution, so two renders are identical.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::{num, run, shadow};
use crate::anim::easing::Ease;
use crate::anim::split::{split_text, SplitKind};
use crate::anim::timeline::{PropValue, Timeline};
use crate::anim::{BoxOrigin, InheritedStyle, ShadowPx, SplitAnim, TextLayout};
use crate::compose::display::Color;

/// 0.1 em of extra horizontal margin on each side of every word box.
pub(super) const LAYOUT: TextLayout = TextLayout::WordMargins {
    margin_milli_em: 100,
};

/// Largest tilt of the first spring, degrees.
const MAX_TILT_DEG: f64 = 3.0;

/// One tilt per word in [−3°, 3°], rounded to 5 decimals like the reference's random().
fn tilts(seed: u64, words: usize) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..words)
        .map(|_| {
            let u: f64 = rng.random();
            let r = -MAX_TILT_DEG + 2.0 * MAX_TILT_DEG * u;
            (r * 1e5).round() / 1e5
        })
        .collect()
}

pub(super) fn elastic(
    text: &str,
    params: &Value,
    p: f64,
    inherited: &InheritedStyle,
    seed: u64,
) -> SplitAnim {
    let bounce = num(params, "bounceStrength", 0.7);
    let dur = num(params, "animationDuration", 1.5);
    let stagger = num(params, "staggerDelay", 0.1);
    let start_scale = num(params, "startScale", 0.0);
    let overshoot = num(params, "overshoot", 1.3);
    let segments = split_text(text, SplitKind::Words);
    let words: Vec<usize> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_box(SplitKind::Words))
        .map(|(n, _)| n)
        .collect();
    let tilt = tilts(seed, words.len());
    let mut tl = Timeline::new(segments.len(), inherited);
    let grey = Color::rgba8(0x66, 0x66, 0x66, 1.0);
    for (i, (&target, &r)) in words.iter().zip(&tilt).enumerate() {
        let t0 = i as f64 * stagger;
        tl.set(
            target,
            0.0,
            &[PropValue::Scale(start_scale), PropValue::Opacity(0.0)],
        );
        tl.to(
            target,
            t0,
            0.4 * dur,
            Ease::elastic_out(bounce, 0.3),
            &[
                PropValue::Scale(overshoot),
                PropValue::Opacity(1.0),
                PropValue::Rotation(r),
            ],
        );
        tl.to(
            target,
            t0 + 0.4 * dur,
            0.3 * dur,
            Ease::elastic_out(bounce, 0.2),
            &[PropValue::Scale(1.0), PropValue::Rotation(0.0)],
        );
        tl.from_to(
            target,
            t0 + 0.2 * dur,
            0.6 * dur,
            Ease::POWER2_OUT,
            &[PropValue::Color(grey)],
            &[PropValue::Color(Color::WHITE)],
        );
        tl.to(
            target,
            t0 + 0.5 * dur,
            0.3 * dur,
            Ease::POWER1_OUT,
            &[PropValue::TextShadow(vec![ShadowPx {
                x: 0.0,
                y: 2.0,
                blur: 8.0,
                color: Color::rgba8(255, 255, 255, 0.2),
            }])],
        );
        tl.to(
            target,
            t0 + 0.8 * dur,
            0.5,
            Ease::POWER1_OUT,
            &[PropValue::TextShadow(shadow(
                0.0,
                Color::rgba8(255, 255, 255, 0.0),
            ))],
        );
    }
    let mut boxes = run(&tl, p);
    for &n in &words {
        if let Some(b) = boxes.get_mut(n) {
            b.origin = BoxOrigin::CenterBottom;
        }
    }
    SplitAnim {
        kind: SplitKind::Words,
        segments,
        boxes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::{close, rgb};
    use crate::anim::BoxAnim;

    // "hi yo": M = 2 words, T = 0.1 + 0.8·1.5 + 0.5 = 1.8.
    const T: f64 = 1.8;

    fn at(tau: f64, seed: u64) -> SplitAnim {
        elastic(
            "hi yo",
            &Value::Null,
            tau / T,
            &InheritedStyle::default(),
            seed,
        )
    }

    #[test]
    fn start_state_is_invisible_grey_and_anchored_at_the_bottom() {
        let s = at(0.0, 1);
        assert_eq!(s.kind, SplitKind::Words);
        assert_eq!(s.boxes.len(), 3);
        for n in [0, 2] {
            let b = &s.boxes[n];
            close(b.scale_x, 0.0, 1e-12);
            close(b.opacity, 0.0, 1e-12);
            close(b.rotation_deg, 0.0, 1e-12);
            assert_eq!(rgb(b.color), (0x66, 0x66, 0x66));
            assert_eq!(b.origin, BoxOrigin::CenterBottom);
        }
        // The separator is an untouched, centred identity box.
        assert_eq!(s.boxes[1], BoxAnim::default());
    }

    #[test]
    fn first_spring_overshoots_and_tilts() {
        let r = tilts(1, 2);
        // τ = 0.06: word 0 at u = 0.1 of its 0.6-long spring; elastic.out(0.7, 0.3)(0.1).
        let e = Ease::elastic_out(0.7, 0.3).apply(0.1);
        let b = &at(0.06, 1).boxes[0];
        close(b.scale_x, 1.3 * e, 1e-9);
        close(b.scale_y, 1.3 * e, 1e-9);
        close(b.opacity, e.min(1.0), 1e-9);
        close(b.rotation_deg, r[0] * e, 1e-9);
        // Word 1 starts 0.1 later.
        close(at(0.06, 1).boxes[2].scale_x, 0.0, 1e-12);
        // At the end of the first spring: exactly overshoot and r_0.
        let b = &at(0.6, 1).boxes[0];
        close(b.scale_x, 1.3, 1e-9);
        close(b.rotation_deg, r[0], 1e-9);
        // Second spring half-way: from (1.3, r0) toward (1, 0) with elastic.out(0.7, 0.2).
        let e2 = Ease::elastic_out(0.7, 0.2).apply(0.5);
        let b = &at(0.6 + 0.225, 1).boxes[0];
        close(b.scale_x, 1.3 - 0.3 * e2, 1e-9);
        close(b.rotation_deg, r[0] * (1.0 - e2), 1e-9);
    }

    #[test]
    fn colour_and_glow() {
        // Colour tween of word 0 over [0.3, 1.2]; τ = 0.75 → u = 0.5, power2.out = 0.875.
        let b = &at(0.75, 1).boxes[0];
        assert_eq!(rgb(b.color), (236, 236, 236)); // 102 + 153·0.875 = 235.875
        assert_eq!(b.text_shadow, None, "glow not started yet");
        // Glow over [0.75, 1.2]; τ = 0.975 → power1.out(0.5) = 0.75 from no shadow.
        let sh = at(0.975, 1).boxes[0]
            .text_shadow
            .clone()
            .unwrap_or_default();
        assert_eq!(sh.len(), 1);
        close(sh[0].x, 0.0, 1e-9);
        close(sh[0].y, 1.5, 1e-9);
        close(sh[0].blur, 6.0, 1e-9);
        close(f64::from(sh[0].color.a), 0.15, 1e-6);
        // Fading out over [1.2, 1.7]; τ = 1.45 → 0.75 of the way to 0 0 0px transparent.
        let sh = at(1.45, 1).boxes[0].text_shadow.clone().unwrap_or_default();
        close(sh[0].y, 0.5, 1e-9);
        close(sh[0].blur, 2.0, 1e-9);
        close(f64::from(sh[0].color.a), 0.05, 1e-6);
    }

    #[test]
    fn end_state_white_upright_no_shadow() {
        let s = at(T, 9);
        for n in [0, 2] {
            let b = &s.boxes[n];
            close(b.scale_x, 1.0, 1e-9);
            close(b.rotation_deg, 0.0, 1e-9);
            close(b.opacity, 1.0, 1e-12);
            assert_eq!(b.color, Some(Color::WHITE));
            assert_eq!(b.text_shadow, Some(vec![]));
        }
    }

    #[test]
    fn tilts_are_seeded_bounded_and_rounded() {
        let a = tilts(42, 50);
        assert_eq!(a, tilts(42, 50));
        assert_ne!(a, tilts(43, 50));
        assert!(a.iter().all(|r| (-3.0..=3.0).contains(r)));
        assert!(a.iter().all(|r| ((r * 1e5).round() - r * 1e5).abs() < 1e-6));
        // Not all the same sign: a real spread over the range.
        assert!(a.iter().any(|r| *r > 0.5) && a.iter().any(|r| *r < -0.5));
    }
}
