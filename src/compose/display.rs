//! The display list: what the GPU draws over one video frame, in output pixels.
//!
//! The compose step turns a scene at time `t` into a flat, paint-ordered list of quads.
//! The GPU module draws it without knowing anything about fonts, scenarios or layout.

use std::sync::Arc;

/// A 2-D projective transform (a homography of the plane), CSS `matrix(a, b, c, d, e, f)` order
/// plus a projective row `(g, h, i)`:
///
/// ```text
/// | X |   | a c e | | x |
/// | Y | = | b d f | | y |      p' = (X / W, Y / W)
/// | W |   | g h i | | 1 |
/// ```
///
/// Every 2-D transform (translate, scale, rotate, skew and their products) has `g = h = 0`,
/// `i = 1` and is the affine map `p' = (a·x + c·y + e, b·x + d·y + f)`. A plane turned in 3-D
/// and seen through a CSS perspective ([`Affine::rotate_3d_deg`]) has a non-zero `g`, `h`.
///
/// The matrix is homogeneous: `W` is `1 − Z/P` for a point at depth `Z` under perspective `P`,
/// so `W ≤ 0` means the point is at or behind the viewer and has no image. `i` is kept (instead
/// of normalising it to 1) so that the sign of `W` survives products whose local origin lies
/// behind the viewer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
    pub g: f32,
    pub h: f32,
    pub i: f32,
}

/// A CSS `perspective` seen from a vanishing point (`perspective-origin`): a point `(X, Y, Z)`
/// (Z toward the viewer) appears at `v + (X − vx, Y − vy)·P/(P − Z)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perspective {
    /// The distance P from the viewer to the z = 0 plane, in local units (CSS px), > 0.
    pub distance: f32,
    /// The vanishing point, in the coordinates the rotated plane is expressed in.
    pub vx: f32,
    pub vy: f32,
}

