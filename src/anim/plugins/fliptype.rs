//! §6 fliptype, DOM part: characters typed in one after another with a small pop.
//!
//! The channel part (a 3-D card flip returned as `rotateX` / `rotateY`) is not drawn:
//! those are not standard channels (SPEC §12.5) and the reference shows no flip, so
//! renderd matches the reference picture (PLUGINS.md §6 "Recommended").

use serde_json::Value;

use super::super::easing::Ease;
use super::super::split::{split_text, SplitKind};
use super::super::timeline::{PropValue, Timeline};
use super::super::{InheritedStyle, SplitAnim};
use super::num;

/// The typing timeline in progress units for `n` characters; its length is T.
fn timeline(n: usize, params: &Value, inherited: &InheritedStyle) -> (Timeline, f64) {
    let speed = num(params, "typingSpeed", 15.0);
    let ts = num(params, "typingDelay", 0.3);
    let te = (ts + n as f64 / speed).min(1.0);
    let step = if n == 0 { 0.0 } else { (te - ts) / n as f64 };
    let mut tl = Timeline::new(n, inherited);
    for i in 0..n {
        let start = ts + i as f64 * step;
        tl.from_to(
            i,
            start,
            (start + 0.1).min(1.0) - start,
            Ease::back_out(1.7),
            &[PropValue::Opacity(0.0), PropValue::Scale(0.8)],
            &[PropValue::Opacity(1.0), PropValue::Scale(1.0)],
        );
    }
    let total = tl.duration().max(ts);
    (tl, total)
}

pub(super) fn split(text: &str, params: &Value, p: f64, inherited: &InheritedStyle) -> SplitAnim {
    let segments = split_text(text, SplitKind::Chars);
    let (tl, total) = timeline(segments.len(), params, inherited);
    SplitAnim {
        kind: SplitKind::Chars,
        boxes: tl
            .states_at(p * total)
            .iter()
            .map(|s| s.to_box_anim())
            .collect(),
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::close;
    use serde_json::json;

    fn total(n: usize) -> f64 {
        timeline(n, &Value::Null, &InheritedStyle::default()).1
    }

    #[test]
    fn timeline_lengths_from_the_spec() {
        close(total(1), 0.4, 1e-12);
        close(total(2), 0.3 + 2.0 / 15.0 + 0.1 - 1.0 / 15.0, 1e-12);
        close(total(2), 0.4667, 1e-4);
        close(total(5), 0.6667, 1e-4);
        close(total(10), 1.0, 1e-12);
        close(total(11), 1.0, 1e-12);
        close(total(40), 1.0, 1e-12);
        // Empty text: T = typingDelay.
        close(total(0), 0.3, 1e-12);
    }

    #[test]
    fn characters_appear_in_sequence() {
        let inh = InheritedStyle::default();
        let text = "Hello World"; // N = 11: char i starts at p = 0.3 + i·0.7/11.
        let starts: Vec<f64> = (0..11).map(|i| 0.3 + i as f64 * 0.7 / 11.0).collect();
        let s = split(text, &Value::Null, 0.0, &inh);
        assert_eq!(s.boxes.len(), 11);
        for b in &s.boxes {
            close(b.opacity, 0.0, 1e-12);
            close(b.scale_x, 0.8, 1e-12);
        }
        // Just before and after char 4's start.
        let s = split(text, &Value::Null, starts[4] - 1e-6, &inh);
        assert!(s.boxes[3].opacity > 0.0);
        close(s.boxes[4].opacity, 0.0, 1e-12);
        // Half way through char 4's 0.1 pop: back.out(1.7)(0.5) = 1.0875.
        let s = split(text, &Value::Null, starts[4] + 0.05, &inh);
        close(s.boxes[4].opacity, 1.0, 1e-12); // 1.0875 clamped
        close(s.boxes[4].scale_x, 0.8 + 0.2 * 1.0875, 1e-9);
        close(s.boxes[5].scale_x, 0.8, 1e-12);
        // The last char's pop is cut at p = 1: duration 1 − start, ends exactly at rest.
        let s = split(text, &Value::Null, 1.0, &inh);
        for b in &s.boxes {
            close(b.opacity, 1.0, 1e-12);
            close(b.scale_x, 1.0, 1e-12);
            assert_eq!(b.color, None);
        }
    }

    #[test]
    fn short_texts_stretch_over_the_window() {
        let inh = InheritedStyle::default();
        // N = 2, T = 0.4667: char 1 starts at τ = 0.3667 → p = 0.7857.
        let p1 = (0.3 + 1.0 / 15.0) / total(2);
        let s = split("ab", &Value::Null, p1 - 1e-6, &inh);
        close(s.boxes[1].opacity, 0.0, 1e-12);
        assert!(s.boxes[0].opacity > 0.9);
        // Faster typing and no delay: N = 2 at 2 chars per unit, Te = 1, step 0.5.
        let params = json!({"typingSpeed": 2, "typingDelay": 0});
        let t = timeline(2, &params, &inh).1;
        close(t, 0.6, 1e-12);
        let s = split("ab", &params, 0.55 / 0.6, &inh);
        close(s.boxes[1].scale_x, 0.8 + 0.2 * 1.0875, 1e-9);
    }
}
