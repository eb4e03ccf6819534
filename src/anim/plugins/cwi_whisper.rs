//! §17 cwi-whisper: the CWI word shrinks, sinks and flutters, then returns.

use std::f64::consts::PI;

use serde_json::Value;

use super::super::BoxAnim;
use super::{cwi_envelope, nested_num};

/// The word transform at progress p: (s, drop) with drop in px, downward.
pub(super) fn transform(params: &Value, p: f64) -> (f64, f64) {
    let min_scale = nested_num(params, "shrink", "scale")
        .unwrap_or(0.6)
        .clamp(0.1, 1.0);
    // `drop || 6`, `amp || 0.02`: 0 means the default.
    let drop = nested_num(params, "shrink", "drop")
        .filter(|v| *v != 0.0)
        .unwrap_or(6.0);
    let amp = nested_num(params, "flutter", "amp")
        .filter(|v| *v != 0.0)
        .unwrap_or(0.02);
    let freq = nested_num(params, "flutter", "freq")
        .unwrap_or(8.0)
        .max(1.0);
    let q = p.clamp(0.0, 1.0);
    let f = cwi_envelope(q);
    let base = 1.0 - (1.0 - min_scale) * f;
    let phi = PI * freq * 1.6 * q;
    let flutter = 0.8 * amp * f * phi.sin();
    let ring = if (0.12..=0.88).contains(&q) {
        let h = (q - 0.12) / 0.76;
        -0.05 * (-3.0 * h).exp() * (2.0 * PI * 16.0 * h).sin()
    } else {
        0.0
    };
    let s = min_scale.max(base - flutter + ring);
    (s, drop * f)
}

/// Sets the word box's translate(0, drop)-then-scale (about its centre).
pub(super) fn apply(word: &mut BoxAnim, params: &Value, p: f64) {
    let (s, drop) = transform(params, p);
    word.tx = 0.0;
    word.ty = drop;
    word.scale_x = s;
    word.scale_y = s;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::close;
    use serde_json::json;

    #[test]
    fn defaults_at_a_few_progress_values() {
        let d = Value::Null;
        assert_eq!(transform(&d, 0.0), (1.0, 0.0));
        // q = 0.06: F = 0.875, base = 1 − 0.4·0.875 = 0.65, φ = 0.768π.
        let (s, drop) = transform(&d, 0.06);
        let flutter = 0.8 * 0.02 * 0.875 * (PI * 8.0 * 1.6 * 0.06).sin();
        close(s, (0.65 - flutter).max(0.6), 1e-12);
        close(drop, 6.0 * 0.875, 1e-12);
        // q = 0.31: F = 1, h = 0.25: ring = −0.05·e^−0.75·sin(8π) = 0;
        // flutter = 0.016·sin(3.968π) < 0 → s = 0.6 − flutter above the floor.
        let (s, drop) = transform(&d, 0.31);
        let flutter = 0.016 * (PI * 12.8 * 0.31).sin();
        assert!(flutter < 0.0);
        close(s, 0.6 - flutter, 1e-9);
        close(drop, 6.0, 1e-12);
        // q = 0.5: φ = 6.4π, flutter = 0.016·sin(0.4π) > 0 → clamped at m = 0.6.
        let (s, _) = transform(&d, 0.5);
        close(s, 0.6, 1e-12);
        // After the window: rest.
        assert_eq!(transform(&d, 1.0), (1.0, 0.0));
    }

    #[test]
    fn parameter_quirks() {
        // Zero drop and amp → defaults; scale clamped to [0.1, 1].
        let params = json!({"shrink": {"scale": 0.0, "drop": 0}, "flutter": {"amp": 0, "freq": 0}});
        let (s, drop) = transform(&params, 0.5);
        let flutter = 0.8 * 0.02 * (PI * 1.6 * 0.5).sin();
        let ring = -0.05 * (-3.0 * (0.38f64 / 0.76)).exp() * (32.0 * PI * 0.5).sin();
        close(s, (0.1 - flutter + ring).max(0.1), 1e-12);
        close(drop, 6.0, 1e-12);
        let mut word = BoxAnim::default();
        apply(
            &mut word,
            &json!({"shrink": {"scale": 1.5, "drop": 10}}),
            0.5,
        );
        close(word.scale_x, 1.0, 1e-12); // scale 1 floor: never shrinks
        close(word.ty, 10.0, 1e-12);
    }
}
