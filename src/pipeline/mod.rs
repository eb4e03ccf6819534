//! Media pipeline: decode → [`FrameStage`] (the GPU step) → encode + audio → the output file:
//! H.264 (NVENC / x264) + AAC in MP4 or MOV, VP9 + Opus in WebM.
//!
//! [`render_file`] is blocking and runs OS threads joined by bounded channels: the decoder
//! (demux, decode, frame-rate resampling), the stage's preparer when it has one (the caption
//! composer, running ahead of the GPU), the stage, and the encoder + muxer (which also pulls the
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

pub use decode::decode_frame_at;
pub use encoder::{
    choice_conflict, nvenc_available, open_encoder, quality_to_cq, quality_to_crf,
    quality_to_vp9_crf, select_encoder, EncoderChoice, EncoderSettings, Nvenc, VideoEncoder, Vp9,
    X264, X264_PRESETS,
};
pub use error::{EncoderInitError, EncoderKind, MediaError, RenderError, StageError};
pub use probe::{probe, MediaInfo};

use crate::domain::job::OutputFormat as Container;
use crate::progress::{CancelToken, Progress, ProgressSink, RenderStage};

/// Frames the stage produces; the encoder is opened with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormat {
    pub width: u32,
    pub height: u32,
    /// YUV420P: what both H.264 encoders take.
    pub pixel: ffmpeg::format::Pixel,
}

/// How many frames the stage's preparation (the caption composer) may run ahead of the stage:
/// enough to absorb the burst of glyph rasterisation when a caption appears. Each holds a decoded
/// frame (3 MB at 1080p); 48 measured no faster than 16 on an H200 (scripts/device-check).
const PREPARE_AHEAD: usize = 16;

/// What a [`FramePrep`] made for one frame time, handed back to its stage's [`FrameStage::push`].
pub type Prepared = Box<dyn std::any::Any + Send>;

/// Per-frame work that depends only on the frame's time (composing the captions): the pipeline
/// runs it on a thread of its own, ahead of the stage, so a burst of it (glyphs rasterised when
/// a caption first appears) overlaps the GPU work and the encoder instead of stalling them.
pub trait FramePrep: Send {
    fn prepare(&mut self, t: f64) -> Prepared;
}

/// The GPU step, seen from the pipeline: frames in, frames out, possibly delayed (pipelined).
pub trait FrameStage: Send {
    /// Output pixel format/size the stage produces (the encoder is opened with it).
    fn output_format(&self) -> OutputFormat;
    /// Hands out the stage's per-frame preparation, once, to run on its own thread; `push` then
    /// receives its results. `None` (the default): `push` gets `None`.
    fn take_prep(&mut self) -> Option<Box<dyn FramePrep>> {
        None
    }
    /// Feeds one decoded frame (as decoded: any format/size) at media time `t` seconds, with
    /// what the stage's [`FramePrep`] made for `t` if it handed one out.
    /// Returns zero or more finished frames, in order (a stage with N frames in flight returns
    /// the frame submitted N calls earlier).
    fn push(
        &mut self,
        frame: &ffmpeg::frame::Video,
        t: f64,
        prepared: Option<Prepared>,
    ) -> Result<Vec<ffmpeg::frame::Video>, StageError>;
    /// Returns the frames still in flight, in order.
    fn finish(&mut self) -> Result<Vec<ffmpeg::frame::Video>, StageError>;
}

/// One render: input file, output file and its container, and encoding options.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJobSpec {
    pub input: PathBuf,
    pub output: PathBuf,
    /// mp4 / mov (H.264 + AAC) or webm (VP9 + Opus); the output's name is the caller's.
    pub container: Container,
    /// Output frame rate; `None` keeps the source's.
    pub fps: Option<ffmpeg::Rational>,
    /// 10..=100; H.264 CQ/CRF = 51 − quality × 0.51, VP9 CRF = 63 − quality × 0.63.
    pub quality: u8,
    pub encoder: EncoderChoice,
    /// libx264 preset, one of [`X264_PRESETS`].
    pub x264_preset: String,
}

impl RenderJobSpec {
    /// MP4, source frame rate, quality 90, automatic encoder, x264 preset "veryfast".
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            container: Container::Mp4,
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
        if let Some(conflict) = choice_conflict(self.encoder, self.container) {
            return Err(RenderError::Options(conflict));
        }
        Ok(())
    }
}

