//! Reading what an input file holds, before any decoding work starts.

use std::path::Path;

use ffmpeg::{codec, format, media, util::color, Rational};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;

/// What `probe` learns about an input.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub width: u32,
    pub height: u32,
    /// Average frame rate of the video stream.
    pub fps: Rational,
    pub duration_s: f64,
    pub frame_count_estimate: u64,
    pub has_audio: bool,
    pub audio_codec: Option<String>,
    pub pixel: format::Pixel,
    pub color_matrix_bt709: bool,
    pub full_range: bool,
}

pub(crate) fn ensure_ffmpeg_init() -> Result<(), ffmpeg::Error> {
    static INIT: std::sync::OnceLock<Result<(), ffmpeg::Error>> = std::sync::OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg::init()?;
        // libav's info-level chatter (x264 statistics, muxer passes) is not service logging.
        ffmpeg::log::set_level(ffmpeg::log::Level::Warning);
        Ok(())
    })
}

/// A usable frame rate of a stream: average, else the real base rate.
pub(crate) fn stream_fps(stream: &format::stream::Stream) -> Option<Rational> {
    [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0)
}

/// Opens `input` as a media file with clear errors for the usual failures.
pub(crate) fn open_input(input: &Path) -> Result<format::context::Input, MediaError> {
    match std::fs::metadata(input) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(MediaError::Unreadable {
                path: input.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(MediaError::NotFound {
                path: input.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(MediaError::Unreadable {
                path: input.to_path_buf(),
                source,
            })
        }
    }
    ensure_ffmpeg_init().map_err(|source| MediaError::NotMedia {
        path: input.to_path_buf(),
        source,
    })?;
    format::input(input).map_err(|source| MediaError::NotMedia {
        path: input.to_path_buf(),
        source,
    })
}

/// Opens a video decoder for `stream` (threaded with an automatic thread count).
pub(crate) fn open_video_decoder(
    input: &Path,
    stream: &format::stream::Stream,
) -> Result<codec::decoder::Video, MediaError> {
    let corrupt = |reason: String| MediaError::Corrupt {
        path: input.to_path_buf(),
        reason,
    };
    let mut context = codec::Context::from_parameters(stream.parameters())
        .map_err(|e| corrupt(format!("bad codec parameters: {e}")))?;
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        ..Default::default()
    });
    let codec_id = context.id();
    let decoder = context
        .decoder()
        .video()
        .map_err(|e| corrupt(format!("no usable decoder for {codec_id:?}: {e}")))?;
    if decoder.width() == 0 || decoder.height() == 0 {
        return Err(corrupt("video stream has no frame size".into()));
    }
    Ok(decoder)
}

/// Reads the container and the video stream's parameters; decodes nothing.
pub fn probe(input: &Path) -> Result<MediaInfo, MediaError> {
    probe_with_start(input).map(|(info, _)| info)
}

/// `probe`, plus the video stream's start time in seconds (output time 0 maps to it).
pub(crate) fn probe_with_start(input: &Path) -> Result<(MediaInfo, f64), MediaError> {
    let ictx = open_input(input)?;
    let video =
        ictx.streams()
            .best(media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream {
                path: input.to_path_buf(),
            })?;
    let decoder = open_video_decoder(input, &video)?;
    let fps = stream_fps(&video).ok_or_else(|| MediaError::Corrupt {
        path: input.to_path_buf(),
        reason: "video stream has no frame rate".into(),
    })?;
    let stream_duration = if video.duration() > 0 {
        video.duration() as f64 * f64::from(video.time_base())
    } else {
        0.0
    };
    let duration_s = if stream_duration > 0.0 {
        stream_duration
    } else if ictx.duration() > 0 {
        ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let frame_count_estimate = if video.frames() > 0 {
        video.frames() as u64
    } else {
        (duration_s * f64::from(fps)).round().max(0.0) as u64
    };
    let audio = ictx.streams().best(media::Type::Audio);
    let audio_codec = audio
        .as_ref()
        .map(|s| s.parameters().id().name().to_string());
    let pixel = decoder.format();
    let full_range = decoder.color_range() == color::Range::JPEG
        || matches!(
            pixel,
            format::Pixel::YUVJ420P | format::Pixel::YUVJ422P | format::Pixel::YUVJ444P
        );
    let start_s = if video.start_time() != ffmpeg::ffi::AV_NOPTS_VALUE {
        video.start_time() as f64 * f64::from(video.time_base())
    } else {
        0.0
    };
    let info = MediaInfo {
        width: decoder.width(),
        height: decoder.height(),
        fps,
        duration_s,
        frame_count_estimate,
        has_audio: audio.is_some(),
        audio_codec,
        pixel,
        color_matrix_bt709: decoder.color_space() == color::Space::BT709,
        full_range,
    };
    Ok((info, start_s))
}
