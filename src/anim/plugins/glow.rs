//! §8 glow: a coloured halo. The whole text gets the shadow `0 0 6px c(k), 0 0 12px c(0.8k),
//! 0 0 18px c(0.6k)` (on E, replacing the node's own shadows) and a layer behind the glyphs:
//! a radial gradient the size of E blurred with σ = 24 px (on the GPU, see
//! `DrawItem::Layer`), drawn with opacity k. With `pulse` (false when the param is absent,
//! whatever the manifest says) k swells and settles over the window.

use serde_json::Value;

use super::{boolean, num, string};
use crate::anim::color::parse_hex_rgb;
use crate::anim::easing::sine_in_out;
use crate::anim::{GlowLayer, NodeAnim, ShadowPx};
use crate::compose::display::Color;

/// σ of the halo layer's Gaussian, CSS px.
pub(super) const GLOW_BLUR_PX: f64 = 24.0;

/// `#RRGGBB` or `#RGB`; anything else is black (the plugin's own parser).
pub(super) fn glow_color(s: &str) -> Color {
    parse_hex_rgb(s).unwrap_or(Color::BLACK)
}

/// The glow strength k at progress p for intensity k₀: static k₀ without pulse, else
/// k₀ → min(1, k₀ + 0.3) over the first half and → max(0, k₀ − 0.2) over the second, both
/// `sine.inOut`.
pub(super) fn strength(intensity: f64, pulse: bool, p: f64) -> f64 {
    if !pulse {
        return intensity;
    }
    let peak = (intensity + 0.3).min(1.0);
    if p <= 0.5 {
        intensity + (peak - intensity) * sine_in_out(2.0 * p)
    } else {
        let low = (intensity - 0.2).max(0.0);
        peak + (low - peak) * sine_in_out(2.0 * p - 1.0)
    }
}

/// The three glow shadows for strength k, top first: colour alpha min(1, a) per shadow.
pub(super) fn shadows(color: Color, k: f64) -> Vec<ShadowPx> {
    [(6.0, 1.0), (12.0, 0.8), (18.0, 0.6)]
        .into_iter()
        .map(|(blur, f)| ShadowPx {
            x: 0.0,
            y: 0.0,
            blur,
            color: Color {
                a: (f * k).clamp(0.0, 1.0) as f32,
                ..color
            },
        })
        .collect()
}

pub(super) fn apply(out: &mut NodeAnim, params: &Value, p: f64) {
    let color = glow_color(string(params, "color", "#00ffff"));
    let intensity = num(params, "intensity", 0.4);
    let k = strength(intensity, boolean(params, "pulse", false), p);
    out.effects.text_shadow = Some(shadows(color, k));
    out.glow = Some(GlowLayer {
        color: Color {
            a: intensity.clamp(0.0, 1.0) as f32,
            ..color
        },
        opacity: k.clamp(0.0, 1.0),
        blur_px: GLOW_BLUR_PX,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anim::plugins::test_util::{close, rgb};
    use serde_json::json;

    #[test]
    fn colours_parse_as_the_plugin_does() {
        assert_eq!(rgb(Some(glow_color("#00ffff"))), (0, 255, 255));
        assert_eq!(rgb(Some(glow_color("#f80"))), (255, 136, 0));
        for bad in ["cyan", "rgb(0,255,255)", "#00ffff80", "#ggg", ""] {
            assert_eq!(glow_color(bad), Color::BLACK, "{bad}");
        }
    }

    #[test]
    fn pulse_swells_then_settles() {
        close(strength(0.4, true, 0.0), 0.4, 1e-12);
        close(strength(0.4, true, 0.25), 0.55, 1e-12);
        close(strength(0.4, true, 0.5), 0.7, 1e-12);
        close(strength(0.4, true, 0.75), 0.45, 1e-12);
        close(strength(0.4, true, 1.0), 0.2, 1e-12);
        // Capped at 1 on the way up, at 0 on the way down.
        close(strength(0.9, true, 0.5), 1.0, 1e-12);
        close(strength(0.1, true, 1.0), 0.0, 1e-12);
        // Without pulse: the intensity throughout.
        for p in [0.0, 0.3, 1.0] {
            close(strength(0.4, false, p), 0.4, 1e-12);
        }
    }

    #[test]
    fn shadow_alphas_follow_k() {
        let s = shadows(glow_color("#00ffff"), 0.5);
        let blurs: Vec<f64> = s.iter().map(|s| s.blur).collect();
        assert_eq!(blurs, vec![6.0, 12.0, 18.0]);
        let alphas: Vec<f32> = s.iter().map(|s| s.color.a).collect();
        assert_eq!(alphas, vec![0.5, 0.4, 0.3]);
        assert!(s.iter().all(|s| rgb(Some(s.color)) == (0, 255, 255)));
        let strong: Vec<f32> = shadows(Color::WHITE, 1.5)
            .iter()
            .map(|s| s.color.a)
            .collect();
        assert_eq!(strong, vec![1.0, 1.0, 0.9]);
    }

    #[test]
    fn apply_sets_shadow_and_layer() {
        let mut out = NodeAnim::default();
        apply(&mut out, &Value::Null, 0.5);
        // Defaults: cyan, 0.4, no pulse (absent param).
        let layer = out.glow.unwrap_or(GlowLayer {
            color: Color::TRANSPARENT,
            opacity: -1.0,
            blur_px: 0.0,
        });
        close(layer.opacity, 0.4, 1e-12);
        close(f64::from(layer.color.a), 0.4, 1e-6);
        assert_eq!(rgb(Some(layer.color)), (0, 255, 255));
        close(layer.blur_px, 24.0, 0.0);
        let sh = out.effects.text_shadow.clone().unwrap_or_default();
        close(f64::from(sh[0].color.a), 0.4, 1e-6);
        // Pulsing, held at p = 1 after the window: dimmer, layer and shadows together.
        let mut out = NodeAnim::default();
        let params = json!({"pulse": true, "intensity": 0.6, "color": "#ff0000"});
        apply(&mut out, &params, 1.0);
        let layer = out.glow.map(|l| (l.opacity, l.color.a));
        assert_eq!(layer.map(|l| (l.0 * 1e6).round()), Some(400_000.0));
        assert_eq!(layer.map(|l| l.1), Some(0.6));
        let sh = out.effects.text_shadow.unwrap_or_default();
        close(f64::from(sh[2].color.a), 0.6 * 0.4, 1e-6);
        assert_eq!(rgb(Some(sh[1].color)), (255, 0, 0));
    }
}
