//! GSAP 3 ease functions (PLUGINS.md §0.5), parsed from their GSAP names.
//!
//! Every ease is defined by one "in" or "out" curve; the other two modes are derived the
//! way GSAP derives them (`in(t) = 1 − out(1 − t)`, `inOut` from `out`), so
//! `power2.inOut`, `back.in(3)` or `bounce.inOut` come for free.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// Which part of the curve is eased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EaseMode {
    In,
    Out,
    InOut,
}

/// The curve family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EaseCurve {
    /// `none`, `linear`, `power0`.
    Linear,
    /// `powerN` (N = exponent − 1): in(t) = t^exponent. quad = power1, cubic = power2,
    /// quart = power3, quint = strong = power4.
    Power {
        exponent: i32,
    },
    Sine,
    Expo,
    Circ,
    /// `back.*(overshoot)`, default overshoot 1.70158.
    Back {
        overshoot: f64,
    },
    /// `elastic.*(amplitude, period)`.
    Elastic {
        amplitude: f64,
        period: f64,
    },
    Bounce,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ease {
    pub curve: EaseCurve,
    pub mode: EaseMode,
}

const BACK_DEFAULT: f64 = 1.70158;

impl Default for Ease {
    /// GSAP's default ease: `power1.out`.
    fn default() -> Self {
        Ease::POWER1_OUT
    }
}

impl Ease {
    pub const LINEAR: Ease = Ease {
        curve: EaseCurve::Linear,
        mode: EaseMode::Out,
    };
    pub const POWER1_OUT: Ease = Ease::power(1, EaseMode::Out);
    pub const POWER1_IN_OUT: Ease = Ease::power(1, EaseMode::InOut);
    pub const POWER2_OUT: Ease = Ease::power(2, EaseMode::Out);
    pub const POWER3_OUT: Ease = Ease::power(3, EaseMode::Out);
    pub const SINE_IN_OUT: Ease = Ease {
        curve: EaseCurve::Sine,
        mode: EaseMode::InOut,
    };
    /// CWI `easeOutCubic` = 1 − (1 − t)³ (same curve as `power2.out`).
    pub const CUBIC_OUT: Ease = Ease::power(2, EaseMode::Out);
    /// CWI `easeInCubic` = t³.
    pub const CUBIC_IN: Ease = Ease::power(2, EaseMode::In);
    /// CWI `easeInOutCubic`.
    pub const CUBIC_IN_OUT: Ease = Ease::power(2, EaseMode::InOut);

    /// `powerN.mode` (N = 0 is linear).
    pub const fn power(n: i32, mode: EaseMode) -> Ease {
        Ease {
            curve: EaseCurve::Power { exponent: n + 1 },
            mode,
        }
    }

    pub const fn back_out(overshoot: f64) -> Ease {
        Ease {
            curve: EaseCurve::Back { overshoot },
            mode: EaseMode::Out,
        }
    }

    pub const fn elastic_out(amplitude: f64, period: f64) -> Ease {
        Ease {
            curve: EaseCurve::Elastic { amplitude, period },
            mode: EaseMode::Out,
        }
    }

    /// Parses a GSAP ease name: `power2.out`, `Power2.easeOut`, `power2` (= `.out`),
    /// `back.out(2)`, `elastic.out(1, 0.3)`, `sine.inOut`, `bounce.out`, `none`, `linear`,
    /// and the CWI names `easeOutCubic`, `easeInCubic`, `easeInOutCubic`. Case-insensitive.
    /// Anything unknown gives `power1.out` (GSAP's default ease).
    pub fn parse(name: &str) -> Ease {
        Ease::try_parse(name).unwrap_or_default()
    }

