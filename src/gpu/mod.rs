//! The Vulkan compositor: video + display list → RGBA target → yuv420p, headless.
//!
//! All of renderd's `unsafe` Vulkan calls live under this module, behind a safe API:
//! [`Gpu`] (instance, device, queue), [`Compositor`] (per-frame resources in a ring of slots,
//! `submit`/`collect` pipelining, `render_rgba`). Each Vulkan object has one RAII owner that
//! holds an `Arc<Gpu>`, so destruction order follows from the types.
//!
//! Same-size yuv420p renders take a pass-through path: the input planes are copied into the
//! output buffer and only the display list's bounding box is drawn and converted back to YUV,
//! so a frame's cost follows the caption area rather than the frame size.
#![allow(unsafe_code)]

mod atlas;
mod compositor;
mod context;
mod error;
mod pipelines;
mod resources;

pub use compositor::Compositor;
pub use context::{list_devices, DevicePreference, DeviceType, Gpu, GpuConfig};
pub use error::{GpuError, GpuErrorKind, GpuInitError};

/// YUV ↔ RGB matrix coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

impl Matrix {
    /// (Kr, Kb) luma coefficients.
    pub fn kr_kb(self) -> (f32, f32) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorSpec {
    pub matrix: Matrix,
    pub full_range: bool,
}

impl Default for ColorSpec {
    /// BT.709, limited ("TV") range: what H.264 encoders expect by default.
    fn default() -> Self {
        ColorSpec {
            matrix: Matrix::Bt709,
            full_range: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneLayout {
    /// Three planes: Y, U, V (chroma at half width and height).
    Yuv420p,
    /// Two planes: Y, interleaved UV (half width and height).
    Nv12,
}

#[derive(Clone, Debug)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    pub layout: PlaneLayout,
    pub color: ColorSpec,
}

#[derive(Clone, Debug)]
pub struct CompositorSpec {
    /// None = no video, solid background only.
    pub input: Option<InputSpec>,
    /// Output size in pixels; both even.
    pub output_width: u32,
    pub output_height: u32,
    /// Colour spec of the YUV output.
    pub output_color: ColorSpec,
    /// Where the video lands in output px (x, y, w, h), scaled bilinearly.
    pub video_rect: [f32; 4],
    /// Fills everything outside `video_rect` (and everything when `input` is None).
    pub background: crate::compose::display::Color,
    /// Number of slots in the submission ring, ≥ 1 (typically 3).
    pub frames_in_flight: usize,
}

/// One decoded input frame. For NV12, `planes[0]` is Y, `planes[1]` is UV and `planes[2]` is empty.
pub struct InputFrame<'a> {
    pub planes: [&'a [u8]; 3],
    pub strides: [usize; 3],
}

/// Caller-allocated yuv420p output planes.
pub struct YuvOut<'a> {
    pub planes: [&'a mut [u8]; 3],
    pub strides: [usize; 3],
}

/// Identifies one submitted frame of one [`Compositor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// RGBA8 pixels, sRGB values, straight alpha (always 255 for composited frames).
#[derive(Debug, Clone, PartialEq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// The pixel at (x, y), or None outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        let p = self.pixels.get(i..i + 4)?;
        Some([p[0], p[1], p[2], p[3]])
    }
}
