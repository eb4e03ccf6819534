//! Compositor throughput at 1080p: upload a yuv420p frame, composite, convert to yuv420p and read
//! back, three frames in flight, for
//!   1. an empty display list (pass-through path: the input is copied, nothing drawn),
//!   2. a typical caption (one rounded box 1800×80 at the bottom + 60 glyph-sized masks),
//!   3. both again with the full-frame path forced (`Compositor::new_full_frame`).
//!
//! First, with validation on, one caption frame (over a smooth, in-gamut video) through both
//! paths is checked: near the caption box pass-through bytes are either the input's or the
//! full-frame path's (luma ±1, chroma ±2: that path upsamples chroma bilinearly and goes through
//! 8-bit R'G'B'), and input bytes away from it.
//!
//! `cargo run --release --example bench_gpu [SECONDS_PER_CASE]` (default 3).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use renderd::compose::display::{
    Affine, BoxQuad, Color, DisplayList, DrawItem, Mask, MaskFormat, MaskQuad,
};
use renderd::gpu::{
    ColorSpec, Compositor, CompositorSpec, Gpu, GpuConfig, InputFrame, InputSpec, PlaneLayout,
    YuvOut,
};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const IN_FLIGHT: usize = 3;

/// A 28×28 glyph-like coverage mask: a ring whose thickness depends on `id`.
fn glyph(id: u64) -> Arc<Mask> {
    let size = 28u32;
    let thickness = 2.0 + (id % 5) as f32;
    let pixels = (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f32 - 13.5, (i / size) as f32 - 13.5);
            let d = ((x * x + y * y).sqrt() - 9.0).abs();
            ((thickness - d).clamp(0.0, 1.0) * 255.0) as u8
        })
        .collect();
    Arc::new(Mask {
        id,
        width: size,
        height: size,
        format: MaskFormat::Alpha,
        pixels,
    })
}

fn caption() -> DisplayList {
    let mut items = vec![DrawItem::Box(BoxQuad {
        rect: [60.0, 960.0, 1800.0, 80.0],
        transform: Affine::IDENTITY,
        radius: 16.0,
        border_width: 3.0,
        fill: Color::rgba8(0, 0, 0, 0.6),
        border: Color::WHITE,
    })];
    let glyphs: Vec<Arc<Mask>> = (0..40).map(glyph).collect();
    items.extend((0..60usize).map(|i| {
        DrawItem::Mask(MaskQuad {
            mask: glyphs[i % glyphs.len()].clone(),
            rect: [0.0, 0.0, 28.0, 28.0],
            transform: Affine::translate(100.0 + 29.0 * i as f32, 986.0),
            color: Color::WHITE,
        })
    }));
    DisplayList { items }
}

fn spec() -> CompositorSpec {
    CompositorSpec {
        input: Some(InputSpec {
            width: WIDTH,
            height: HEIGHT,
            layout: PlaneLayout::Yuv420p,
            color: ColorSpec::default(),
        }),
        output_width: WIDTH,
        output_height: HEIGHT,
        output_color: ColorSpec::default(),
        video_rect: [0.0, 0.0, WIDTH as f32, HEIGHT as f32],
        background: Color::BLACK,
        frames_in_flight: IN_FLIGHT,
    }
}

struct Frame {
    planes: [Vec<u8>; 3],
}

impl Frame {
    fn new() -> Self {
        let (w, h) = (WIDTH as usize, HEIGHT as usize);
        let plane = |pw: usize, ph: usize, k: usize| -> Vec<u8> {
            (0..pw * ph)
                .map(|i| (16 + (i % pw + k * (i / pw)) % 220) as u8)
                .collect()
        };
        Frame {
            planes: [
                plane(w, h, 3),
                plane(w / 2, h / 2, 5),
                plane(w / 2, h / 2, 7),
            ],
        }
    }

    /// Triangle-wave planes inside the R'G'B' gamut with slowly varying chroma, which the
    /// full-frame path turns into R'G'B' and back almost losslessly (a fair reference).
    fn smooth() -> Self {
        let (w, h) = (WIDTH as usize, HEIGHT as usize);
        let triangle = |t: usize, half: usize| (t % (2 * half)).abs_diff(half);
        let plane = |pw: usize, ph: usize, f: &dyn Fn(usize, usize) -> usize| -> Vec<u8> {
            (0..pw * ph).map(|i| f(i % pw, i / pw) as u8).collect()
        };
        Frame {
            planes: [
                plane(w, h, &|x, y| 50 + 4 * triangle(3 * x + 2 * y, 36)),
                plane(w / 2, h / 2, &|x, y| 112 + triangle(x + 2 * y, 16)),
                plane(w / 2, h / 2, &|x, y| 112 + triangle(2 * x + y, 16)),
            ],
        }
    }

    fn input(&self) -> InputFrame<'_> {
        let w = WIDTH as usize;
        InputFrame {
            planes: [&self.planes[0], &self.planes[1], &self.planes[2]],
            strides: [w, w / 2, w / 2],
        }
    }
}