    /// Like [`Ease::parse`] but `None` for an unknown name.
    pub fn try_parse(name: &str) -> Option<Ease> {
        let lower = name.trim().to_ascii_lowercase();
        let (head, args) = match lower.find('(') {
            Some(open) => {
                let close = lower.rfind(')').filter(|&c| c > open)?;
                if !lower[close + 1..].trim().is_empty() {
                    return None;
                }
                (lower[..open].trim(), Some(&lower[open + 1..close]))
            }
            None => (lower.as_str(), None),
        };
        let params: Vec<Option<f64>> = args
            .map(|a| {
                a.split(',')
                    .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                    .collect()
            })
            .unwrap_or_default();
        let param = |i: usize| params.get(i).copied().flatten();

        match head {
            "none" | "linear" => return Some(Ease::LINEAR),
            "easeoutcubic" => return Some(Ease::CUBIC_OUT),
            "easeincubic" => return Some(Ease::CUBIC_IN),
            "easeinoutcubic" => return Some(Ease::CUBIC_IN_OUT),
            _ => {}
        }
        let (family, mode) = match head.split_once('.') {
            Some((f, m)) => (f, parse_mode(m)?),
            None => (head, EaseMode::Out),
        };
        let curve = match family {
            "power0" | "linear" => EaseCurve::Linear,
            "power1" | "quad" => EaseCurve::Power { exponent: 2 },
            "power2" | "cubic" => EaseCurve::Power { exponent: 3 },
            "power3" | "quart" => EaseCurve::Power { exponent: 4 },
            "power4" | "quint" | "strong" => EaseCurve::Power { exponent: 5 },
            "sine" => EaseCurve::Sine,
            "expo" => EaseCurve::Expo,
            "circ" => EaseCurve::Circ,
            "bounce" => EaseCurve::Bounce,
            "back" => EaseCurve::Back {
                overshoot: param(0).unwrap_or(BACK_DEFAULT),
            },
            "elastic" => EaseCurve::Elastic {
                amplitude: param(0).unwrap_or(1.0),
                // GSAP: .3 for in/out, .45 for inOut.
                period: param(1).filter(|p| *p != 0.0).unwrap_or(match mode {
                    EaseMode::InOut => 0.45,
                    EaseMode::In | EaseMode::Out => 0.3,
                }),
            },
            _ => return None,
        };
        Some(Ease { curve, mode })
    }

    /// The eased value for t (clamped to [0, 1]); may leave [0, 1] for back/elastic.
    pub fn apply(self, t: f64) -> f64 {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        match self.mode {
            EaseMode::Out => self.out(t),
            EaseMode::In => 1.0 - self.out(1.0 - t),
            EaseMode::InOut => {
                if t < 0.5 {
                    (1.0 - self.out(1.0 - t * 2.0)) / 2.0
                } else {
                    0.5 + self.out((t - 0.5) * 2.0) / 2.0
                }
            }
        }
    }

    /// The "out" curve of the family.
    fn out(self, t: f64) -> f64 {
        match self.curve {
            EaseCurve::Linear => t,
            EaseCurve::Power { exponent } => 1.0 - (1.0 - t).powi(exponent),
            EaseCurve::Sine => (t * FRAC_PI_2).sin(),
            EaseCurve::Expo => {
                if t >= 1.0 {
                    1.0
                } else {
                    1.0 - 2f64.powf(-10.0 * t)
                }
            }
            EaseCurve::Circ => (1.0 - (t - 1.0) * (t - 1.0)).max(0.0).sqrt(),
            EaseCurve::Back { overshoot: s } => {
                if t == 0.0 {
                    0.0
                } else {
                    let u = t - 1.0;
                    (s + 1.0) * u * u * u + s * u * u + 1.0
                }
            }
            EaseCurve::Elastic { amplitude, period } => {
                if t >= 1.0 {
                    return 1.0;
                }
                let a1 = amplitude.max(1.0);
                let p_prime = period / amplitude.min(1.0);
                if !(p_prime.is_finite() && p_prime > 0.0) {
                    return t;
                }
                let phase = p_prime / TAU * (1.0 / a1).asin();
                a1 * 2f64.powf(-10.0 * t) * ((t - phase) * TAU / p_prime).sin() + 1.0
            }
            EaseCurve::Bounce => bounce_out(t),
        }
    }
}

fn parse_mode(m: &str) -> Option<EaseMode> {
    match m {
        "out" | "easeout" => Some(EaseMode::Out),
        "in" | "easein" => Some(EaseMode::In),
        "inout" | "easeinout" => Some(EaseMode::InOut),
        _ => None,
    }
}

fn bounce_out(t: f64) -> f64 {
    const N: f64 = 7.5625;
    const D: f64 = 2.75;
    if t < 1.0 / D {
        N * t * t
    } else if t < 2.0 / D {
        let u = t - 1.5 / D;
        N * u * u + 0.75
    } else if t < 2.5 / D {
        let u = t - 2.25 / D;
        N * u * u + 0.9375
    } else {
        let u = t - 2.625 / D;
        N * u * u + 0.984375
    }
}

