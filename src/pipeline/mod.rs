//! Media pipeline: decode → [`FrameStage`] (the GPU step) → encode (NVENC / x264) + audio → MP4.
//!
//! [`render_file`] is blocking and runs three OS threads joined by bounded channels: the decoder
//! (demux, decode, frame-rate resampling), the stage, and the encoder + muxer (which also pulls the
//! audio). Callers on an async runtime run it on a blocking thread.

mod audio;
mod decode;
mod encoder;
mod error;
mod mux;
mod probe;
mod resample;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;

pub use encoder::{
    nvenc_available, open_encoder, quality_to_cq, quality_to_crf, select_encoder, EncoderChoice,
    EncoderSettings, Nvenc, VideoEncoder, X264, X264_PRESETS,
};
pub use error::{EncoderInitError, EncoderKind, MediaError, RenderError, StageError};
pub use probe::{probe, MediaInfo};

use crate::progress::{CancelToken, Progress, ProgressSink, RenderStage};

/// Frames the stage produces; the encoder is opened with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormat {
    pub width: u32,
    pub height: u32,
    /// YUV420P: what both H.264 encoders take.
    pub pixel: ffmpeg::format::Pixel,
}

/// The GPU step, seen from the pipeline: frames in, frames out, possibly delayed (pipelined).
pub trait FrameStage: Send {
    /// Output pixel format/size the stage produces (the encoder is opened with it).
    fn output_format(&self) -> OutputFormat;
    /// Feeds one decoded frame (as decoded: any format/size) at media time `t` seconds.
    /// Returns zero or more finished frames, in order (a stage with N frames in flight returns
    /// the frame submitted N calls earlier).
    fn push(
        &mut self,
        frame: &ffmpeg::frame::Video,
        t: f64,
    ) -> Result<Vec<ffmpeg::frame::Video>, StageError>;
    /// Returns the frames still in flight, in order.
    fn finish(&mut self) -> Result<Vec<ffmpeg::frame::Video>, StageError>;
}

/// One render: input file, output MP4 and encoding options.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJobSpec {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Output frame rate; `None` keeps the source's.
    pub fps: Option<ffmpeg::Rational>,
    /// 10..=100; CQ/CRF = 51 − quality × 0.51.
    pub quality: u8,
    pub encoder: EncoderChoice,
    /// libx264 preset, one of [`X264_PRESETS`].
    pub x264_preset: String,
}

impl RenderJobSpec {
    /// Source frame rate, quality 90, automatic encoder, x264 preset "veryfast".
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            fps: None,
            quality: 90,
            encoder: EncoderChoice::Auto,
            x264_preset: "veryfast".into(),
        }
    }

    fn validate(&self) -> Result<(), RenderError> {
        if !(10..=100).contains(&self.quality) {
            return Err(RenderError::Options(format!(
                "quality {} is outside 10..=100",
                self.quality
            )));
        }
        if let Some(fps) = self.fps {
            let value = if fps.denominator() > 0 && fps.numerator() > 0 {
                f64::from(fps)
            } else {
                0.0
            };
            if !(1.0..=240.0).contains(&value) {
                return Err(RenderError::Options(format!(
                    "frame rate {fps} is outside 1..=240 fps"
                )));
            }
        }
        if !X264_PRESETS.contains(&self.x264_preset.as_str()) {
            return Err(RenderError::Options(format!(
                "unknown x264 preset {:?}",
                self.x264_preset
            )));
        }
        Ok(())
    }
}

/// Busy seconds per pipeline step (time not spent waiting on a channel).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub decode_s: f64,
    pub stage_s: f64,
    pub encode_s: f64,
    pub mux_s: f64,
}

/// What a finished render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderReport {
    pub frames: u64,
    pub duration_s: f64,
    pub encoder: EncoderKind,
    pub wall_s: f64,
    /// Frames per second of wall time.
    pub fps: f64,
    pub stage_seconds: StageTimes,
}

/// Cancellation as the threads see it: the caller's token, or a sibling thread's failure.
pub(crate) struct Stop<'a> {
    user: &'a CancelToken,
    abort: CancelToken,
}

