//! The encoder + muxer thread: numbers frames n → pts n/fps, encodes, interleaves audio, writes
//! the container (MP4 / MOV with +faststart, WebM).

use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ffmpeg::{encoder, format, frame, picture, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::audio::AudioTrack;
use super::encoder::{open_encoder, EncoderSettings, VideoEncoder};
use super::error::{EncoderKind, RenderError, StageError};
use super::{OutputFormat, Stop};
use crate::domain::job::OutputFormat as Container;
use crate::progress::{Progress, ProgressSink, RenderStage};

/// Progress goes out at most this often: status streams promise updates within 100 ms.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(20);

pub(crate) struct MuxJob<'a> {
    pub(crate) input: &'a Path,
    pub(crate) temp_output: &'a Path,
    pub(crate) container: Container,
    pub(crate) encoder: EncoderKind,
    /// Auto selection: fall back to x264 when NVENC fails to open with the real settings.
    pub(crate) allow_fallback: bool,
    pub(crate) settings: EncoderSettings,
    pub(crate) format: OutputFormat,
    pub(crate) start_s: f64,
    pub(crate) frames_total_estimate: u64,
    pub(crate) progress: &'a dyn ProgressSink,
}

pub(crate) struct MuxSummary {
    pub(crate) frames: u64,
    pub(crate) encoder: EncoderKind,
    pub(crate) encode_busy: Duration,
    pub(crate) mux_busy: Duration,
}

fn ff(context: &str) -> impl FnOnce(ffmpeg::Error) -> RenderError + '_ {
    move |e| RenderError::ffmpeg(context, e)
}

struct VideoOut {
    encoder: Box<dyn VideoEncoder>,
    index: usize,
    encoder_tb: Rational,
    stream_tb: Rational,
    packets: Vec<Packet>,
}

impl VideoOut {
    fn write_packets(&mut self, octx: &mut format::context::Output) -> Result<(), RenderError> {
        for mut packet in self.packets.drain(..) {
            // FFmpeg 5.1 encoders leave durations at 0; the file would lose its last frame.
            if packet.duration() <= 0 {
                packet.set_duration(1);
            }
            packet.set_stream(self.index);
            packet.rescale_ts(self.encoder_tb, self.stream_tb);
            packet
                .write_interleaved(octx)
                .map_err(ff("writing a video packet"))?;
        }
        Ok(())
    }
}

/// The libavformat muxer that writes `container`.
pub(crate) fn muxer_name(container: Container) -> &'static str {
    match container {
        Container::Mp4 => "mp4",
        Container::Mov => "mov",
        Container::Webm => "webm",
    }
}

/// Muxer options: MP4 and MOV put their index up front (`+faststart`) so players can start
/// before the whole file has arrived; WebM writes its cues at the end, which players fetch
/// with a range request.
fn header_options(container: Container) -> Dictionary<'static> {
    let mut options = Dictionary::new();
    match container {
        Container::Mp4 | Container::Mov => {
            options.set("movflags", "+faststart");
            // FLAC / Opus stream copies into MP4 are flagged experimental by some FFmpeg versions.
            options.set("strict", "experimental");
        }
        Container::Webm => {}
    }
    options
}

fn open_video_encoder(job: &MuxJob<'_>) -> Result<Box<dyn VideoEncoder>, RenderError> {
    match open_encoder(job.encoder, &job.settings) {
        Ok(enc) => Ok(enc),
        Err(err) if job.allow_fallback && job.encoder == EncoderKind::Nvenc => {
            tracing::warn!(%err, "NVENC failed to open; falling back to x264");
            Ok(open_encoder(EncoderKind::X264, &job.settings)?)
        }
        Err(err) => Err(err.into()),
    }
}