/// `sine.inOut` as a plain function (pulse, bobY).
pub fn sine_in_out(t: f64) -> f64 {
    (1.0 - (PI * t.clamp(0.0, 1.0)).cos()) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    #[test]
    fn reference_values_from_plugins_md() {
        close(Ease::parse("power2.out").apply(0.5), 0.875, 1e-9);
        close(Ease::parse("back.out(1.7)").apply(0.5), 1.0875, 1e-9);
        close(Ease::parse("back.out(2)").apply(0.5), 1.125, 1e-9);
        close(Ease::parse("elastic.out(1, 0.3)").apply(0.1), 1.25, 1e-9);
        close(
            Ease::parse("elastic.out(0.7,0.3)").apply(0.25),
            1.15309,
            1e-5,
        );
        close(
            Ease::parse("elastic.out(0.7,0.3)").apply(0.5),
            0.98438,
            1e-5,
        );
        close(
            Ease::parse("elastic.out(0.6, 0.3)").apply(0.5),
            0.96875,
            1e-5,
        );
        close(Ease::parse("bounce.out").apply(0.5), 0.76563, 1e-5);
        close(Ease::parse("sine.inOut").apply(0.25), 0.14645, 1e-5);
        close(Ease::parse("power1.inOut").apply(0.25), 0.125, 1e-9);
    }

    #[test]
    fn formulas_of_the_table() {
        for &t in &[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
            close(Ease::parse("none").apply(t), t, 1e-12);
            close(Ease::parse("linear").apply(t), t, 1e-12);
            close(
                Ease::parse("power1.out").apply(t),
                1.0 - (1.0 - t).powi(2),
                1e-12,
            );
            close(
                Ease::parse("power3.out").apply(t),
                1.0 - (1.0 - t).powi(4),
                1e-12,
            );
            close(
                Ease::parse("easeOutCubic").apply(t),
                1.0 - (1.0 - t).powi(3),
                1e-12,
            );
            close(Ease::parse("easeInCubic").apply(t), t * t * t, 1e-12);
            let cubic_in_out = if t < 0.5 {
                4.0 * t * t * t
            } else {
                1.0 - (2.0 - 2.0 * t).powi(3) / 2.0
            };
            close(Ease::parse("easeInOutCubic").apply(t), cubic_in_out, 1e-12);
            close(
                Ease::parse("sine.inOut").apply(t),
                (1.0 - (PI * t).cos()) / 2.0,
                1e-12,
            );
            close(sine_in_out(t), (1.0 - (PI * t).cos()) / 2.0, 1e-12);
            let s = BACK_DEFAULT;
            let back = if t == 0.0 {
                0.0
            } else {
                1.0 + (s + 1.0) * (t - 1.0).powi(3) + s * (t - 1.0).powi(2)
            };
            close(Ease::parse("back.out").apply(t), back, 1e-12);
        }
    }

    #[test]
    fn end_points() {
        for name in [
            "power2.out",
            "back.out(2)",
            "elastic.out(1, 0.3)",
            "elastic.out(0.6, 0.3)",
            "bounce.out",
            "sine.inOut",
            "expo.in",
            "circ.inOut",
        ] {
            let e = Ease::parse(name);
            close(e.apply(0.0), 0.0, 1e-9);
            close(e.apply(1.0), 1.0, 1e-9);
        }
    }

    #[test]
    fn parsing_variants() {
        assert_eq!(Ease::parse("Power2.easeOut"), Ease::POWER2_OUT);
        assert_eq!(Ease::parse("power2"), Ease::POWER2_OUT);
        assert_eq!(Ease::parse("cubic.out"), Ease::POWER2_OUT);
        assert_eq!(
            Ease::parse("elastic.out"),
            Ease::elastic_out(1.0, 0.3),
            "bare elastic.out is (1, 0.3)"
        );
        assert_eq!(Ease::parse("back.out"), Ease::back_out(BACK_DEFAULT));
        assert_eq!(Ease::parse("back.out(x)"), Ease::back_out(BACK_DEFAULT));
        assert_eq!(Ease::parse("wobble.out"), Ease::POWER1_OUT);
        assert_eq!(Ease::parse("power2.sideways"), Ease::POWER1_OUT);
        assert_eq!(Ease::parse("back.out(2"), Ease::POWER1_OUT);
        assert_eq!(Ease::parse(""), Ease::POWER1_OUT);
        assert_eq!(Ease::try_parse("nope"), None);
    }

    #[test]
    fn in_is_mirror_of_out() {
        let o = Ease::parse("power2.out");
        let i = Ease::parse("power2.in");
        for &t in &[0.2, 0.4, 0.8] {
            close(i.apply(t), 1.0 - o.apply(1.0 - t), 1e-12);
            close(i.apply(t), t.powi(3), 1e-12);
        }
    }
}