/// Busy seconds per pipeline step (time not spent waiting on a channel).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub decode_s: f64,
    /// The stage's preparation thread (composing the captions); 0 without one.
    pub prepare_s: f64,
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

/// The preparation thread: runs `prep` for each frame's time as frames arrive from the decoder
/// and passes the frames on with the result.
fn run_prep(
    mut prep: Box<dyn FramePrep>,
    rx: &crossbeam_channel::Receiver<decode::StageInput>,
    tx: &crossbeam_channel::Sender<decode::StageInput>,
    stop: &Stop<'_>,
) -> Result<Duration, RenderError> {
    let mut busy = Duration::ZERO;
    for mut input in rx.iter() {
        stop.check()?;
        let started = Instant::now();
        input.prepared = Some(prep.prepare(input.t));
        busy += started.elapsed();
        tx.send(input).map_err(|_| RenderError::Cancelled)?;
    }
    Ok(busy)
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
        let out = stage.push(&input.frame, input.t, input.prepared)?;
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

/// A render thread panicked: a defect in renderd, reported with the panic's message (which
/// the default hook has also printed) instead of taking the process down.
fn thread_panicked(which: &str, payload: &(dyn std::any::Any + Send)) -> RenderError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    RenderError::Stage(StageError(format!(
        "internal error in the {which} thread: {message}"
    )))
}

