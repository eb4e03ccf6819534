//! The render engine: scenario + source video → composited, encoded MP4 (or one PNG frame).
//! Ties the scene, the composer, the GPU compositor and the media pipeline together; the CLI
//! and (later) the job workers call only this.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::compose::display::{Color, DisplayList};
use crate::compose::Composer;
use crate::config::{Config, OptionsError, OutputRequest};
use crate::gpu::{
    ColorSpec, Compositor, CompositorSpec, Gpu, GpuError, GpuErrorKind, GpuInitError, InputFrame,
    InputSpec, Matrix, PlaneLayout, RgbaImage, Ticket, YuvOut,
};
use crate::media::assets::{AssetInitError, AssetLoader, LoadAssetError};
use crate::pipeline::{
    self, EncoderChoice, FramePrep, FrameStage, MediaError, OutputFormat, Prepared, RenderError,
    RenderJobSpec, RenderReport, StageError,
};
use crate::progress::{CancelToken, ProgressSink};
use crate::scene::{parse_scenario, ParseOptions, ScenarioError, Scene};
use crate::text::{FontError, FontLibrary};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read scenario {path}: {source}")]
    ReadScenario {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid scenario: {0}")]
    Scenario(#[from] ScenarioError),
    #[error("invalid render options: {0}")]
    Options(#[from] OptionsError),
    #[error("GPU unavailable: {0}")]
    GpuInit(#[from] GpuInitError),
    #[error("{0}")]
    Fonts(#[from] FontError),
    #[error("GPU error: {0}")]
    Gpu(#[from] GpuError),
    #[error("{0}")]
    Media(#[from] MediaError),
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("cannot load a scenario asset: {0}")]
    Asset(#[from] LoadAssetError),
    #[error("{0}")]
    AssetInit(#[from] AssetInitError),
}

impl EngineError {
    /// The contract's job failure code (CONTRACT.md).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::ReadScenario { .. } | EngineError::Scenario(_) => "SCENARIO_PARSE_ERROR",
            EngineError::Options(_) => "INVALID_RENDER_OPTIONS",
            EngineError::GpuInit(_) => "GPU_NOT_AVAILABLE",
            EngineError::Fonts(_) => "RENDER_INTERNAL_ERROR",
            EngineError::Gpu(e) => match e.kind() {
                GpuErrorKind::OutOfMemory => "GPU_MEMORY_INSUFFICIENT",
                GpuErrorKind::DeviceLost | GpuErrorKind::InvalidInput | GpuErrorKind::Internal => {
                    "RENDER_GPU_ERROR"
                }
            },
            EngineError::Media(_) => "INVALID_VIDEO_FORMAT",
            EngineError::Render(e) => e.kind(),
            EngineError::Asset(e) => e.code(),
            EngineError::AssetInit(_) => "RENDER_INTERNAL_ERROR",
        }
    }
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub input: PathBuf,
    pub output: PathBuf,
    pub options: OutputRequest,
    pub encoder: Option<EncoderChoice>,
    /// The output's container (mp4, mov, webm).
    pub format: crate::domain::job::OutputFormat,
}

/// How scenarios are parsed everywhere (CLI, CreateRender validation, workers): the configured
/// limits, and warnings for plugins renderd does not implement.
pub fn scene_parse_options(config: &Config) -> ParseOptions {
    ParseOptions {
        limits: config.limits.clone(),
        known_plugins: crate::anim::IMPLEMENTED
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..ParseOptions::default()
    }
}

pub struct Engine {
    config: Config,
    gpu: Arc<Gpu>,
    fonts: FontLibrary,
    assets: AssetLoader,
}

impl Engine {
    /// Opens the GPU (device choice from config, logged) and loads the fonts once.
    pub fn new(config: Config) -> Result<Self, EngineError> {
        let gpu = Gpu::new(&config.gpu)?;
        let fonts = FontLibrary::load(config.fonts.dir.as_deref())?;
        let assets = AssetLoader::new(&config.assets, &config.media)?;
        Ok(Engine {
            config,
            gpu,
            fonts,
            assets,
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn parse_options(&self) -> ParseOptions {
        scene_parse_options(&self.config)
    }

    /// Parses a scenario (v1.3 or v2.0); warnings are logged and kept in the scene.
    pub fn parse_scene(&self, json: &[u8]) -> Result<Scene, EngineError> {
        let scene = parse_scenario(json, &self.parse_options())?;
        for w in &scene.warnings {
            tracing::warn!("scenario: {w}");
        }
        Ok(scene)
    }

    pub fn load_scene(&self, path: &Path) -> Result<Scene, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::ReadScenario {
            path: path.to_path_buf(),
            source,
        })?;
        self.parse_scene(&bytes)
    }

    /// The composer for one job: the scene's assets are read and decoded here, once.
    fn composer(&self, scene: Arc<Scene>) -> Result<Composer, EngineError> {
        let media = Arc::new(self.assets.load(&scene)?);
        Ok(Composer::new(scene, self.fonts.engine(), self.config.compose).with_media(media))
    }

    /// Renders `scene` over the input video into `req.format` (MP4, MOV or WebM).
    pub fn render(
        &self,
        scene: Arc<Scene>,
        req: &RenderRequest,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<RenderReport, EngineError> {
        self.config.output_limits.check(&req.options)?;
        let info = pipeline::probe(&req.input)?;
        let (out_w, out_h) = output_size(&req.options, info.width, info.height);
        self.config.output_limits.check(&OutputRequest {
            width: Some(out_w),
            height: Some(out_h),
            ..req.options
        })?;
        let input_color = ColorSpec {
            matrix: if info.color_matrix_bt709 || info.height >= 720 {
                Matrix::Bt709
            } else {
                Matrix::Bt601
            },
            full_range: info.full_range,
        };
        let stage = GpuStage::new(
            Arc::clone(&self.gpu),
            self.composer(scene)?,
            (info.width, info.height),
            input_color,
            (out_w, out_h),
            self.config.render.frames_in_flight,
        )?;
        let spec = RenderJobSpec {
            input: req.input.clone(),
            output: req.output.clone(),
            container: req.format,
            fps: req.options.fps.map(|f| ffmpeg::Rational::new(f as i32, 1)),
            quality: req.options.quality.unwrap_or(self.config.render.quality),
            encoder: req.encoder.unwrap_or(self.config.render.encoder),
            x264_preset: self.config.render.x264_preset.clone(),
        };
        Ok(pipeline::render_file(
            &spec,
            Box::new(stage),
            progress,
            cancel,
        )?)
    }

    /// One composited frame at `at` seconds, over the input's frame at that time or a solid
    /// background, as RGBA.
    pub fn frame(
        &self,
        scene: Arc<Scene>,
        at: f64,
        input: Option<&Path>,
        size: (Option<u32>, Option<u32>),
        background: Color,
    ) -> Result<RgbaImage, EngineError> {
        let source = match input {
            Some(path) => Some(pipeline::decode_frame_at(path, at)?),
            None => None,
        };
        let (src_w, src_h) = match &source {
            Some(f) => (f.width(), f.height()),
            None => {
                let aspect = scene.stage.base_aspect.ratio();
                let h = size.1.unwrap_or(720);
                (
                    size.0.unwrap_or(((h as f64 * aspect).round() as u32) & !1),
                    h,
                )
            }
        };
        let req = OutputRequest {
            width: size.0,
            height: size.1,
            fps: None,
            quality: None,
        };
        let (out_w, out_h) = output_size(&req, src_w, src_h);
        let mut composer = self.composer(scene)?;
        let video_rect = fit_rect((src_w, src_h), (out_w, out_h));
        let list = composer.compose(at, video_rect);
        let input = source
            .as_ref()
            .map(|frame| ((src_w, src_h), frame_color(frame)));
        let spec = compositor_spec(input, (out_w, out_h), video_rect, background, 1);
        let mut compositor = Compositor::new(Arc::clone(&self.gpu), spec)?;
        let image = match &source {
            Some(frame) => {
                let yuv = Converter::default()
                    .convert(frame)
                    .map_err(RenderError::Stage)?;
                compositor.render_rgba(Some(input_frame(&yuv)), &list)?
            }
            None => compositor.render_rgba(None, &list)?,
        };
        Ok(image)
    }
}

/// Output size: requested, else the source's; a single given side keeps the source aspect.
fn output_size(req: &OutputRequest, src_w: u32, src_h: u32) -> (u32, u32) {
    let even = |v: f64| ((v.round() as u32) & !1).max(2);
    match (req.width, req.height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, even(w as f64 * src_h as f64 / src_w.max(1) as f64)),
        (None, Some(h)) => (even(h as f64 * src_w as f64 / src_h.max(1) as f64), h),
        (None, None) => (src_w & !1, src_h & !1),
    }
}

/// Where the source picture lands in the output (SPEC §1.2 letterbox / pillarbox): the stage.
pub fn fit_rect((sw, sh): (u32, u32), (ow, oh): (u32, u32)) -> [f32; 4] {
    let va = sw as f64 / sh.max(1) as f64;
    let (cw, ch) = (ow as f64, oh as f64);
    if cw / ch > va + 1e-9 {
        let w = (ch * va).round();
        [((cw - w) / 2.0).round() as f32, 0.0, w as f32, ch as f32]
    } else {
        let h = (cw / va).round();
        [0.0, ((ch - h) / 2.0).round() as f32, cw as f32, h as f32]
    }
}

/// The colour description of a decoded frame; unspecified matrices follow the usual default
/// (BT.709 for HD, BT.601 below), and yuvj formats are full range.
fn frame_color(frame: &ffmpeg::frame::Video) -> ColorSpec {
    use ffmpeg::color::{Range, Space};
    let matrix = match frame.color_space() {
        Space::BT709 => Matrix::Bt709,
        Space::BT470BG | Space::SMPTE170M => Matrix::Bt601,
        _ if frame.height() >= 720 => Matrix::Bt709,
        _ => Matrix::Bt601,
    };
    let full_range = frame.color_range() == Range::JPEG || frame.format() == Pixel::YUVJ420P;
    ColorSpec { matrix, full_range }
}

/// The compositor for a yuv420p source of `input` (size, colour) — or none — landing in
/// `video_rect` of an `out`-sized frame, output in the usual colour description for its height.
fn compositor_spec(
    input: Option<((u32, u32), ColorSpec)>,
    out: (u32, u32),
    video_rect: [f32; 4],
    background: Color,
    frames_in_flight: usize,
) -> CompositorSpec {
    CompositorSpec {
        input: input.map(|((width, height), color)| InputSpec {
            width,
            height,
            layout: PlaneLayout::Yuv420p,
            color,
        }),
        output_width: out.0,
        output_height: out.1,
        output_color: output_color(out.1),
        video_rect,
        background,
        frames_in_flight,
    }
}

fn output_color(height: u32) -> ColorSpec {
    ColorSpec {
        matrix: if height >= 720 {
            Matrix::Bt709
        } else {
            Matrix::Bt601
        },
        full_range: false,
    }
}

fn input_frame(frame: &ffmpeg::frame::Video) -> InputFrame<'_> {
    InputFrame {
        planes: [frame.data(0), frame.data(1), frame.data(2)],
        strides: [frame.stride(0), frame.stride(1), frame.stride(2)],
    }
}

/// Frames the GPU reads directly are yuv420p (and its full-range twin); anything else is
/// converted by swscale (the one CPU pixel step, only for such sources).
#[derive(Default)]
struct Converter(Option<SendScaler>);

/// `scaling::Context` holds a raw `SwsContext` pointer and so is not `Send`.
struct SendScaler(scaling::Context);

// SAFETY: an SwsContext has no thread affinity; libswscale only forbids concurrent use of one
// context. `SendScaler` is owned by exactly one `Converter`, used through `&mut self`, so it is
// never used from two threads at once — moving it to the stage thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for SendScaler {}

impl Converter {
    fn convert<'a>(
        &mut self,
        frame: &'a ffmpeg::frame::Video,
    ) -> Result<std::borrow::Cow<'a, ffmpeg::frame::Video>, StageError> {
        if matches!(frame.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
            return Ok(std::borrow::Cow::Borrowed(frame));
        }
        let stale = self.0.as_ref().is_some_and(|s| {
            let i = s.0.input();
            (i.format, i.width, i.height) != (frame.format(), frame.width(), frame.height())
        });
        if stale || self.0.is_none() {
            let ctx = scaling::Context::get(
                frame.format(),
                frame.width(),
                frame.height(),
                Pixel::YUV420P,
                frame.width(),
                frame.height(),
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| {
                StageError(format!(
                    "cannot convert {:?} frames to yuv420p: {e}",
                    frame.format()
                ))
            })?;
            self.0 = Some(SendScaler(ctx));
        }
        let scaler = self
            .0
            .as_mut()
            .map(|s| &mut s.0)
            .ok_or_else(|| StageError("no scaler".into()))?;
        let mut out = ffmpeg::frame::Video::empty();
        scaler
            .run(frame, &mut out)
            .map_err(|e| StageError(format!("pixel format conversion failed: {e}")))?;
        Ok(std::borrow::Cow::Owned(out))
    }
}

/// The GPU step of the pipeline: compose the captions for each frame's time, upload, composite,
/// convert to yuv420p and read back, with `frames_in_flight` frames overlapping.
struct GpuStage {
    compositor: Compositor,
    /// Until the pipeline takes it to compose on its own thread ([`ComposeAhead`]).
    composer: Option<Composer>,
    video_rect: [f32; 4],
    out: (u32, u32),
    in_flight: usize,
    pending: VecDeque<Ticket>,
    converter: Converter,
}

impl GpuStage {
    fn new(
        gpu: Arc<Gpu>,
        composer: Composer,
        src: (u32, u32),
        input_color: ColorSpec,
        out: (u32, u32),
        in_flight: usize,
    ) -> Result<Self, EngineError> {
        let video_rect = fit_rect(src, out);
        let spec = compositor_spec(
            Some((src, input_color)),
            out,
            video_rect,
            Color::BLACK,
            in_flight.max(1),
        );
        let compositor = Compositor::new(gpu, spec)?;
        Ok(GpuStage {
            compositor,
            composer: Some(composer),
            video_rect,
            out,
            in_flight: in_flight.max(1),
            pending: VecDeque::new(),
            converter: Converter::default(),
        })
    }

    fn collect_oldest(&mut self) -> Result<Option<ffmpeg::frame::Video>, StageError> {
        let Some(ticket) = self.pending.pop_front() else {
            return Ok(None);
        };
        let mut frame = ffmpeg::frame::Video::new(Pixel::YUV420P, self.out.0, self.out.1);
        let strides = [frame.stride(0), frame.stride(1), frame.stride(2)];
        let [y, u, v] = yuv420p_planes_mut(&mut frame);
        let mut out = YuvOut {
            planes: [y, u, v],
            strides,
        };
        self.compositor
            .collect(ticket, &mut out)
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Some(frame))
    }
}

/// The three planes of a yuv420p frame as disjoint mutable slices (ffmpeg-next lends one plane
/// per `&mut` borrow; the GPU read-back writes all three in one call).
fn yuv420p_planes_mut(frame: &mut ffmpeg::frame::Video) -> [&mut [u8]; 3] {
    let plane = |f: &mut ffmpeg::frame::Video, i: usize| {
        let data = f.data_mut(i);
        (data.as_mut_ptr(), data.len())
    };
    let (p0, p1, p2) = (plane(frame, 0), plane(frame, 1), plane(frame, 2));
    // SAFETY: `frame` was allocated by av_frame_get_buffer for yuv420p: planes 0, 1 and 2 are
    // separate, non-overlapping regions of its buffers, each `len` bytes long as reported by
    // ffmpeg-next's `data_mut`. The returned slices borrow `frame` mutably for their lifetime,
    // so nothing else can reach those buffers (or free them) while they are alive.
    #[allow(unsafe_code)]
    unsafe {
        [
            std::slice::from_raw_parts_mut(p0.0, p0.1),
            std::slice::from_raw_parts_mut(p1.0, p1.1),
            std::slice::from_raw_parts_mut(p2.0, p2.1),
        ]
    }
}

/// The caption composer on the pipeline's preparation thread: display lists are built (glyphs
/// rasterised, plugins evaluated) ahead of the GPU work.
struct ComposeAhead {
    composer: Composer,
    video_rect: [f32; 4],
}

impl FramePrep for ComposeAhead {
    fn prepare(&mut self, t: f64) -> Prepared {
        Box::new(self.composer.compose(t, self.video_rect))
    }
}

impl FrameStage for GpuStage {
    fn output_format(&self) -> OutputFormat {
        OutputFormat {
            width: self.out.0,
            height: self.out.1,
            pixel: Pixel::YUV420P,
        }
    }

    fn take_prep(&mut self) -> Option<Box<dyn FramePrep>> {
        let composer = self.composer.take()?;
        Some(Box::new(ComposeAhead {
            composer,
            video_rect: self.video_rect,
        }))
    }

    fn push(
        &mut self,
        frame: &ffmpeg::frame::Video,
        t: f64,
        prepared: Option<Prepared>,
    ) -> Result<Vec<ffmpeg::frame::Video>, StageError> {
        let list = match (prepared, self.composer.as_mut()) {
            (Some(p), _) => *p.downcast::<DisplayList>().map_err(|_| {
                StageError("internal error: the composer thread sent something else".into())
            })?,
            (None, Some(composer)) => composer.compose(t, self.video_rect),
            (None, None) => {
                return Err(StageError(
                    "internal error: no display list for a frame (the composer was handed out)"
                        .into(),
                ))
            }
        };
        let source = self.converter.convert(frame)?;
        let mut done = Vec::new();
        if self.pending.len() >= self.in_flight {
            done.extend(self.collect_oldest()?);
        }
        let ticket = self
            .compositor
            .submit(Some(input_frame(&source)), &list)
            .map_err(|e| StageError(e.to_string()))?;
        self.pending.push_back(ticket);
        Ok(done)
    }

    fn finish(&mut self) -> Result<Vec<ffmpeg::frame::Video>, StageError> {
        let mut done = Vec::new();
        while let Some(f) = self.collect_oldest()? {
            done.push(f);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_rect_letterboxes_and_pillarboxes() {
        assert_eq!(
            fit_rect((1920, 1080), (1280, 720)),
            [0.0, 0.0, 1280.0, 720.0]
        );
        assert_eq!(
            fit_rect((1080, 1920), (1920, 1080)),
            [656.0, 0.0, 608.0, 1080.0]
        );
        assert_eq!(
            fit_rect((1920, 1080), (1080, 1080)),
            [0.0, 236.0, 1080.0, 608.0]
        );
    }

    #[test]
    fn output_size_keeps_aspect_for_one_side() {
        let req = |w, h| OutputRequest {
            width: w,
            height: h,
            fps: None,
            quality: None,
        };
        assert_eq!(output_size(&req(None, None), 1920, 1080), (1920, 1080));
        assert_eq!(output_size(&req(Some(1280), None), 1920, 1080), (1280, 720));
        assert_eq!(output_size(&req(None, Some(360)), 1920, 1080), (640, 360));
    }
}
