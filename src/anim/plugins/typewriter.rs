//! §5 typewriter: the node shows only the typed prefix, then a cursor.
//!
//! * Typed UTF-16 units n = clamp(floor(p / typingSpeed), 0, L), as the reference computes
//!   it (so with the default 0.05 at most 20 units are ever shown, also after the window).
//! * Surrogate pairs: when n ends between the two halves of a pair, the reference shows a
//!   lone surrogate (a broken glyph) for one step; here the prefix is rounded **down** to
//!   the last whole code point, so that step shows one character less instead of garbage.
//!   Grapheme clusters (a base and its combining marks, an emoji ZWJ sequence) may appear
//!   piece by piece, as in the reference.
//! * Cursor: `cursorChar` in `#ffffff`, weight 400 (laid out by the layout), opacity 1 when
//!   floor(2p) is even (a single blink over the window), always 1 without `cursorBlink`.
//! * Typing flash: the recommended media-time reading of the reference's wall-clock flash:
//!   when the prefix last changed (at p = n·typingSpeed), the typed text's shadow morphs
//!   to `0 0 5px rgba(255,255,255,0.5)` over 0.08 s (`power2.out`) and back over 0.08 s
//!   (GSAP yoyo), then the node's own shadows return.

use serde_json::Value;

use super::{boolean, num, shadow, string};
use crate::anim::easing::Ease;
use crate::anim::timeline::{PropValue, Timeline};
use crate::anim::{BoxAnim, InheritedStyle, TextLayout, TypedAnim};
use crate::compose::display::Color;

/// Length of one leg of the typing flash, media seconds.
const FLASH_LEG_S: f64 = 0.08;

struct Params<'a> {
    speed: f64,
    blink: bool,
    cursor: Option<&'a str>,
}

fn params(params: &Value) -> Params<'_> {
    let cursor = string(params, "cursorChar", "|");
    Params {
        speed: num(params, "typingSpeed", 0.05),
        blink: boolean(params, "cursorBlink", true),
        cursor: (boolean(params, "showCursor", true) && !cursor.is_empty()).then_some(cursor),
    }
}

/// n = clamp(floor(p / speed), 0, units); a NaN quotient (0 / 0) types nothing, as
/// `slice(0, NaN)` does.
fn typed_units(p: f64, speed: f64, units: usize) -> usize {
    let q = (p / speed).floor();
    if q.is_nan() || q <= 0.0 {
        0
    } else if q >= units as f64 {
        units
    } else {
        q as usize
    }
}

/// Byte length of the first `units` UTF-16 units of `text`, rounded down to a code point.
fn prefix_bytes(text: &str, units: usize) -> usize {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += c.len_utf16();
        if used > units {
            return i;
        }
    }
    text.len()
}

fn typed_prefix(text: &str, speed: f64, p: f64) -> (usize, usize) {
    let n = typed_units(p, speed, text.encode_utf16().count());
    (n, prefix_bytes(text, n))
}

/// The layout at progress p: the typed prefix and the cursor.
pub(super) fn layout(text: &str, params_json: &Value, p: f64) -> TextLayout {
    let prm = params(params_json);
    let (_, prefix_bytes) = typed_prefix(text, prm.speed, p);
    TextLayout::Typed {
        prefix_bytes,
        cursor: prm.cursor.map(str::to_owned),
    }
}