impl Stop<'_> {
    pub(crate) fn check(&self) -> Result<(), RenderError> {
        if self.user.is_cancelled() || self.abort.is_cancelled() {
            Err(RenderError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn abort(&self) {
        self.abort.cancel();
    }
}

/// The output while it is being written; removed unless kept.
struct TempOutput {
    path: PathBuf,
    keep: bool,
}

impl TempOutput {
    fn next_to(output: &Path) -> Result<Self, RenderError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let meta = std::fs::metadata(&dir).map_err(|e| {
            RenderError::io(format!("output folder {} is not usable", dir.display()), e)
        })?;
        if !meta.is_dir() {
            return Err(RenderError::io(
                format!("output folder {} is not usable", dir.display()),
                std::io::Error::other("not a directory"),
            ));
        }
        let name = output.file_name().ok_or_else(|| {
            RenderError::Options(format!("output {} has no file name", output.display()))
        })?;
        let tmp_name = format!(
            ".{}.{}-{}.renderd-tmp",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Self {
            path: dir.join(tmp_name),
            keep: false,
        })
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.keep {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), %e, "cannot remove temporary output")
                }
            }
        }
    }
}

fn run_stage(
    mut stage: Box<dyn FrameStage>,
    rx: &crossbeam_channel::Receiver<decode::StageInput>,
    tx: &crossbeam_channel::Sender<ffmpeg::frame::Video>,
    stop: &Stop<'_>,
) -> Result<Duration, RenderError> {
    let mut busy = Duration::ZERO;
    let send_all = |frames: Vec<ffmpeg::frame::Video>| {
        frames
            .into_iter()
            .try_for_each(|f| tx.send(f).map_err(|_| RenderError::Cancelled))
    };
    for input in rx.iter() {
        stop.check()?;
        let started = Instant::now();
        let out = stage.push(&input.frame, input.t)?;
        busy += started.elapsed();
        send_all(out)?;
    }
    stop.check()?;
    let started = Instant::now();
    let out = stage.finish()?;
    busy += started.elapsed();
    send_all(out)?;
    Ok(busy)
}

fn thread_panicked(which: &str) -> RenderError {
    RenderError::ffmpeg(
        format!("running the {which} thread (it panicked)"),
        ffmpeg::Error::Bug,
    )
}

fn join_thread<T>(
    handle: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T, RenderError>>>,
    which: &str,
    stop: &Stop<'_>,
) -> Result<T, RenderError> {
    match handle {
        Ok(h) => h.join().unwrap_or_else(|_| {
            stop.abort();
            Err(thread_panicked(which))
        }),
        Err(e) => {
            stop.abort();
            Err(RenderError::io(format!("starting the {which} thread"), e))
        }
    }
}

/// Picks the error that explains a failed render: a real failure beats the `Cancelled` that the
/// other threads return when they are stopped because of it.
fn first_real_error(errors: Vec<RenderError>) -> Option<RenderError> {
    let mut cancelled = None;
    for err in errors {
        match err {
            RenderError::Cancelled => cancelled = Some(err),
            other => return Some(other),
        }
    }
    cancelled
}