pub(crate) fn run_muxer(
    mut job: MuxJob<'_>,
    rx: &Receiver<frame::Video>,
    stop: &Stop<'_>,
) -> Result<MuxSummary, RenderError> {
    let started = Instant::now();
    let mut octx = format::output_as(job.temp_output, muxer_name(job.container)).map_err(|e| {
        RenderError::ffmpeg(
            format!("creating the output file {}", job.temp_output.display()),
            e,
        )
    })?;
    job.settings.global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
    let video_encoder = open_video_encoder(&job)?;
    let encoder_kind = video_encoder.kind();
    let index = {
        let mut ost = octx
            .add_stream(encoder::find_by_name(encoder_kind.codec_name()))
            .map_err(ff("adding the video stream"))?;
        ost.set_parameters(video_encoder.context());
        ost.set_time_base(video_encoder.time_base());
        ost.set_avg_frame_rate(job.settings.fps);
        ost.index()
    };
    let mut audio = AudioTrack::add(
        job.input,
        &mut octx,
        job.container,
        job.settings.global_header,
        job.start_s,
    )?;

    octx.write_header_with(header_options(job.container))
        .map_err(ff("writing the container header"))?;
    // Muxers rewrite stream time bases in write_header: read them only now.
    let stream_tb = octx.stream(index).map(|s| s.time_base()).ok_or_else(|| {
        RenderError::ffmpeg("reading the video stream", ffmpeg::Error::StreamNotFound)
    })?;
    if let Some(track) = audio.as_mut() {
        let tb = octx
            .stream(track.out_index())
            .map(|s| s.time_base())
            .ok_or_else(|| {
                RenderError::ffmpeg("reading the audio stream", ffmpeg::Error::StreamNotFound)
            })?;
        track.set_output_time_base(tb);
    }
    let mut video = VideoOut {
        encoder_tb: video_encoder.time_base(),
        encoder: video_encoder,
        index,
        stream_tb,
        packets: Vec::new(),
    };

    let fps = f64::from(job.settings.fps);
    let mut frames = 0u64;
    let mut encode_busy = Duration::ZERO;
    let mut mux_busy = Duration::ZERO;
    let mut last_report: Option<Instant> = None;
    let expected = job.format;
    for mut frame in rx.iter() {
        stop.check()?;
        if frame.format() != expected.pixel
            || frame.width() != expected.width
            || frame.height() != expected.height
        {
            return Err(StageError(format!(
                "stage returned a {:?} {}x{} frame, but declared {:?} {}x{}",
                frame.format(),
                frame.width(),
                frame.height(),
                expected.pixel,
                expected.width,
                expected.height
            ))
            .into());
        }
        let t = Instant::now();
        frame.set_pts(Some(frames as i64));
        frame.set_kind(picture::Type::None);
        video
            .encoder
            .encode(&frame, &mut video.packets)
            .map_err(|e| RenderError::ffmpeg(format!("encoding video frame {frames}"), e))?;
        encode_busy += t.elapsed();
        frames += 1;
        let t = Instant::now();
        video.write_packets(&mut octx)?;
        if let Some(track) = audio.as_mut() {
            track.pump(&mut octx, frames as f64 / fps)?;
        }
        mux_busy += t.elapsed();
        if last_report.is_none_or(|r| r.elapsed() >= PROGRESS_INTERVAL) {
            last_report = Some(Instant::now());
            job.progress.report(&Progress {
                stage: RenderStage::Rendering,
                frames_done: frames,
                frames_total: job.frames_total_estimate.max(frames),
                fps: frames as f64 / started.elapsed().as_secs_f64().max(1e-6),
                encoder: Some(encoder_kind),
            });
        }
    }
    // The stage channel closes on success and on failure upstream: only finish on success.
    stop.check()?;
    job.progress.report(&Progress {
        stage: RenderStage::Finalizing,
        frames_done: frames,
        frames_total: frames,
        fps: frames as f64 / started.elapsed().as_secs_f64().max(1e-6),
        encoder: Some(encoder_kind),
    });
    let t = Instant::now();
    video
        .encoder
        .flush(&mut video.packets)
        .map_err(ff("flushing the video encoder"))?;
    encode_busy += t.elapsed();
    let t = Instant::now();
    video.write_packets(&mut octx)?;
    if let Some(track) = audio.as_mut() {
        track.finish(&mut octx, frames as f64 / fps)?;
    }
    octx.write_trailer()
        .map_err(ff("finishing the output file"))?;
    mux_busy += t.elapsed();
    Ok(MuxSummary {
        frames,
        encoder: encoder_kind,
        encode_busy,
        mux_busy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_container_has_its_muxer_and_options() {
        assert_eq!(muxer_name(Container::Mp4), "mp4");
        assert_eq!(muxer_name(Container::Mov), "mov");
        assert_eq!(muxer_name(Container::Webm), "webm");
        for container in [Container::Mp4, Container::Mov] {
            let options = header_options(container);
            assert_eq!(options.get("movflags"), Some("+faststart"), "{container}");
        }
        let webm = header_options(Container::Webm);
        assert_eq!(webm.get("movflags"), None);
        // Every muxer name is one this FFmpeg has.
        crate::pipeline::probe::ensure_ffmpeg_init().expect("ffmpeg");
        for container in Container::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(format!("x.{}", container.extension()));
            assert!(
                format::output_as(&path, muxer_name(container)).is_ok(),
                "{container}"
            );
        }
    }
}
