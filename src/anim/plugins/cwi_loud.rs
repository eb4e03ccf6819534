//! §16 cwi-loud: the CWI word swells, rises and trembles, then returns.

use std::f64::consts::PI;

use serde_json::Value;

use super::super::BoxAnim;
use super::{cwi_envelope, nested_num};

/// The word transform at progress p: (s, dx, dy).
pub(super) fn transform(params: &Value, p: f64) -> (f64, f64, f64) {
    let peak = nested_num(params, "pulse", "scale")
        .unwrap_or(2.15)
        .max(1.1);
    // `lift || 12`: 0 means the default too.
    let lift = nested_num(params, "pulse", "lift")
        .filter(|v| *v != 0.0)
        .unwrap_or(12.0);
    let amp = nested_num(params, "tremble", "ampPx").unwrap_or(1.5);
    let freq = nested_num(params, "tremble", "freq")
        .unwrap_or(12.0)
        .max(1.0);
    let q = p.clamp(0.0, 1.0);
    let f = cwi_envelope(q);
    let base = 1.0 + (peak - 1.0) * f;
    let crest = f.powf(1.5);
    let phi = PI * freq * q;
    let jitter = 0.03 * crest * (1.2 * phi).sin();
    let ring = if (0.12..=0.88).contains(&q) {
        let h = (q - 0.12) / 0.76;
        0.06 * (-3.0 * h).exp() * (2.0 * PI * 18.0 * h).sin()
    } else {
        0.0
    };
    let s = base + jitter + ring;
    let dx = 0.8 * amp * crest * (1.6 * phi).sin();
    let dy = -lift * f + 0.5 * amp * crest * (1.9 * phi).cos();
    (s, dx, dy)
}

/// Sets the word box's translate-then-scale (about its centre); the scale is visual only.
pub(super) fn apply(word: &mut BoxAnim, params: &Value, p: f64) {
    let (s, dx, dy) = transform(params, p);
    word.tx = dx;
    word.ty = dy;
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
        // q = 0: F = 0 → rest.
        let (s, dx, dy) = transform(&d, 0.0);
        close(s, 1.0, 1e-12);
        close(dx, 0.0, 1e-12);
        close(dy, 0.0, 1e-12);
        // q = 0.06: F = easeOutCubic(0.5) = 0.875, crest = 0.875^1.5, φ = 0.72π.
        let f: f64 = 0.875;
        let crest = f.powf(1.5);
        let phi = PI * 12.0 * 0.06;
        let (s, dx, dy) = transform(&d, 0.06);
        close(s, 1.0 + 1.15 * f + 0.03 * crest * (1.2 * phi).sin(), 1e-12);
        close(dx, 1.2 * crest * (1.6 * phi).sin(), 1e-12);
        close(dy, -12.0 * f + 0.75 * crest * (1.9 * phi).cos(), 1e-12);
        // q = 0.5: F = 1, h = 0.5, φ = 6π: sin(7.2π), sin(9.6π), cos(11.4π).
        let (s, dx, dy) = transform(&d, 0.5);
        let ring = 0.06 * (-1.5f64).exp() * (18.0 * PI).sin();
        close(s, 2.15 + 0.03 * (7.2 * PI).sin() + ring, 1e-12);
        close(s, 2.15 - 0.03 * (0.2 * PI).sin(), 1e-9); // sin(18π) = 0, sin(7.2π) = −sin(0.2π)
        close(dx, 1.2 * (9.6 * PI).sin(), 1e-9);
        close(dy, -12.0 + 0.75 * (11.4 * PI).cos(), 1e-9);
        // q = 0.94: F = 1 − easeInCubic(0.5) = 0.875.
        let (s, _, dy) = transform(&d, 0.94);
        let phi = PI * 12.0 * 0.94;
        close(s, 1.0 + 1.15 * f + 0.03 * crest * (1.2 * phi).sin(), 1e-12);
        close(dy, -12.0 * f + 0.75 * crest * (1.9 * phi).cos(), 1e-12);
        // q = 1 (and after): rest.
        let (s, dx, dy) = transform(&d, 1.3);
        close(s, 1.0, 1e-12);
        close(dx, 0.0, 1e-12);
        close(dy, 0.0, 1e-12);
    }

    #[test]
    fn parameter_quirks() {
        // Scale below 1.1 → 1.1; lift 0 → 12; no tremble.
        let params =
            json!({"pulse": {"scale": 0.5, "lift": 0}, "tremble": {"ampPx": 0, "freq": 0}});
        let (s, dx, dy) = transform(&params, 0.3);
        let h: f64 = 0.18 / 0.76;
        let phi = PI * 0.3; // freq 0 → 1
        let ring = 0.06 * (-3.0 * h).exp() * (36.0 * PI * h).sin();
        close(s, 1.1 + 0.03 * (1.2 * phi).sin() + ring, 1e-12);
        close(dx, 0.0, 1e-12);
        close(dy, -12.0, 1e-12);
        let params = json!({"pulse": {"scale": 3, "lift": 20}, "tremble": {"ampPx": 0}});
        let mut word = BoxAnim::default();
        apply(&mut word, &params, 0.5);
        close(word.scale_x, 3.0 - 0.03 * (0.2 * PI).sin(), 1e-9);
        close(word.scale_y, word.scale_x, 0.0);
        close(word.ty, -20.0, 1e-12);
    }
}