fn join_thread<T>(
    handle: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T, RenderError>>>,
    which: &str,
    stop: &Stop<'_>,
) -> Result<T, RenderError> {
    match handle {
        Ok(h) => h.join().unwrap_or_else(|payload| {
            stop.abort();
            Err(thread_panicked(which, payload.as_ref()))
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

/// Decode → stage → encode + audio → `spec.container` at `spec.output`, written to a temporary name in the same
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
        encoder: None,
    });
    let (info, start_s) = probe::probe_with_start(&spec.input)?;
    let out_fps = spec.fps.unwrap_or(info.fps).reduce();
    let encoder = select_encoder(spec.encoder, spec.container)?;
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
        frames = frames_total_estimate, ?encoder, container = %spec.container, "render starts"
    );
    let job = mux::MuxJob {
        input: &spec.input,
        temp_output: &temp.path,
        container: spec.container,
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
    let (prepared_tx, prepared_rx) = crossbeam_channel::bounded(PREPARE_AHEAD);
    let (staged_tx, staged_rx) = crossbeam_channel::bounded(8);
    let mut stage = stage;
    let prep = stage.take_prep();
    let (decoded, prepared, staged, muxed) = std::thread::scope(|scope| {
        let stop = &stop;
        let input = spec.input.as_path();
        // Without a preparer the stage reads the decoder's channel directly.
        let (stage_rx, preparer) = match prep {
            Some(prep) => {
                let rx = decoded_rx.clone();
                let handle = std::thread::Builder::new()
                    .name("renderd-prepare".into())
                    .spawn_scoped(scope, move || {
                        let result = run_prep(prep, &rx, &prepared_tx, stop);
                        if result.is_err() {
                            stop.abort();
                        }
                        drop(prepared_tx);
                        result
                    });
                (prepared_rx, Some(handle))
            }
            None => {
                drop(prepared_tx);
                (decoded_rx.clone(), None)
            }
        };
        drop(decoded_rx);
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
                let result = run_stage(stage, &stage_rx, &staged_tx, stop);
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
            match preparer {
                Some(handle) => join_thread(handle, "prepare", stop),
                None => Ok(Duration::ZERO),
            },
            join_thread(stager, "stage", stop),
            join_thread(muxer, "encoder", stop),
        )
    });
    let (decoded, prepared, staged, muxed) = match (decoded, prepared, staged, muxed) {
        (Ok(d), Ok(p), Ok(s), Ok(m)) => (d, p, s, m),
        (d, p, s, m) => {
            let errors = [d.err(), p.err(), s.err(), m.err()]
                .into_iter()
                .flatten()
                .collect();
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
            prepare_s: prepared.as_secs_f64(),
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
        encoder: Some(report.encoder),
    });
    tracing::info!(
        frames = report.frames, source_frames = decoded.source_frames,
        wall_s = report.wall_s, encoder = %report.encoder, "render finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::process::Command;
    use std::sync::Mutex;

    use ffmpeg::format::Pixel;
    use ffmpeg::software::scaling;

    /// Converts to yuv420p at a fixed size with swscale; keeps `delay` frames in flight.
    struct ScaleStage {
        width: u32,
        height: u32,
        delay: usize,
        in_flight: VecDeque<ffmpeg::frame::Video>,
        pushed: u64,
        cancel_after: Option<(u64, CancelToken)>,
        /// Declares a size other than the one produced (to test the check).
        declared: Option<(u32, u32)>,
        times: std::sync::Arc<Mutex<Vec<f64>>>,
        /// Hands out a preparer that returns each frame's time; push records what it got.
        prep: Option<Box<dyn FramePrep>>,
        prepared: std::sync::Arc<Mutex<Vec<f64>>>,
    }

    struct TimePrep;

    impl FramePrep for TimePrep {
        fn prepare(&mut self, t: f64) -> Prepared {
            Box::new(t)
        }
    }

    impl ScaleStage {
        fn new(width: u32, height: u32, delay: usize) -> Self {
            Self {
                width,
                height,
                delay,
                in_flight: VecDeque::new(),
                pushed: 0,
                cancel_after: None,
                declared: None,
                times: Default::default(),
                prep: None,
                prepared: Default::default(),
            }
        }

        fn with_prep(mut self) -> Self {
            self.prep = Some(Box::new(TimePrep));
            self
        }
    }

    impl FrameStage for ScaleStage {
        fn output_format(&self) -> OutputFormat {
            let (width, height) = self.declared.unwrap_or((self.width, self.height));
            OutputFormat {
                width,
                height,
                pixel: Pixel::YUV420P,
            }
        }

        fn take_prep(&mut self) -> Option<Box<dyn FramePrep>> {
            self.prep.take()
        }

        fn push(
            &mut self,
            frame: &ffmpeg::frame::Video,
            t: f64,
            prepared: Option<Prepared>,
        ) -> Result<Vec<ffmpeg::frame::Video>, StageError> {
            if let Some(p) = prepared {
                let p = p
                    .downcast::<f64>()
                    .map_err(|_| StageError("prepared value of the wrong type".into()))?;
                self.prepared
                    .lock()
                    .map_err(|_| StageError("poisoned".into()))?
                    .push(*p);
            }
            let mut scaler = scaling::Context::get(
                frame.format(),
                frame.width(),
                frame.height(),
                Pixel::YUV420P,
                self.width,
                self.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| StageError(format!("swscale: {e}")))?;
            let mut out = ffmpeg::frame::Video::new(Pixel::YUV420P, self.width, self.height);
            scaler
                .run(frame, &mut out)
                .map_err(|e| StageError(format!("swscale run: {e}")))?;
            self.pushed += 1;
            self.times
                .lock()
                .map_err(|_| StageError("poisoned".into()))?
                .push(t);
            if let Some((after, token)) = &self.cancel_after {
                if self.pushed >= *after {
                    token.cancel();
                }
            }
            self.in_flight.push_back(out);
            let mut ready = Vec::new();
            while self.in_flight.len() > self.delay {
                ready.extend(self.in_flight.pop_front());
            }
            Ok(ready)
        }

        fn finish(&mut self) -> Result<Vec<ffmpeg::frame::Video>, StageError> {
            Ok(self.in_flight.drain(..).collect())
        }
    }

    fn ffmpeg_cli(args: &[&str]) {
        let status = Command::new("ffmpeg")
            .args(["-y", "-hide_banner", "-loglevel", "error"])
            .args(args)
            .status()
            .expect("ffmpeg CLI runs");
        assert!(status.success(), "ffmpeg {args:?} failed");
    }

    fn make_clip(path: &Path, audio: Option<&str>) {
        let p = path.to_str().expect("utf-8 temp path");
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=2",
        ];
        if audio.is_some() {
            args.extend([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=2:sample_rate=44100",
            ]);
        }
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
        if let Some(codec) = audio {
            args.extend(["-c:a", codec]);
        }
        args.push(p);
        ffmpeg_cli(&args);
    }

    struct Probed {
        /// The container as ffprobe names it (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`).
        container: String,
        video_codec: String,
        pix_fmt: String,
        frames: u64,
        duration: f64,
        audio_codec: Option<String>,
        audio_duration: Option<f64>,
        color_primaries: String,
        color_space: String,
    }

    fn ffprobe(path: &Path) -> Probed {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-show_entries"])
            .args([
                "stream=codec_type,codec_name,pix_fmt,nb_read_frames,duration,color_primaries,color_space:format=format_name",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
            .expect("ffprobe runs");
        assert!(out.status.success(), "ffprobe failed on {}", path.display());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
        let streams = json["streams"].as_array().expect("streams").clone();
        let video = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("video stream");
        let audio = streams.iter().find(|s| s["codec_type"] == "audio");
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        Probed {
            container: text(&json["format"]["format_name"]),
            video_codec: text(&video["codec_name"]),
            pix_fmt: text(&video["pix_fmt"]),
            frames: text(&video["nb_read_frames"]).parse().expect("frame count"),
            // Matroska has no per-stream durations: NaN, which fails every comparison.
            duration: text(&video["duration"]).parse().unwrap_or(f64::NAN),
            audio_codec: audio.map(|a| text(&a["codec_name"])),
            audio_duration: audio.and_then(|a| text(&a["duration"]).parse().ok()),
            color_primaries: text(&video["color_primaries"]),
            color_space: text(&video["color_space"]),
        }
    }

    fn render(spec: &RenderJobSpec, stage: ScaleStage) -> Result<RenderReport, RenderError> {
        render_file(
            spec,
            Box::new(stage),
            &|_: &Progress| {},
            &CancelToken::new(),
        )
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read temp dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("renderd-tmp") || n.starts_with("out"))
            .collect()
    }

    #[test]
    fn renders_every_frame_with_aac_audio() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, Some("aac"));
        let info = probe(&input).expect("probe");
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.fps, ffmpeg::Rational(25, 1));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert!((info.duration_s - 2.0).abs() < 0.05, "{}", info.duration_s);

        let output = dir.path().join("out.mp4");
        let mut spec = RenderJobSpec::new(&input, &output);
        spec.encoder = EncoderChoice::X264;
        let stage = ScaleStage::new(320, 240, 2).with_prep();
        let times = stage.times.clone();
        let prepared = stage.prepared.clone();
        let updates = Mutex::new(Vec::new());
        let sink = |p: &Progress| updates.lock().expect("progress lock").push(p.clone());
        let report =
            render_file(&spec, Box::new(stage), &sink, &CancelToken::new()).expect("render");
        assert_eq!(report.frames, 50);
        assert_eq!(report.encoder, EncoderKind::X264);
        assert!((report.duration_s - 2.0).abs() < 1e-9);

        let p = ffprobe(&output);
        assert_eq!(p.video_codec, "h264");
        assert_eq!(p.pix_fmt, "yuv420p");
        assert_eq!(p.frames, 50);
        assert!(
            (p.duration - 2.0).abs() <= 1.0 / 25.0,
            "duration {}",
            p.duration
        );
        assert_eq!(p.audio_codec.as_deref(), Some("aac"));
        let audio_end = p.audio_duration.expect("audio duration");
        assert!(
            audio_end <= 2.0 + 0.025 && audio_end > 1.9,
            "audio {audio_end}"
        );

        let times = times.lock().expect("times lock").clone();
        let expected: Vec<f64> = (0..50).map(|n| n as f64 / 25.0).collect();
        assert_eq!(times, expected, "stage sees output times n/fps");
        let prepared = prepared.lock().expect("prepared lock").clone();
        assert_eq!(
            prepared, expected,
            "each frame arrives with its own preparation"
        );
        let updates = updates.into_inner().expect("progress");
        let last = updates.last().expect("progress reported");
        assert_eq!((last.frames_done, last.frames_total), (50, 50));
        assert_eq!(updates[0].stage, RenderStage::Probing);
        assert_eq!(leftovers(dir.path()), vec!["out.mp4".to_string()]);
    }

    #[test]
    fn frame_rate_change_resamples_by_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, Some("aac"));
        let output = dir.path().join("out.mp4");
        let mut spec = RenderJobSpec::new(&input, &output);
        spec.fps = Some(ffmpeg::Rational(30, 1));
        spec.x264_preset = "ultrafast".into();
        let report = render(&spec, ScaleStage::new(160, 120, 0)).expect("render");
        assert_eq!(report.frames, 60);
        let p = ffprobe(&output);
        assert_eq!(p.frames, 60);
        assert!(
            (p.duration - 2.0).abs() <= 1.0 / 30.0,
            "duration {}",
            p.duration
        );
    }

    #[test]
    fn pcm_audio_is_transcoded_and_silent_inputs_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pcm = dir.path().join("pcm.mkv");
        make_clip(&pcm, Some("pcm_s16le"));
        assert_eq!(
            probe(&pcm).expect("probe").audio_codec.as_deref(),
            Some("pcm_s16le")
        );
        let output = dir.path().join("out_pcm.mp4");
        render(
            &RenderJobSpec::new(&pcm, &output),
            ScaleStage::new(320, 240, 1),
        )
        .expect("render pcm");
        let p = ffprobe(&output);
        assert_eq!(p.audio_codec.as_deref(), Some("aac"));
        assert_eq!(p.frames, 50);

        let silent = dir.path().join("silent.mp4");
        make_clip(&silent, None);
        assert!(!probe(&silent).expect("probe").has_audio);
        let output = dir.path().join("out_silent.mp4");
        let report = render(
            &RenderJobSpec::new(&silent, &output),
            ScaleStage::new(320, 240, 0),
        )
        .expect("render silent");
        assert_eq!(report.frames, 50);
        let p = ffprobe(&output);
        assert_eq!(p.audio_codec, None);
        assert_eq!(p.frames, 50);
    }

    #[test]
    fn bad_inputs_give_clear_errors_and_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = dir.path().join("out.mp4");

        let missing = dir.path().join("missing.mp4");
        let err = render(
            &RenderJobSpec::new(&missing, &output),
            ScaleStage::new(320, 240, 0),
        )
        .expect_err("missing input");
        assert!(
            matches!(err, RenderError::Input(MediaError::NotFound { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("does not exist"));
        assert_eq!(err.kind(), "INVALID_VIDEO_FORMAT");

        let text = dir.path().join("notes.mp4");
        std::fs::write(&text, "these are meeting notes, not a video\n".repeat(50)).expect("write");
        let err = render(
            &RenderJobSpec::new(&text, &output),
            ScaleStage::new(320, 240, 0),
        )
        .expect_err("text input");
        assert!(
            matches!(err, RenderError::Input(MediaError::NotMedia { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("not a readable media file"));

        let full = dir.path().join("full.mp4");
        make_clip(&full, Some("aac"));
        let bytes = std::fs::read(&full).expect("read clip");
        let truncated = dir.path().join("truncated.mp4");
        std::fs::write(&truncated, &bytes[..bytes.len() * 3 / 10]).expect("write");
        let err = render(
            &RenderJobSpec::new(&truncated, &output),
            ScaleStage::new(320, 240, 0),
        )
        .expect_err("truncated input");
        assert!(matches!(err, RenderError::Input(_)), "{err}");
        assert!(err.to_string().contains("truncated.mp4"), "{err}");

        // With the index up front, a cut file still holds decodable frames: render them or fail
        // cleanly, never panic.
        let faststart = dir.path().join("faststart.mp4");
        let (f, fs) = (
            full.to_str().expect("utf-8"),
            faststart.to_str().expect("utf-8"),
        );
        ffmpeg_cli(&["-i", f, "-c", "copy", "-movflags", "+faststart", fs]);
        let bytes = std::fs::read(&faststart).expect("read clip");
        let cut = dir.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() * 3 / 10]).expect("write");
        let cut_output = dir.path().join("cut_out.mp4");
        match render(
            &RenderJobSpec::new(&cut, &cut_output),
            ScaleStage::new(320, 240, 0),
        ) {
            Ok(report) => {
                assert!(
                    report.frames > 0 && report.frames <= 50,
                    "{}",
                    report.frames
                );
                assert_eq!(ffprobe(&cut_output).frames, report.frames);
                std::fs::remove_file(&cut_output).expect("remove");
            }
            Err(err) => assert!(matches!(err, RenderError::Input(_)), "{err}"),
        }

        let err = probe(&text).expect_err("probe text");
        assert!(matches!(err, MediaError::NotMedia { .. }));
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn cancel_stops_and_removes_the_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, Some("aac"));
        let output = dir.path().join("out.mp4");
        let cancel = CancelToken::new();
        let mut stage = ScaleStage::new(320, 240, 1);
        stage.cancel_after = Some((3, cancel.clone()));
        let times = stage.times.clone();
        let err = render_file(
            &RenderJobSpec::new(&input, &output),
            Box::new(stage),
            &|_: &Progress| {},
            &cancel,
        )
        .expect_err("cancelled");
        assert!(matches!(err, RenderError::Cancelled), "{err}");
        assert_eq!(err.kind(), "JOB_CANCELLED");
        assert!(
            times.lock().expect("times").len() <= 4,
            "stopped within a frame"
        );
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn forcing_nvenc_without_it_fails_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, None);
        let output = dir.path().join("out.mp4");
        let mut spec = RenderJobSpec::new(&input, &output);
        spec.encoder = EncoderChoice::Nvenc;
        let result = render(&spec, ScaleStage::new(320, 240, 0));
        if nvenc_available() {
            assert_eq!(result.expect("nvenc render").encoder, EncoderKind::Nvenc);
        } else {
            let err = result.expect_err("nvenc unavailable");
            assert_eq!(err.kind(), "GPU_NOT_AVAILABLE");
            assert!(err.to_string().contains("NVENC is not available"), "{err}");
            assert!(leftovers(dir.path()).is_empty());
        }
    }

    #[test]
    fn invalid_options_and_stage_formats_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, None);
        let mut spec = RenderJobSpec::new(&input, dir.path().join("out.mp4"));
        spec.quality = 5;
        let err = render(&spec, ScaleStage::new(320, 240, 0)).expect_err("quality");
        assert_eq!(err.kind(), "INVALID_RENDER_OPTIONS");
        spec.quality = 90;
        spec.fps = Some(ffmpeg::Rational(0, 1));
        assert!(matches!(
            render(&spec, ScaleStage::new(320, 240, 0)),
            Err(RenderError::Options(_))
        ));
        spec.fps = None;
        let mut liar = ScaleStage::new(320, 240, 0);
        liar.declared = Some((640, 480));
        let err = render(&spec, liar).expect_err("stage size mismatch");
        assert!(matches!(err, RenderError::Stage(_)), "{err}");
        assert!(leftovers(dir.path()).is_empty());
        spec.output = dir.path().join("no-such-dir").join("out.mp4");
        let err = render(&spec, ScaleStage::new(320, 240, 0)).expect_err("missing folder");
        assert_eq!(err.kind(), "STORAGE_ACCESS_ERROR");
    }

    #[test]
    fn mov_and_webm_carry_their_codecs_every_frame_and_the_audio() {
        let dir = tempfile::tempdir().expect("tempdir");
        let aac = dir.path().join("in.mp4");
        make_clip(&aac, Some("aac"));
        let pcm = dir.path().join("in.mkv");
        make_clip(&pcm, Some("pcm_s16le"));
        let silent = dir.path().join("silent.mp4");
        make_clip(&silent, None);
        let cases = [
            (
                Container::Mov,
                &aac,
                "out.mov",
                EncoderKind::X264,
                "h264",
                Some("aac"),
            ),
            (
                Container::Mov,
                &pcm,
                "pcm.mov",
                EncoderKind::X264,
                "h264",
                Some("aac"),
            ),
            // 44.1 kHz AAC and PCM sources: decoded and resampled to 48 kHz Opus.
            (
                Container::Webm,
                &aac,
                "out.webm",
                EncoderKind::Vp9,
                "vp9",
                Some("opus"),
            ),
            (
                Container::Webm,
                &pcm,
                "pcm.webm",
                EncoderKind::Vp9,
                "vp9",
                Some("opus"),
            ),
            (
                Container::Webm,
                &silent,
                "silent.webm",
                EncoderKind::Vp9,
                "vp9",
                None,
            ),
        ];
        for (container, input, name, encoder, video_codec, audio_codec) in cases {
            let output = dir.path().join(name);
            let mut spec = RenderJobSpec::new(input, &output);
            spec.container = container;
            spec.encoder = if container == Container::Webm {
                EncoderChoice::Auto
            } else {
                EncoderChoice::X264
            };
            let report = render(&spec, ScaleStage::new(320, 240, 1)).expect(name);
            assert_eq!(report.encoder, encoder, "{name}");
            assert_eq!(report.frames, 50, "{name}");
            let p = ffprobe(&output);
            let expected_container = match container {
                Container::Webm => "matroska,webm",
                Container::Mp4 | Container::Mov => "mov,mp4,m4a,3gp,3g2,mj2",
            };
            assert_eq!(p.container, expected_container, "{name}");
            assert_eq!(p.video_codec, video_codec, "{name}");
            assert_eq!(p.pix_fmt, "yuv420p", "{name}");
            assert_eq!(p.frames, 50, "{name}");
            assert_eq!(p.audio_codec.as_deref(), audio_codec, "{name}");
            if container == Container::Mov {
                assert!(
                    (p.duration - 2.0).abs() <= 1.0 / 25.0,
                    "{name}: {}",
                    p.duration
                );
                let audio_end = p.audio_duration.expect("audio duration");
                assert!(
                    audio_end > 1.9 && audio_end <= 2.025,
                    "{name}: audio {audio_end}"
                );
            }
        }
        // Matroska keeps durations per file, not per stream: check the whole file's.
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=sample_rate",
            ])
            .args(["-of", "json"])
            .arg(dir.path().join("out.webm"))
            .output()
            .expect("ffprobe runs");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let duration: f64 = json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .expect("duration");
        assert!((duration - 2.0).abs() <= 0.05, "webm duration {duration}");
        let rates: Vec<&str> = json["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .filter_map(|s| s["sample_rate"].as_str())
            .collect();
        assert_eq!(rates, ["48000"], "Opus at 48 kHz");
        let temporaries: Vec<_> = leftovers(dir.path())
            .into_iter()
            .filter(|n| n.contains("renderd-tmp"))
            .collect();
        assert!(temporaries.is_empty(), "{temporaries:?}");
    }

    #[test]
    fn h264_encoders_cannot_write_webm_nor_vp9_mp4() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, None);
        let mut spec = RenderJobSpec::new(&input, dir.path().join("out.webm"));
        spec.container = Container::Webm;
        spec.encoder = EncoderChoice::X264;
        let err = render(&spec, ScaleStage::new(320, 240, 0)).expect_err("x264 into webm");
        assert_eq!(err.kind(), "INVALID_RENDER_OPTIONS");
        assert!(err.to_string().contains("VP9"), "{err}");
        spec.container = Container::Mp4;
        spec.encoder = EncoderChoice::Vp9;
        let err = render(&spec, ScaleStage::new(320, 240, 0)).expect_err("vp9 into mp4");
        assert_eq!(err.kind(), "INVALID_RENDER_OPTIONS");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn hd_output_is_tagged_bt709() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.mp4");
        make_clip(&input, None);
        let output = dir.path().join("out.mp4");
        let mut spec = RenderJobSpec::new(&input, &output);
        spec.x264_preset = "ultrafast".into();
        spec.fps = Some(ffmpeg::Rational(5, 1));
        let report = render(&spec, ScaleStage::new(1280, 720, 0)).expect("render hd");
        assert_eq!(report.frames, 10);
        let p = ffprobe(&output);
        assert_eq!(
            (p.color_primaries.as_str(), p.color_space.as_str()),
            ("bt709", "bt709")
        );
        assert_eq!(p.frames, 10);
    }

    #[test]
    fn first_real_error_beats_cancelled() {
        let picked = first_real_error(vec![
            RenderError::Cancelled,
            RenderError::Stage(StageError("gpu lost".into())),
        ]);
        assert!(matches!(picked, Some(RenderError::Stage(_))));
        assert!(matches!(
            first_real_error(vec![RenderError::Cancelled]),
            Some(RenderError::Cancelled)
        ));
        assert!(first_real_error(Vec::new()).is_none());
    }
}
