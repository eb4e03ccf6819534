//! The display list: what the GPU draws over one video frame, in output pixels.
//!
//! The compose step turns a scene at time `t` into a flat, paint-ordered list of quads.
//! The GPU module draws it without knowing anything about fonts, scenarios or layout.

use std::sync::Arc;

/// A 2-D affine transform `p' = (a·x + c·y + e, b·x + d·y + f)`, CSS `matrix(a, b, c, d, e, f)` order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        e: 0.0,
        f: 0.0,
    };

    pub fn translate(x: f32, y: f32) -> Self {
        Affine {
            e: x,
            f: y,
            ..Self::IDENTITY
        }
    }

    pub fn scale(sx: f32, sy: f32) -> Self {
        Affine {
            a: sx,
            d: sy,
            ..Self::IDENTITY
        }
    }

    /// Clockwise on screen (y down) for positive degrees, as CSS `rotate()`.
    pub fn rotate_deg(deg: f32) -> Self {
        let (s, c) = deg.to_radians().sin_cos();
        Affine {
            a: c,
            b: s,
            c: -s,
            d: c,
            e: 0.0,
            f: 0.0,
        }
    }

    /// CSS `skew(ax, ay)` in degrees.
    pub fn skew_deg(ax: f32, ay: f32) -> Self {
        Affine {
            a: 1.0,
            b: ay.to_radians().tan(),
            c: ax.to_radians().tan(),
            d: 1.0,
            e: 0.0,
            f: 0.0,
        }
    }

    /// Matrix product `self · other`: `other` is applied to the vector first, then `self`
    /// (reads left to right as CSS transform lists do).
    pub fn then(self, o: Affine) -> Affine {
        Affine {
            a: self.a * o.a + self.c * o.b,
            b: self.b * o.a + self.d * o.b,
            c: self.a * o.c + self.c * o.d,
            d: self.b * o.c + self.d * o.d,
            e: self.a * o.e + self.c * o.f + self.e,
            f: self.b * o.e + self.d * o.f + self.f,
        }
    }

    /// `T(o) · self · T(-o)`: the same linear map about origin `(ox, oy)`.
    pub fn about(self, ox: f32, oy: f32) -> Affine {
        Affine::translate(ox, oy)
            .then(self)
            .then(Affine::translate(-ox, -oy))
    }

    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.a * x + self.c * y + self.e,
            self.b * x + self.d * y + self.f,
        )
    }

    /// Largest axis scale factor (used to pick a rasterisation size).
    pub fn max_scale(&self) -> f32 {
        let sx = (self.a * self.a + self.b * self.b).sqrt();
        let sy = (self.c * self.c + self.d * self.d).sqrt();
        sx.max(sy)
    }
}

/// Straight (not premultiplied) sRGB colour, components 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color {
    pub r: f32,
    pub g: f32,
    pub b: f32,
    pub a: f32,
}

impl Color {
    pub const TRANSPARENT: Color = Color {
        r: 0.0,
        g: 0.0,
        b: 0.0,
        a: 0.0,
    };
    pub const BLACK: Color = Color {
        r: 0.0,
        g: 0.0,
        b: 0.0,
        a: 1.0,
    };
    pub const WHITE: Color = Color {
        r: 1.0,
        g: 1.0,
        b: 1.0,
        a: 1.0,
    };

    pub fn rgba8(r: u8, g: u8, b: u8, a: f32) -> Self {
        Color {
            r: r as f32 / 255.0,
            g: g as f32 / 255.0,
            b: b as f32 / 255.0,
            a,
        }
    }

    pub fn with_alpha_mul(self, k: f32) -> Self {
        Color {
            a: (self.a * k).clamp(0.0, 1.0),
            ..self
        }
    }
}

/// What the texels of a [`Mask`] hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaskFormat {
    /// One byte of coverage per texel, drawn tinted with the quad's colour.
    Alpha,
    /// Premultiplied sRGB RGBA, four bytes per texel (colour emoji): drawn in its own colours,
    /// only its opacity scaled by the alpha of the quad's colour.
    Rgba,
}

impl MaskFormat {
    pub fn bytes_per_texel(self) -> usize {
        match self {
            MaskFormat::Alpha => 1,
            MaskFormat::Rgba => 4,
        }
    }
}

