//! §18 cwi-bouncing: the CWI letters hop one after another in a wave (DOM part) while the
//! whole word sways and swells slightly (channel part).

use std::f64::consts::PI;

use serde_json::Value;

use super::super::easing::Ease;
use super::super::{Channel, SplitAnim};
use super::num;

/// Hop height H of the DOM part: `waveHeight`, else `popScale`·8, else 12.
fn letter_height(params: &Value) -> f64 {
    match params.get("waveHeight").and_then(Value::as_f64) {
        Some(h) if h.is_finite() => h,
        _ => match params.get("popScale").and_then(Value::as_f64) {
            Some(s) if s.is_finite() => s * 8.0,
            _ => 12.0,
        },
    }
}

/// The offset (tx, ty) px of letter `k` of `n` at progress p.
pub(super) fn letter_offset(k: usize, n: usize, height: f64, share: f64, p: f64) -> (f64, f64) {
    let q = p.clamp(0.0, 1.0);
    let step = if n > 1 {
        (1.0 - share) / (n - 1) as f64
    } else {
        0.0
    };
    let u = (q - k as f64 * step) / share;
    if u <= 0.0 || u >= 1.0 {
        return (0.0, 0.0);
    }
    let e = Ease::CUBIC_IN_OUT.apply(u);
    (0.6 * (2.0 * PI * e).sin(), -height * (PI * e).sin())
}

/// Moves the letters; their colours stay as they are (inherited from the word, or
/// cwi-color's).
pub(super) fn apply(letters: &mut SplitAnim, params: &Value, p: f64) {
    let height = letter_height(params);
    let share = num(params, "letterDuration", 0.6).clamp(0.2, 0.9);
    let n = letters.boxes.len();
    for (k, letter) in letters.boxes.iter_mut().enumerate() {
        let (tx, ty) = letter_offset(k, n, height, share, p);
        letter.tx = tx;
        letter.ty = ty;
    }
}

/// The wrapper channels at progress p (H = `waveHeight` or 12, no popScale fallback).
pub(super) fn channel_values(params: &Value, p: f64) -> Vec<(Channel, f64)> {
    let height = num(params, "waveHeight", 12.0);
    let e = Ease::CUBIC_IN_OUT.apply(p.clamp(0.0, 1.0));
    let s = 1.0 + 0.05 * (PI * e).sin();
    vec![
        (Channel::Tx, 0.3 * (2.0 * PI * e).sin()),
        (Channel::Ty, -0.3 * height * (PI * e).sin()),
        (Channel::Sx, s),
        (Channel::Sy, s),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::super::split::{split_text, SplitKind};
    use super::super::super::BoxAnim;
    use super::*;
    use crate::anim::plugins::test_util::close;
    use serde_json::json;

    fn letters(text: &str) -> SplitAnim {
        let segments = split_text(text, SplitKind::CwiLetters);
        SplitAnim {
            kind: SplitKind::CwiLetters,
            boxes: vec![BoxAnim::default(); segments.len()],
            segments,
        }
    }

    #[test]
    fn letters_hop_in_a_wave() {
        // N = 5, L = 0.6: step = 0.1. At q = 0.3: letter 0 at u = 0.5 (top of its hop),
        // letter 1 at u = 1/3, letter 3 at u = 0 (rest), letter 4 not started.
        let mut s = letters("abcde");
        apply(&mut s, &Value::Null, 0.3);
        close(s.boxes[0].tx, 0.0, 1e-12);
        close(s.boxes[0].ty, -12.0, 1e-12);
        let e: f64 = 4.0 / 27.0; // easeInOutCubic(1/3) = 4·(1/3)³
        close(s.boxes[1].tx, 0.6 * (2.0 * PI * e).sin(), 1e-9);
        close(s.boxes[1].ty, -12.0 * (PI * e).sin(), 1e-9);
        assert_eq!((s.boxes[3].tx, s.boxes[3].ty), (0.0, 0.0));
        assert_eq!((s.boxes[4].tx, s.boxes[4].ty), (0.0, 0.0));
        // Colours are left alone.
        assert!(s.boxes.iter().all(|b| b.color.is_none()));
        // Done at q = 1: all at rest.
        apply(&mut s, &Value::Null, 1.0);
        assert!(s.boxes.iter().all(|b| b.tx == 0.0 && b.ty == 0.0));
    }

    #[test]
    fn hop_height_and_share_parameters() {
        // popScale fallback in the DOM part only.
        let params = json!({"popScale": 2});
        let mut s = letters("a");
        apply(&mut s, &params, 0.3); // N = 1: u = 0.5
        close(s.boxes[0].ty, -16.0, 1e-12);
        let c = channel_values(&params, 0.5);
        close(c[1].1, -3.6, 1e-12);
        // letterDuration clamped to 0.9: N = 2, step 0.1; letter 1 at q = 0.55 → u = 0.5.
        let params = json!({"waveHeight": 20, "letterDuration": 5});
        let mut s = letters("ab");
        apply(&mut s, &params, 0.55);
        close(s.boxes[1].ty, -20.0, 1e-12);
        // A single letter with the default share: u = q / 0.6.
        close(
            letter_offset(0, 1, 12.0, 0.6, 0.15).1,
            -12.0 * (PI * 0.0625).sin(),
            1e-12,
        );
    }

    #[test]
    fn wrapper_channels() {
        let c = channel_values(&Value::Null, 0.5);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].0, Channel::Tx);
        close(c[0].1, 0.0, 1e-12);
        close(c[1].1, -3.6, 1e-12);
        close(c[2].1, 1.05, 1e-12);
        close(c[3].1, 1.05, 1e-12);
        // p = 0.25: e = 0.0625.
        let c = channel_values(&json!({"waveHeight": 10}), 0.25);
        close(c[0].1, 0.3 * (0.125 * PI).sin(), 1e-12);
        close(c[1].1, -3.0 * (0.0625 * PI).sin(), 1e-12);
        close(c[2].1, 1.0 + 0.05 * (0.0625 * PI).sin(), 1e-12);
        // p = 1: identity (up to rounding).
        for (ch, v) in channel_values(&Value::Null, 1.0) {
            let id = if matches!(ch, Channel::Sx | Channel::Sy) {
                1.0
            } else {
                0.0
            };
            close(v, id, 1e-12);
        }
    }
}
