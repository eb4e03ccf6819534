//! §9 magnetic: characters fade in while pulled to random nearby offsets with a small
//! random tilt, spring back elastically, and jitter briefly.
//!
//! Random targets come from a `SmallRng` seeded by the chain entry's seed, so one node
//! draws the same targets on every frame of an appearance and in every render: the
//! intended "built once per appearance" behaviour, not the reference's per-frame
//! rebuild under the bare name (PLUGINS.md §0.7).

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;

use super::super::easing::Ease;
use super::super::split::{split_text, SplitKind};
use super::super::timeline::{PropValue, Timeline};
use super::super::{InheritedStyle, SplitAnim};
use super::{num, run, uniform};

/// The random numbers of one character.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pull {
    /// Pull target x ∈ [−S, S], y ∈ [−S/2, S/2] px, rotation ∈ [−15°, 15°].
    pub x: f64,
    pub y: f64,
    pub rotation: f64,
    /// Jitter target x ∈ [−2, 2], y ∈ [−1, 1] px.
    pub jitter_x: f64,
    pub jitter_y: f64,
}

/// The random targets of `n` characters for a pull strength `strength`.
pub(super) fn pulls(n: usize, strength: f64, seed: u64) -> Vec<Pull> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| Pull {
            x: uniform(&mut rng, -strength, strength),
            y: uniform(&mut rng, -strength / 2.0, strength / 2.0),
            rotation: uniform(&mut rng, -15.0, 15.0),
            jitter_x: uniform(&mut rng, -2.0, 2.0),
            jitter_y: uniform(&mut rng, -1.0, 1.0),
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
    let strength = num(params, "magnetStrength", 15.0);
    let dur = num(params, "animationDuration", 1.2);
    let delay = num(params, "attractionDelay", 0.1);
    let elasticity = num(params, "elasticity", 0.8);
    let segments = split_text(text, SplitKind::Chars);
    let mut tl = Timeline::new(segments.len(), inherited);
    for (i, pull) in pulls(segments.len(), strength, seed)
        .into_iter()
        .enumerate()
    {
        let t0 = i as f64 * delay;
        tl.set(
            i,
            0.0,
            &[
                PropValue::X(0.0),
                PropValue::Y(0.0),
                PropValue::Rotation(0.0),
                PropValue::Opacity(0.0),
            ],
        );
        tl.to(
            i,
            0.05 * i as f64,
            0.3,
            Ease::POWER2_OUT,
            &[PropValue::Opacity(1.0)],
        );
        tl.to(
            i,
            t0,
            0.4 * dur,
            Ease::POWER2_OUT,
            &[
                PropValue::X(pull.x),
                PropValue::Y(pull.y),
                PropValue::Rotation(pull.rotation),
            ],
        );
        tl.to(
            i,
            t0 + 0.4 * dur,
            0.6 * dur,
            Ease::elastic_out(elasticity, 0.3),
            &[
                PropValue::X(0.0),
                PropValue::Y(0.0),
                PropValue::Rotation(0.0),
            ],
        );
        tl.to(
            i,
            t0 + 0.7 * dur,
            0.1,
            Ease::LINEAR,
            &[PropValue::X(pull.jitter_x), PropValue::Y(pull.jitter_y)],
        )
        .repeat(3, true);
    }
    SplitAnim {
        kind: SplitKind::Chars,
        boxes: run(&tl, p),
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::close;
    use serde_json::json;

    #[test]
    fn targets_are_deterministic_per_seed_and_in_range() {
        let a = pulls(40, 15.0, 7);
        assert_eq!(a, pulls(40, 15.0, 7));
        let b = pulls(40, 15.0, 8);
        assert_ne!(a, b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.x != y.x));
        for q in &a {
            assert!((-15.0..=15.0).contains(&q.x));
            assert!((-7.5..=7.5).contains(&q.y));
            assert!((-15.0..=15.0).contains(&q.rotation));
            assert!((-2.0..=2.0).contains(&q.jitter_x));
            assert!((-1.0..=1.0).contains(&q.jitter_y));
        }
        // Spread over the ranges, not a constant.
        assert!(a.iter().any(|q| q.x > 5.0) && a.iter().any(|q| q.x < -5.0));
        // A reversed range (negative strength) does not panic.
        assert!(pulls(3, -10.0, 1).iter().all(|q| q.x.abs() <= 10.0));
    }

    #[test]
    fn pull_spring_back_and_rest() {
        let inh = InheritedStyle::default();
        let params = Value::Null;
        // N = 3: T = max(0.05·2 + 0.3, 0.1·2 + max(1.2, 0.84 + 0.4)) = 1.44.
        let t_total = 1.44;
        let targets = pulls(3, 15.0, 42);
        let at = |tau: f64| split("abc", &params, tau / t_total, &inh, 42);
        let s = at(0.0);
        assert_eq!(s.kind, SplitKind::Chars);
        assert_eq!(s.boxes.len(), 3);
        for b in &s.boxes {
            close(b.opacity, 0.0, 1e-12);
            close(b.tx, 0.0, 1e-12);
        }
        // τ = 0.24: char 0 half way through its pull (power2.out(0.5) = 0.875) and at
        // opacity power2.out(0.8) = 0.992; char 1 pull at u = 0.14/0.48.
        let s = at(0.24);
        let b0 = &s.boxes[0];
        close(b0.tx, targets[0].x * 0.875, 1e-9);
        close(b0.ty, targets[0].y * 0.875, 1e-9);
        close(b0.rotation_deg, targets[0].rotation * 0.875, 1e-9);
        close(b0.opacity, 0.992, 1e-9);
        let u1: f64 = 0.14 / 0.48;
        close(
            s.boxes[1].tx,
            targets[1].x * (1.0 - (1.0 - u1).powi(3)),
            1e-9,
        );
        close(
            s.boxes[1].opacity,
            1.0 - (1.0 - 0.19 / 0.3f64).powi(3),
            1e-9,
        );
        // τ = 0.48: char 0 fully pulled.
        close(at(0.48).boxes[0].tx, targets[0].x, 1e-9);
        // Deterministic across frames of one appearance.
        assert_eq!(at(0.3), at(0.3));
        // End: at rest up to the jitter's residual (the spring's value at 0.7·A).
        let spring = Ease::elastic_out(0.8, 0.3).apply(0.5);
        for (b, q) in at(t_total).boxes.iter().zip(&targets) {
            close(b.opacity, 1.0, 1e-12);
            close(b.tx, q.x * (1.0 - spring), 1e-9);
            assert!(b.tx.abs() < 0.5 && b.ty.abs() < 0.5);
            close(b.rotation_deg, 0.0, 1e-9);
            assert_eq!(b.color, None);
        }
        // Parameters: strength 0 → no pull at all.
        let s = split("ab", &json!({"magnetStrength": 0}), 0.3, &inh, 1);
        assert!(s.boxes.iter().all(|b| b.tx == 0.0 && b.ty.abs() <= 1.0));
    }
}