/// A glyph image: an 8-bit coverage mask (glyph fill, glyph stroke, or a blurred glyph for
/// shadows) or a premultiplied colour image (colour emoji), see [`MaskFormat`].
/// `id` is unique for the content: the GPU atlas caches masks by it.
#[derive(Debug)]
pub struct Mask {
    pub id: u64,
    pub width: u32,
    pub height: u32,
    pub format: MaskFormat,
    /// Row-major, `width * height * format.bytes_per_texel()` bytes.
    pub pixels: Vec<u8>,
}

/// Draw `mask` tinted with `color` (an RGBA mask: only scaled by `color.a`) into the rectangle `rect` (x, y, w, h) of the local space,
/// mapped to output pixels by `transform`. The mask is sampled bilinearly over the rectangle.
#[derive(Debug, Clone)]
pub struct MaskQuad {
    pub mask: Arc<Mask>,
    pub rect: [f32; 4],
    pub transform: Affine,
    pub color: Color,
}

/// A filled rounded rectangle with an optional inner border (CSS border-box semantics):
/// `rect` (x, y, w, h) in local space, mapped by `transform`.
#[derive(Debug, Clone)]
pub struct BoxQuad {
    pub rect: [f32; 4],
    pub transform: Affine,
    pub radius: f32,
    pub border_width: f32,
    pub fill: Color,
    pub border: Color,
}

#[derive(Debug, Clone)]
pub enum DrawItem {
    Mask(MaskQuad),
    Box(BoxQuad),
    // fx: offscreen layers and radial gradients (glow, glitch).
    Gradient(GradientQuad),
    Layer(LayerItem),
}

/// A rectangle filled with a radial gradient centred in it: `color` (straight sRGB) from the
/// centre to `inner` × radius, fading linearly to transparent at `outer` × radius, where the
/// radius is half the rectangle's diagonal (the glow plugin's halo). `rect` (x, y, w, h) in
/// local space, mapped by `transform`.
#[derive(Debug, Clone)]
pub struct GradientQuad {
    pub rect: [f32; 4],
    pub transform: Affine,
    pub color: Color,
    pub inner: f32,
    pub outer: f32,
}

/// How an item inside a [`LayerItem`] is combined with what the layer already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlendMode {
    /// Premultiplied source-over.
    #[default]
    Normal,
    /// CSS `mix-blend-mode: screen` inside the isolated layer: `src + dst − src·dst` on
    /// premultiplied colour and on alpha.
    Screen,
}

/// One item of a layer with its blend mode.
#[derive(Debug, Clone)]
pub struct LayerDraw {
    pub blend: BlendMode,
    pub item: DrawItem,
}

/// An isolated group (CSS stacking context with opacity/filter): `items` (output pixel
/// coordinates, back to front; layers do not nest) are drawn into an offscreen premultiplied
/// image that starts transparent and never sees the video, optionally blurred by a Gaussian of
/// standard deviation `blur_sigma` output pixels (spreading outside the items' bounds), then
/// composited with `opacity` in paint order.
#[derive(Debug, Clone)]
pub struct LayerItem {
    pub items: Vec<LayerDraw>,
    pub blur_sigma: f32,
    pub opacity: f32,
}

impl LayerItem {
    /// A layer whose items all use [`BlendMode::Normal`].
    pub fn normal(items: Vec<DrawItem>, blur_sigma: f32, opacity: f32) -> Self {
        LayerItem {
            items: items
                .into_iter()
                .map(|item| LayerDraw {
                    blend: BlendMode::Normal,
                    item,
                })
                .collect(),
            blur_sigma,
            opacity,
        }
    }
}

/// Everything drawn over one frame, back to front, in output pixel coordinates.
#[derive(Debug, Clone, Default)]
pub struct DisplayList {
    pub items: Vec<DrawItem>,
}

impl DisplayList {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_clockwise_on_screen() {
        let (x, y) = Affine::rotate_deg(90.0).apply(1.0, 0.0);
        assert!(x.abs() < 1e-6 && (y - 1.0).abs() < 1e-6, "({x}, {y})");
    }

    #[test]
    fn about_keeps_origin_fixed() {
        let m = Affine::scale(2.0, 3.0).about(10.0, 20.0);
        assert_eq!(m.apply(10.0, 20.0), (10.0, 20.0));
        assert_eq!(m.apply(11.0, 21.0), (12.0, 23.0));
    }

    #[test]
    fn mul_applies_right_operand_first() {
        let m = Affine::translate(5.0, 0.0).then(Affine::scale(2.0, 2.0));
        assert_eq!(m.apply(1.0, 1.0), (7.0, 2.0));
    }
}
