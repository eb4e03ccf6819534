//! §14 flames: an animated fire picture behind the glyphs, covering the text box, whose opacity
//! swings once over the window. The picture's frames and the drawing are the compositor's
//! (`media::assets`); this is the plugin's state at time t.

use serde_json::Value;

use super::super::easing::sine_in_out;
use super::num;

/// The plugin asset drawn (under `<plugin_dir>/flames@2.0.0/assets/`).
pub const ASSET: &str = "flame.gif";

/// The fire layer at time t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlamesAnim {
    /// Opacity of the fire layer.
    pub opacity: f64,
    /// Media seconds since the layer was created (the start of the window): picks the GIF frame.
    pub elapsed: f64,
}

/// The opacity at progress p: b at the start, `sine.inOut` to min(1, b + f) at ½, then to
/// max(0, b − f) at 1, held there after the window (p = 1).
pub(in crate::anim) fn opacity(params: &Value, p: f64) -> f64 {
    let b = num(params, "baseOpacity", 0.8).clamp(0.0, 1.0);
    let f = num(params, "flicker", 0.3).max(0.0);
    let (high, low) = ((b + f).min(1.0), (b - f).max(0.0));
    let p = p.clamp(0.0, 1.0);
    if p <= 0.5 {
        b + (high - b) * sine_in_out(p / 0.5)
    } else {
        high + (low - high) * sine_in_out((p - 0.5) / 0.5)
    }
}

pub(in crate::anim) fn anim(params: &Value, p: f64, window: (f64, f64), t: f64) -> FlamesAnim {
    FlamesAnim {
        opacity: opacity(params, p),
        elapsed: (t - window.0).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::close;
    use super::*;
    use serde_json::json;

    #[test]
    fn opacity_swings_up_then_down_and_holds() {
        let d = json!({});
        close(opacity(&d, 0.0), 0.8, 1e-12);
        close(opacity(&d, 0.25), 0.9, 1e-12); // halfway up the sine.inOut
        close(opacity(&d, 0.5), 1.0, 1e-12);
        close(opacity(&d, 0.75), 0.75, 1e-12);
        close(opacity(&d, 1.0), 0.5, 1e-12);
        close(opacity(&d, 7.0), 0.5, 1e-12);
        // Bounds: min(1, b + f) and max(0, b − f).
        let p = json!({"baseOpacity": 0.2, "flicker": 0.5});
        close(opacity(&p, 0.5), 0.7, 1e-12);
        close(opacity(&p, 1.0), 0.0, 1e-12);
        let p = json!({"baseOpacity": 0.9, "flicker": "x"});
        close(opacity(&p, 0.5), 1.0, 1e-12);
    }

    #[test]
    fn elapsed_counts_from_the_window_start() {
        let a = anim(&json!({}), 0.5, (1.0, 5.0), 3.25);
        close(a.elapsed, 2.25, 1e-12);
        close(a.opacity, 1.0, 1e-12);
    }
}