/// Smallest `W` treated as in front of the viewer: nearer points would project further than
/// 1024 times their distance from the vanishing point.
pub const MIN_W: f32 = 1.0 / 1024.0;

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        e: 0.0,
        f: 0.0,
        g: 0.0,
        h: 0.0,
        i: 1.0,
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
            ..Self::IDENTITY
        }
    }

    /// CSS `skew(ax, ay)` in degrees.
    pub fn skew_deg(ax: f32, ay: f32) -> Self {
        Affine {
            b: ay.to_radians().tan(),
            c: ax.to_radians().tan(),
            ..Self::IDENTITY
        }
    }

    /// The z = 0 plane turned in 3-D about the origin by CSS
    /// `rotateZ(rz) rotateY(ry) rotateX(rx)` (degrees; rotateX is applied to vectors first),
    /// then flattened back to the screen: through `perspective` when given (a homography), or
    /// orthographically (dropping Z, an affine map) when `None`. Back faces are not culled: a
    /// half turn about Y or X shows the plane mirrored.
    ///
    /// CSS matrices (y down, z toward the viewer): rotateX = `[1 0 0; 0 c −s; 0 s c]`,
    /// rotateY = `[c 0 s; 0 1 0; −s 0 c]`, rotateZ = `[c −s 0; s c 0; 0 0 1]`.
    pub fn rotate_3d_deg(rx: f32, ry: f32, rz: f32, perspective: Option<Perspective>) -> Self {
        let (sx, cx) = f64::from(rx).to_radians().sin_cos();
        let (sy, cy) = f64::from(ry).to_radians().sin_cos();
        let (sz, cz) = f64::from(rz).to_radians().sin_cos();
        // Columns 0 and 1 of Rz·Ry·Rx: the images of the plane's x and y axes in 3-D.
        let x_axis = [cz * cy, sz * cy, -sy];
        let y_axis = [cz * sy * sx - sz * cx, sz * sy * sx + cz * cx, cy * sx];
        // Perspective about v: X_h = X − vx·Z/P, Y_h = Y − vy·Z/P, W = 1 − Z/P.
        let (k, vx, vy) = match perspective {
            Some(p) if p.distance.is_finite() && p.distance > 0.0 => (
                1.0 / f64::from(p.distance),
                f64::from(p.vx),
                f64::from(p.vy),
            ),
            _ => (0.0, 0.0, 0.0),
        };
        Affine {
            a: (x_axis[0] - vx * k * x_axis[2]) as f32,
            b: (x_axis[1] - vy * k * x_axis[2]) as f32,
            c: (y_axis[0] - vx * k * y_axis[2]) as f32,
            d: (y_axis[1] - vy * k * y_axis[2]) as f32,
            e: 0.0,
            f: 0.0,
            g: (-k * x_axis[2]) as f32,
            h: (-k * y_axis[2]) as f32,
            i: 1.0,
        }
    }

    /// True when `g = h = 0`: an affine map (every transform but a perspective one).
    pub fn is_affine(&self) -> bool {
        self.g == 0.0 && self.h == 0.0
    }

    /// Matrix product `self · other` (full 3×3): `other` is applied to the vector first, then
    /// `self` (reads left to right as CSS transform lists do).
    pub fn then(self, o: Affine) -> Affine {
        Affine {
            a: self.a * o.a + self.c * o.b + self.e * o.g,
            b: self.b * o.a + self.d * o.b + self.f * o.g,
            c: self.a * o.c + self.c * o.d + self.e * o.h,
            d: self.b * o.c + self.d * o.d + self.f * o.h,
            e: self.a * o.e + self.c * o.f + self.e * o.i,
            f: self.b * o.e + self.d * o.f + self.f * o.i,
            g: self.g * o.a + self.h * o.b + self.i * o.g,
            h: self.g * o.c + self.h * o.d + self.i * o.h,
            i: self.g * o.e + self.h * o.f + self.i * o.i,
        }
    }

    /// `T(o) · self · T(-o)`: the same linear map about origin `(ox, oy)`.
    pub fn about(self, ox: f32, oy: f32) -> Affine {
        Affine::translate(ox, oy)
            .then(self)
            .then(Affine::translate(-ox, -oy))
    }

    /// Homogeneous image `(X, Y, W)` of `(x, y)`.
    pub fn homogeneous(&self, x: f32, y: f32) -> [f32; 3] {
        [
            self.a * x + self.c * y + self.e,
            self.b * x + self.d * y + self.f,
            self.g * x + self.h * y + self.i,
        ]
    }

    /// The image `(X/W, Y/W)` of `(x, y)`. Exact (no division) for affine maps; for a point
    /// at or behind the viewer (`W ≤ 0`) the result is not a visible position (infinite or
    /// mirrored): use [`Affine::project`] where that can happen.
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let [px, py, w] = self.homogeneous(x, y);
        if w == 1.0 {
            (px, py)
        } else {
            (px / w, py / w)
        }
    }

    /// The image of `(x, y)`, or `None` when the point is at or behind the viewer
    /// (`W < MIN_W`).
    pub fn project(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        let [px, py, w] = self.homogeneous(x, y);
        (w >= MIN_W).then(|| (px / w, py / w))
    }

    /// Lengths of the images of the local unit x and y vectors at `(x, y)` (the columns of
    /// the Jacobian); `None` behind the viewer.
    pub fn axis_scales_at(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        let [px, py, w] = self.homogeneous(x, y);
        if w < MIN_W {
            return None;
        }
        let (ux, uy) = (px / w, py / w);
        // ∂(X/W)/∂x = (a − g·x')/W and so on.
        let sx = ((self.a - self.g * ux).hypot(self.b - self.g * uy)) / w;
        let sy = ((self.c - self.h * ux).hypot(self.d - self.h * uy)) / w;
        Some((sx, sy))
    }

    /// Largest axis scale factor at the local origin (used to pick a rasterisation size).
    /// For an affine map it is the same everywhere; for a perspective one it changes across
    /// the plane, so use [`Affine::max_scale_in`] with the drawn rectangle.
    pub fn max_scale(&self) -> f32 {
        if self.is_affine() {
            let sx = (self.a * self.a + self.b * self.b).sqrt() / self.i.abs();
            let sy = (self.c * self.c + self.d * self.d).sqrt() / self.i.abs();
            return sx.max(sy);
        }
        self.axis_scales_at(0.0, 0.0)
            .map_or(0.0, |(sx, sy)| sx.max(sy))
    }

    /// Largest axis scale factor over the rectangle `rect` (x, y, w, h) of the local space,
    /// taken at its corners (where a homography magnifies most, as `W` is linear); corners
    /// behind the viewer are skipped, and 0 when all are. Equals [`Affine::max_scale`] for an
    /// affine map.
    pub fn max_scale_in(&self, rect: [f32; 4]) -> f32 {
        if self.is_affine() {
            return self.max_scale();
        }
        let [x, y, w, h] = rect;
        [(x, y), (x + w, y), (x, y + h), (x + w, y + h)]
            .into_iter()
            .filter_map(|(px, py)| self.axis_scales_at(px, py))
            .map(|(sx, sy)| sx.max(sy))
            .fold(0.0, f32::max)
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

    fn near(got: (f32, f32), want: (f32, f32), tol: f32) {
        assert!(
            (got.0 - want.0).abs() <= tol && (got.1 - want.1).abs() <= tol,
            "{got:?} != {want:?}"
        );
    }

    const P800: Option<Perspective> = Some(Perspective {
        distance: 800.0,
        vx: 0.0,
        vy: 0.0,
    });

    #[test]
    fn affine_transforms_keep_the_projective_row_trivial() {
        let m = Affine::translate(3.0, 4.0)
            .then(Affine::rotate_deg(30.0))
            .then(Affine::skew_deg(10.0, 0.0))
            .then(Affine::scale(2.0, 0.5));
        assert!(m.is_affine());
        assert_eq!((m.g, m.h, m.i), (0.0, 0.0, 1.0));
        assert_eq!(m.max_scale_in([5.0, 5.0, 100.0, 100.0]), m.max_scale());
        assert_eq!(m.project(1.0, 2.0), Some(m.apply(1.0, 2.0)));
        // Without perspective a 3-D rotation is affine (Z dropped).
        assert!(Affine::rotate_3d_deg(30.0, 40.0, 50.0, None).is_affine());
    }

    #[test]
    fn quarter_turn_about_y_is_edge_on() {
        for p in [None, P800] {
            let m = Affine::rotate_3d_deg(0.0, 90.0, 0.0, p);
            for (x, y) in [(-50.0, -20.0), (50.0, 0.0), (30.0, 25.0)] {
                let (px, py) = m.apply(x, y);
                assert!(px.abs() < 1e-4, "{p:?}: x {x} → {px}");
                // Heights scale by P/(P − Z) with Z = −x·sin 90° = −x.
                let k = p.map_or(1.0, |_| 800.0 / (800.0 + x));
                assert!((py - y * k).abs() < 1e-3, "{p:?}: y {y} → {py}");
            }
            // Zero width: the x axis maps to nothing.
            assert!(m.axis_scales_at(0.0, 0.0).is_some_and(|(sx, _)| sx < 1e-6));
        }
    }

    #[test]
    fn half_turns_mirror() {
        let y = Affine::rotate_3d_deg(0.0, 180.0, 0.0, P800);
        near(y.apply(40.0, 10.0), (-40.0, 10.0), 1e-3);
        let x = Affine::rotate_3d_deg(180.0, 0.0, 0.0, P800);
        near(x.apply(40.0, 10.0), (40.0, -10.0), 1e-3);
        // rotateZ is the 2-D rotation.
        let z = Affine::rotate_3d_deg(0.0, 0.0, 90.0, P800);
        near(
            z.apply(1.0, 0.0),
            Affine::rotate_deg(90.0).apply(1.0, 0.0),
            1e-6,
        );
    }

    #[test]
    fn perspective_enlarges_what_comes_toward_the_viewer() {
        // rotateY(60°): (x, 0, 0) → (x/2, 0, −x·sin 60°); seen at P/(P − Z).
        let m = Affine::rotate_3d_deg(0.0, 60.0, 0.0, P800);
        let s = 3f32.sqrt() / 2.0;
        near(
            m.apply(100.0, 0.0),
            (50.0 * 800.0 / (800.0 + 100.0 * s), 0.0),
            1e-3,
        );
        near(
            m.apply(-100.0, 0.0),
            (-50.0 * 800.0 / (800.0 - 100.0 * s), 0.0),
            1e-3,
        );
        // A point near the viewer is magnified, one behind it has no image.
        near(m.apply(-100.0, 10.0), (-56.07, 11.214), 1e-2);
        assert!(m.project(-1000.0, 0.0).is_none());
        // rotateX(−30°) tilts the top (y < 0) toward the viewer: Z = y·sin(−30°) = −y/2.
        let m = Affine::rotate_3d_deg(-30.0, 0.0, 0.0, P800);
        let k = 800.0 / (800.0 - 20.0);
        near(
            m.apply(40.0, -40.0),
            (40.0 * k, -40.0 * 3f32.sqrt() / 2.0 * k),
            1e-3,
        );
        // The vanishing point stays put; points move along rays from it.
        let v = Perspective {
            distance: 400.0,
            vx: 100.0,
            vy: -50.0,
        };
        let m = Affine::rotate_3d_deg(0.0, 90.0, 0.0, Some(v));
        let (px, py) = m.apply(-200.0, 0.0); // Z = 200: magnified by 400 / 200 = 2
        near(
            (px, py),
            (100.0 + (0.0 - 100.0) * 2.0, -50.0 + 50.0 * 2.0),
            1e-3,
        );
    }

    #[test]
    fn projective_products_apply_in_order_and_scale_sensibly() {
        let rot = Affine::rotate_3d_deg(20.0, 50.0, 10.0, P800);
        let m = Affine::translate(640.0, 360.0)
            .then(rot)
            .then(Affine::scale(2.0, 2.0))
            .then(Affine::translate(-30.0, -10.0));
        let (x, y) = rot.apply(2.0 * (15.0 - 30.0), 2.0 * (7.0 - 10.0));
        near(m.apply(15.0, 7.0), (640.0 + x, 360.0 + y), 1e-3);
        assert!(!m.is_affine());
        // Scales: about 2 at the origin of the rotation, larger toward the viewer.
        let at_centre = m.axis_scales_at(30.0, 10.0).map_or(0.0, |(a, b)| a.max(b));
        assert!(at_centre > 1.2 && at_centre < 2.1, "{at_centre}");
        let over = m.max_scale_in([0.0, 0.0, 60.0, 20.0]);
        assert!(over >= at_centre && over < 2.5, "{over} vs {at_centre}");
        // A local origin behind the viewer keeps the sign of W through products.
        let far = Affine::rotate_3d_deg(
            0.0,
            60.0,
            0.0,
            Some(Perspective {
                distance: 200.0,
                vx: 0.0,
                vy: 0.0,
            }),
        )
        .then(Affine::translate(-1000.0, 0.0));
        assert!(far.i < 0.0);
        assert!(far.project(0.0, 0.0).is_none());
        assert!(far.project(1000.0, 0.0).is_some());
        assert_eq!(far.max_scale_in([0.0, 0.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn mul_applies_right_operand_first() {
        let m = Affine::translate(5.0, 0.0).then(Affine::scale(2.0, 2.0));
        assert_eq!(m.apply(1.0, 1.0), (7.0, 2.0));
    }
}