pub(super) fn typewriter(
    text: &str,
    params_json: &Value,
    p: f64,
    inherited: &InheritedStyle,
    window: (f64, f64),
    t: f64,
) -> TypedAnim {
    let prm = params(params_json);
    let (n, prefix_bytes) = typed_prefix(text, prm.speed, p);
    let cursor = prm.cursor.map(|_| {
        let visible = !prm.blink || ((2.0 * p).floor() as i64) % 2 == 0;
        BoxAnim {
            color: Some(Color::WHITE),
            opacity: if visible { 1.0 } else { 0.0 },
            ..BoxAnim::default()
        }
    });
    let mut typed = BoxAnim::default();
    if n > 0 {
        let (w0, w1) = window;
        let changed_at = w0 + n as f64 * prm.speed * (w1 - w0);
        let elapsed = t - changed_at;
        if (0.0..2.0 * FLASH_LEG_S).contains(&elapsed) {
            let mut tl = Timeline::new(1, inherited);
            tl.to(
                0,
                0.0,
                FLASH_LEG_S,
                Ease::POWER2_OUT,
                &[PropValue::TextShadow(shadow(
                    5.0,
                    Color::rgba8(255, 255, 255, 0.5),
                ))],
            )
            .repeat(1, true);
            if let Some(state) = tl.states_at(elapsed).first() {
                typed.text_shadow = state.to_box_anim().text_shadow;
            }
        }
    }
    TypedAnim {
        prefix_bytes,
        text: typed,
        cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::close;
    use crate::anim::ShadowPx;
    use serde_json::json;

    const LONG: &str = "abcdefghijklmnopqrstuvwxyz"; // 26 units

    fn prefix_at(text: &str, params: &Value, p: f64) -> usize {
        match layout(text, params, p) {
            TextLayout::Typed { prefix_bytes, .. } => prefix_bytes,
            other => panic!("not a typed layout: {other:?}"),
        }
    }

    #[test]
    fn typed_count_follows_progress_and_truncates_at_twenty() {
        let d = Value::Null;
        assert_eq!(prefix_at(LONG, &d, 0.0), 0);
        assert_eq!(prefix_at(LONG, &d, 0.049), 0);
        assert_eq!(prefix_at(LONG, &d, 0.05), 1);
        assert_eq!(prefix_at(LONG, &d, 0.5), 10);
        // floor(0.15 / 0.05) = floor(2.9999999999999996) = 2, as in the browser.
        assert_eq!(prefix_at(LONG, &d, 0.15), 2);
        // The default speed never shows more than 20 of 26 units, even held at p = 1.
        assert_eq!(prefix_at(LONG, &d, 1.0), 20);
        assert_eq!(prefix_at("short", &d, 1.0), 5);
        // A slower speed: floor(1 / 0.1) = 10.
        assert_eq!(prefix_at(LONG, &json!({"typingSpeed": 0.1}), 1.0), 10);
        // Degenerate speeds: 0 types everything (p / 0 = ∞) except at p = 0 (NaN → 0).
        assert_eq!(prefix_at(LONG, &json!({"typingSpeed": 0}), 0.3), 26);
        assert_eq!(prefix_at(LONG, &json!({"typingSpeed": 0}), 0.0), 0);
        assert_eq!(prefix_at(LONG, &json!({"typingSpeed": -1}), 0.5), 0);
    }

    #[test]
    fn utf16_units_hangul_and_surrogate_pairs() {
        // Hangul syllables are one UTF-16 unit (three UTF-8 bytes) each.
        assert_eq!(prefix_bytes("안녕", 1), 3);
        assert_eq!(prefix_bytes("안녕", 2), 6);
        // "a😀b": units a, hi, lo, b. Cutting the pair rounds down to "a".
        let s = "a\u{1F600}b";
        assert_eq!(prefix_bytes(s, 1), 1);
        assert_eq!(prefix_bytes(s, 2), 1);
        assert_eq!(prefix_bytes(s, 3), 5);
        assert_eq!(prefix_bytes(s, 4), 6);
        assert_eq!(prefix_bytes(s, 99), 6);
        // L counts UTF-16 units: with speed 0.25 p = 1 types all 4 units.
        assert_eq!(prefix_at(s, &json!({"typingSpeed": 0.25}), 1.0), 6);
    }

    const WINDOW: (f64, f64) = (1.0, 5.0);

    #[test]
    fn cursor_blinks_once_and_can_be_hidden() {
        let inh = InheritedStyle::default();
        let op = |p: f64, params: &Value| {
            typewriter(LONG, params, p, &inh, WINDOW, 1.0 + 4.0 * p)
                .cursor
                .map(|c| c.opacity)
        };
        let d = Value::Null;
        assert_eq!(op(0.0, &d), Some(1.0));
        assert_eq!(op(0.49, &d), Some(1.0));
        assert_eq!(op(0.5, &d), Some(0.0));
        assert_eq!(op(0.99, &d), Some(0.0));
        assert_eq!(op(1.0, &d), Some(1.0));
        assert_eq!(op(0.7, &json!({"cursorBlink": false})), Some(1.0));
        assert_eq!(op(0.2, &json!({"showCursor": false})), None);
        let c = typewriter(LONG, &d, 0.2, &inh, WINDOW, 1.8).cursor;
        assert_eq!(c.and_then(|c| c.color), Some(Color::WHITE));
        assert_eq!(
            layout(LONG, &json!({"cursorChar": "_"}), 0.2),
            TextLayout::Typed {
                prefix_bytes: 4,
                cursor: Some("_".into())
            }
        );
        assert_eq!(
            layout(LONG, &json!({"cursorChar": ""}), 0.2),
            TextLayout::Typed {
                prefix_bytes: 4,
                cursor: None
            }
        );
    }

    #[test]
    fn typing_flash_runs_for_a_sixth_of_a_second_of_media_time() {
        let inh = InheritedStyle {
            color: Color::WHITE,
            text_shadow: vec![ShadowPx {
                x: 0.0,
                y: 0.0,
                blur: 2.0,
                color: Color::BLACK,
            }],
        };
        // Window [1, 5]: character 3 appears at p = 0.15, i.e. t = 1.6.
        let flash = |dt: f64| {
            let t = 1.6 + dt;
            typewriter(LONG, &Value::Null, (t - 1.0) / 4.0, &inh, WINDOW, t)
                .text
                .text_shadow
        };
        // Half-way up: power2.out(0.5) = 0.875 from the first inherited shadow.
        let up = flash(0.04).unwrap_or_default();
        assert_eq!(up.len(), 1);
        close(up[0].blur, 2.0 + 3.0 * 0.875, 1e-6);
        close(f64::from(up[0].color.a), 1.0 - 0.5 * 0.875, 1e-6);
        // Peak, then half-way back down (yoyo leg: ease(1 − u)).
        let peak = flash(0.08).unwrap_or_default();
        close(peak[0].blur, 5.0, 1e-6);
        let down = flash(0.12).unwrap_or_default();
        close(down[0].blur, 2.0 + 3.0 * 0.875, 1e-6);
        // Over after 0.16 s: the node's own shadows again.
        assert_eq!(flash(0.17), None);
        // Nothing typed yet: no flash.
        let none = typewriter(LONG, &Value::Null, 0.01, &inh, WINDOW, 1.04);
        assert_eq!(none.prefix_bytes, 0);
        assert_eq!(none.text.text_shadow, None);
    }
}