/// One frame through `c`, read back into three tightly packed planes.
fn render_once(c: &mut Compositor, frame: &Frame, list: &DisplayList) -> Result<Frame> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut out = Frame {
        planes: [vec![0; w * h], vec![0; w * h / 4], vec![0; w * h / 4]],
    };
    let t = c.submit(Some(frame.input()), list).context("submit")?;
    let [y, u, v] = &mut out.planes;
    let mut yuv = YuvOut {
        planes: [y, u, v],
        strides: [w, w / 2, w / 2],
    };
    c.collect(t, &mut yuv).context("collect")?;
    Ok(out)
}

/// Checks the pass-through path against the full-frame path on one caption frame (module doc).
fn check_paths(list: &DisplayList) -> Result<()> {
    let gpu = Gpu::new(&GpuConfig {
        validation: true,
        ..Default::default()
    })
    .context("initialising Vulkan with validation")?;
    let frame = Frame::smooth();
    let mut pt = Compositor::new(gpu.clone(), spec()).context("compositor")?;
    let mut full = Compositor::new_full_frame(gpu.clone(), spec()).context("compositor")?;
    let a = render_once(&mut pt, &frame, list)?;
    let b = render_once(&mut full, &frame, list)?;
    // The caption box [60, 960, 1800, 80] plus the antialiasing margin and 4:2:0 rounding.
    let near_caption = |x: usize, y: usize| (56..1866).contains(&x) && (956..1044).contains(&y);
    let (mut redrawn, mut bad) = (0usize, 0usize);
    for plane in 0..3 {
        let s = if plane == 0 { 1 } else { 2 };
        let tolerance = if plane == 0 { 1 } else { 2 };
        let pw = WIDTH as usize / s;
        for (i, ((&got, &input), &reference)) in a.planes[plane]
            .iter()
            .zip(&frame.planes[plane])
            .zip(&b.planes[plane])
            .enumerate()
        {
            let (x, y) = ((i % pw) * s, (i / pw) * s);
            if got != input {
                redrawn += 1;
            }
            let ok = if near_caption(x, y) {
                got == input || got.abs_diff(reference) <= tolerance
            } else {
                got == input
            };
            if !ok {
                bad += 1;
            }
        }
    }
    drop((pt, full));
    let errors = gpu.validation_errors();
    println!(
        "check: {redrawn} bytes redrawn, {bad} wrong, {errors} validation errors ({})",
        if bad == 0 && errors == 0 && redrawn > 0 {
            "ok"
        } else {
            "FAILED"
        }
    );
    anyhow::ensure!(
        bad == 0 && errors == 0 && redrawn > 0,
        "pass-through output does not match"
    );
    Ok(())
}

/// Runs frames through `c` for `duration`, keeping IN_FLIGHT submitted; returns (frames, fps).
fn run(c: &mut Compositor, list: &DisplayList, duration: Duration) -> Result<(u64, f64)> {
    let frame = Frame::new();
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut out = Frame {
        planes: [vec![0; w * h], vec![0; w * h / 4], vec![0; w * h / 4]],
    };
    let mut collect = |c: &mut Compositor, t| -> Result<()> {
        let [y, u, v] = &mut out.planes;
        let mut yuv = YuvOut {
            planes: [y, u, v],
            strides: [w, w / 2, w / 2],
        };
        c.collect(t, &mut yuv).context("collect")
    };
    // Warm-up: pipelines, atlas uploads.
    let t = c.submit(Some(frame.input()), list).context("submit")?;
    collect(c, t)?;
    let mut pending = VecDeque::new();
    let mut frames = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        pending.push_back(c.submit(Some(frame.input()), list).context("submit")?);
        if pending.len() >= IN_FLIGHT {
            if let Some(t) = pending.pop_front() {
                collect(c, t)?;
                frames += 1;
            }
        }
    }
    while let Some(t) = pending.pop_front() {
        collect(c, t)?;
        frames += 1;
    }
    Ok((frames, frames as f64 / start.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    let seconds: f64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SECONDS_PER_CASE must be a number, got {s:?}"))?,
        None => 3.0,
    };
    let duration = Duration::from_secs_f64(seconds.max(0.1));
    let caption = caption();
    check_paths(&caption)?;
    let gpu = Gpu::new(&GpuConfig::default()).context("initialising Vulkan")?;
    println!(
        "device: {} ({:?}), {WIDTH}x{HEIGHT} yuv420p in and out, {IN_FLIGHT} frames in flight",
        gpu.device_name(),
        gpu.device_type()
    );
    let empty = DisplayList::default();
    let mut pass_through = Compositor::new(gpu.clone(), spec()).context("compositor")?;
    let mut full = Compositor::new_full_frame(gpu.clone(), spec()).context("compositor")?;
    let cases = [
        ("empty list", false, &empty),
        ("caption (box + 60 masks)", false, &caption),
        ("empty list, full-frame path", true, &empty),
        ("caption, full-frame path", true, &caption),
    ];
    for (name, full_frame, list) in cases {
        let c = if full_frame {
            &mut full
        } else {
            &mut pass_through
        };
        let path = if c.is_pass_through() {
            "pass-through"
        } else {
            "full frame"
        };
        let (frames, fps) = run(c, list, duration)?;
        println!("{name:<30} [{path}]: {frames:>6} frames, {fps:>8.1} fps");
    }
    Ok(())
}