/// Decode → stage → encode + audio → MP4 at `spec.output`, written to a temporary name in the same
/// folder and renamed at the end; on error or cancel the temporary file is removed.
pub fn render_file(
    spec: &RenderJobSpec,
    stage: Box<dyn FrameStage>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<RenderReport, RenderError> {
    let started = Instant::now();
    spec.validate()?;
    progress.report(&Progress {
        stage: RenderStage::Probing,
        frames_done: 0,
        frames_total: 0,
        fps: 0.0,
    });
    let (info, start_s) = probe::probe_with_start(&spec.input)?;
    let out_fps = spec.fps.unwrap_or(info.fps).reduce();
    let encoder = select_encoder(spec.encoder)?;
    let format = stage.output_format();
    if format.pixel != ffmpeg::format::Pixel::YUV420P {
        return Err(StageError(format!(
            "stage declares {:?} output; the encoders take YUV420P",
            format.pixel
        ))
        .into());
    }
    let mut temp = TempOutput::next_to(&spec.output)?;
    let frames_total_estimate = (info.duration_s * f64::from(out_fps)).round().max(0.0) as u64;
    tracing::info!(
        input = %spec.input.display(),
        width = info.width, height = info.height, fps = %out_fps,
        frames = frames_total_estimate, ?encoder, "render starts"
    );
    let job = mux::MuxJob {
        input: &spec.input,
        temp_output: &temp.path,
        encoder,
        allow_fallback: spec.encoder == EncoderChoice::Auto,
        settings: EncoderSettings {
            width: format.width,
            height: format.height,
            fps: out_fps,
            quality: spec.quality,
            x264_preset: spec.x264_preset.clone(),
            global_header: false,
        },
        format,
        start_s,
        frames_total_estimate,
        progress,
    };
    let stop = Stop {
        user: cancel,
        abort: CancelToken::new(),
    };
    let (decoded_tx, decoded_rx) = crossbeam_channel::bounded(8);
    let (staged_tx, staged_rx) = crossbeam_channel::bounded(8);
    let (decoded, staged, muxed) = std::thread::scope(|scope| {
        let stop = &stop;
        let input = spec.input.as_path();
        let decoder = std::thread::Builder::new()
            .name("renderd-decode".into())
            .spawn_scoped(scope, move || {
                let result = decode::run_decoder(input, out_fps, start_s, &decoded_tx, stop);
                if result.is_err() {
                    stop.abort();
                }
                drop(decoded_tx);
                result
            });
        let stager = std::thread::Builder::new()
            .name("renderd-stage".into())
            .spawn_scoped(scope, move || {
                let result = run_stage(stage, &decoded_rx, &staged_tx, stop);
                if result.is_err() {
                    stop.abort();
                }
                drop(staged_tx);
                result
            });
        let muxer = std::thread::Builder::new()
            .name("renderd-encode".into())
            .spawn_scoped(scope, move || {
                let result = mux::run_muxer(job, &staged_rx, stop);
                if result.is_err() {
                    stop.abort();
                }
                drop(staged_rx);
                result
            });
        (
            join_thread(decoder, "decoder", stop),
            join_thread(stager, "stage", stop),
            join_thread(muxer, "encoder", stop),
        )
    });
    let (decoded, staged, muxed) = match (decoded, staged, muxed) {
        (Ok(d), Ok(s), Ok(m)) => (d, s, m),
        (d, s, m) => {
            let errors = [d.err(), s.err(), m.err()].into_iter().flatten().collect();
            let err = first_real_error(errors).unwrap_or(RenderError::Cancelled);
            tracing::info!(error = %err, "render failed");
            return Err(err);
        }
    };
    if cancel.is_cancelled() {
        return Err(RenderError::Cancelled);
    }
    std::fs::rename(&temp.path, &spec.output).map_err(|e| {
        RenderError::io(
            format!("moving the finished render to {}", spec.output.display()),
            e,
        )
    })?;
    temp.keep = true;
    let wall_s = started.elapsed().as_secs_f64();
    let fps = f64::from(out_fps);
    let report = RenderReport {
        frames: muxed.frames,
        duration_s: muxed.frames as f64 / fps,
        encoder: muxed.encoder,
        wall_s,
        fps: muxed.frames as f64 / wall_s.max(1e-6),
        stage_seconds: StageTimes {
            decode_s: decoded.busy.as_secs_f64(),
            stage_s: staged.as_secs_f64(),
            encode_s: muxed.encode_busy.as_secs_f64(),
            mux_s: muxed.mux_busy.as_secs_f64(),
        },
    };
    progress.report(&Progress {
        stage: RenderStage::Finalizing,
        frames_done: report.frames,
        frames_total: report.frames,
        fps: report.fps,
    });
    tracing::info!(
        frames = report.frames, source_frames = decoded.source_frames,
        wall_s = report.wall_s, encoder = %report.encoder, "render finished"
    );
    Ok(report)
}
