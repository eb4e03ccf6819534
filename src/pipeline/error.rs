//! Errors of the media pipeline, classified once with `kind()` codes from the job contract.

use std::fmt;
use std::io;
use std::path::PathBuf;

use ffmpeg_next as ffmpeg;

/// Which video encoder produced (or failed to produce) the video: H.264 (NVENC, x264) for mp4
/// and mov, VP9 for webm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    Nvenc,
    X264,
    Vp9,
}

impl EncoderKind {
    /// The name jobs record: `nvenc`, `x264` or `vp9`.
    pub fn short_name(self) -> &'static str {
        match self {
            EncoderKind::Nvenc => "nvenc",
            EncoderKind::X264 => "x264",
            EncoderKind::Vp9 => "vp9",
        }
    }

    /// The FFmpeg encoder behind this kind.
    pub fn codec_name(self) -> &'static str {
        match self {
            EncoderKind::Nvenc => "h264_nvenc",
            EncoderKind::X264 => "libx264",
            EncoderKind::Vp9 => "libvpx-vp9",
        }
    }
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncoderKind::Nvenc => write!(f, "NVENC (h264_nvenc)"),
            EncoderKind::X264 => write!(f, "x264 (libx264)"),
            EncoderKind::Vp9 => write!(f, "VP9 (libvpx-vp9)"),
        }
    }
}

/// A failure of the GPU step (or any [`super::FrameStage`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StageError(pub String);

/// Problems with the input media: reported before or while decoding.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("input file {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("input {path} cannot be read: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("input {path} is not a readable media file (or is corrupt): {source}")]
    NotMedia {
        path: PathBuf,
        source: ffmpeg::Error,
    },
    #[error("input {path} has no video stream")]
    NoVideoStream { path: PathBuf },
    #[error("video stream of {path} cannot be decoded: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("decoding video frame {frame} of {path} failed: {source}")]
    Decode {
        path: PathBuf,
        frame: u64,
        source: ffmpeg::Error,
    },
    #[error("input {path} yielded no decodable video frames")]
    NoFrames { path: PathBuf },
}

/// An encoder could not be opened (not compiled in, no driver, bad settings).
#[derive(Debug, thiserror::Error)]
#[error("{encoder} encoder could not be opened: {reason}")]
pub struct EncoderInitError {
    pub encoder: EncoderKind,
    pub reason: String,
}

/// Failure of [`super::render_file`].
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid render options: {0}")]
    Options(String),
    #[error(transparent)]
    Input(#[from] MediaError),
    #[error("render cancelled")]
    Cancelled,
    #[error("{encoder} encoder unavailable: {reason}")]
    Encoder {
        encoder: EncoderKind,
        reason: String,
    },
    #[error("render stage failed: {0}")]
    Stage(#[from] StageError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("FFmpeg failed while {context}: {source}")]
    Ffmpeg {
        context: String,
        source: ffmpeg::Error,
    },
}

impl From<EncoderInitError> for RenderError {
    fn from(err: EncoderInitError) -> Self {
        RenderError::Encoder {
            encoder: err.encoder,
            reason: err.reason,
        }
    }
}

impl RenderError {
    pub(crate) fn ffmpeg(context: impl Into<String>, source: ffmpeg::Error) -> Self {
        RenderError::Ffmpeg {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        RenderError::Io {
            context: context.into(),
            source,
        }
    }

    /// The job failure code of the contract (`INVALID_VIDEO_FORMAT`, `JOB_CANCELLED`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::Options(_) => "INVALID_RENDER_OPTIONS",
            RenderError::Input(_) => "INVALID_VIDEO_FORMAT",
            RenderError::Cancelled => "JOB_CANCELLED",
            RenderError::Encoder {
                encoder: EncoderKind::Nvenc,
                ..
            } => "GPU_NOT_AVAILABLE",
            RenderError::Encoder {
                encoder: EncoderKind::X264 | EncoderKind::Vp9,
                ..
            } => "FFMPEG_ERROR",
            RenderError::Stage(_) => "RENDER_GPU_ERROR",
            RenderError::Io { .. } => "STORAGE_ACCESS_ERROR",
            RenderError::Ffmpeg { .. } => "FFMPEG_ERROR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_contract_codes() {
        let input = RenderError::from(MediaError::NoVideoStream {
            path: PathBuf::from("a.wav"),
        });
        assert_eq!(input.kind(), "INVALID_VIDEO_FORMAT");
        assert!(input.to_string().contains("a.wav"));
        assert_eq!(RenderError::Cancelled.kind(), "JOB_CANCELLED");
        let nvenc = RenderError::from(EncoderInitError {
            encoder: EncoderKind::Nvenc,
            reason: "no driver".into(),
        });
        assert_eq!(nvenc.kind(), "GPU_NOT_AVAILABLE");
        assert!(nvenc.to_string().contains("NVENC"));
        let vp9 = RenderError::from(EncoderInitError {
            encoder: EncoderKind::Vp9,
            reason: "not compiled in".into(),
        });
        assert_eq!(vp9.kind(), "FFMPEG_ERROR");
        assert!(vp9.to_string().contains("libvpx-vp9"), "{vp9}");
        assert_eq!(EncoderKind::Vp9.short_name(), "vp9");
        let io = RenderError::io("creating x", io::Error::other("disk full"));
        assert_eq!(io.kind(), "STORAGE_ACCESS_ERROR");
        assert_eq!(
            RenderError::ffmpeg("muxing", ffmpeg::Error::InvalidData).kind(),
            "FFMPEG_ERROR"
        );
        assert_eq!(
            RenderError::Stage(StageError("boom".into())).kind(),
            "RENDER_GPU_ERROR"
        );
        assert_eq!(
            RenderError::Options("quality".into()).kind(),
            "INVALID_RENDER_OPTIONS"
        );
    }
}
