//! Video encoders behind one small trait: H.264 with NVENC (h264_nvenc) or x264 (libx264) for
//! mp4 and mov, VP9 (libvpx-vp9) for webm.

use std::sync::OnceLock;

use ffmpeg::{codec, encoder, format, frame, util::color, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::error::{EncoderInitError, EncoderKind, RenderError};
use super::probe::ensure_ffmpeg_init;
use crate::domain::job::OutputFormat as Container;

/// Which encoder a job asks for. `Auto`, `Nvenc` and `X264` pick among the H.264 encoders of
/// mp4 and mov; webm takes VP9 (`Auto` or `Vp9`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum EncoderChoice {
    #[default]
    Auto,
    Nvenc,
    X264,
    Vp9,
}

/// x264 presets libx264 accepts.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Everything an encoder needs to open.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: Rational,
    /// 10..=100, mapped to CQ/CRF by [`quality_to_cq`] / [`quality_to_crf`].
    pub quality: u8,
    pub x264_preset: String,
    /// The container wants codec headers out of band (MP4 does).
    pub global_header: bool,
}

/// The old service's mapping: 51 − q·0.51, as a float (x264 CRF).
pub fn quality_to_crf(quality: u8) -> f32 {
    (51.0 - f32::from(quality) * 0.51).clamp(0.0, 51.0)
}

/// The same mapping rounded to an integer NVENC CQ.
pub fn quality_to_cq(quality: u8) -> u32 {
    quality_to_crf(quality).round() as u32
}

/// VP9's CRF for a quality: the H.264 mapping stretched from x264's 0–51 scale to libvpx's 0–63,
/// 63 − q·0.63 rounded (q 90 → 6, q 50 → 32, q 10 → 57), so a quality means the same place on
/// each encoder's scale.
pub fn quality_to_vp9_crf(quality: u8) -> u32 {
    (63.0 - f32::from(quality) * 0.63).clamp(0.0, 63.0).round() as u32
}

/// libvpx's realtime speed step: 6 keeps VP9 near real time on a few cores (about 45 fps at
/// 720p on two) at a quality close to the slower steps.
const VP9_CPU_USED: u32 = 6;
/// Encoder threads for VP9 (libvpx scales with row-mt and tile columns up to about this).
const VP9_MAX_THREADS: usize = 8;

/// libvpx's tile columns (log2) for a frame width: as many as keep each tile at least 256 px
/// wide (its minimum), up to 4 columns, so row-mt has rows to share out.
fn vp9_tile_columns_log2(width: u32) -> u32 {
    let mut log2 = 0;
    while log2 < 2 && width >> (log2 + 1) >= 256 {
        log2 += 1;
    }
    log2
}

/// An opened video encoder: frames (with pts in `time_base()` units) in, packets out.
pub trait VideoEncoder: Send {
    fn open(settings: &EncoderSettings) -> Result<Self, EncoderInitError>
    where
        Self: Sized;
    fn kind(&self) -> EncoderKind;
    /// The opened codec context, for the output stream's parameters.
    fn context(&self) -> &encoder::Video;
    fn time_base(&self) -> Rational;
    /// Encodes one frame; finished packets are appended to `out`.
    fn encode(&mut self, frame: &frame::Video, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error>;
    /// Drains the encoder at end of stream.
    fn flush(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error>;
}

/// The shared libavcodec part of every encoder.
struct LavcEncoder {
    kind: EncoderKind,
    inner: encoder::Video,
    time_base: Rational,
}

impl LavcEncoder {
    fn open(
        kind: EncoderKind,
        settings: &EncoderSettings,
        configure: impl FnOnce(&mut encoder::video::Video),
        options: Dictionary,
    ) -> Result<Self, EncoderInitError> {
        let fail = |reason: String| EncoderInitError {
            encoder: kind,
            reason,
        };
        ensure_ffmpeg_init().map_err(|e| fail(format!("FFmpeg init failed: {e}")))?;
        if settings.width == 0
            || settings.height == 0
            || settings.width % 2 == 1
            || settings.height % 2 == 1
        {
            return Err(fail(format!(
                "frame size {}x{} must be non-zero and even for yuv420p",
                settings.width, settings.height
            )));
        }
        if settings.fps.numerator() <= 0 || settings.fps.denominator() <= 0 {
            return Err(fail(format!("invalid frame rate {}", settings.fps)));
        }
        let codec = encoder::find_by_name(kind.codec_name()).ok_or_else(|| {
            fail(format!(
                "{} is not compiled into this FFmpeg",
                kind.codec_name()
            ))
        })?;
        let mut enc = codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| fail(format!("cannot create a video encoder context: {e}")))?;
        let time_base = settings.fps.invert();
        enc.set_width(settings.width);
        enc.set_height(settings.height);
        enc.set_format(format::Pixel::YUV420P);
        enc.set_time_base(time_base);
        enc.set_frame_rate(Some(settings.fps));
        let gop = (2.0 * f64::from(settings.fps)).round().max(1.0) as u32;
        enc.set_gop(gop);
        enc.set_color_range(color::Range::MPEG);
        if settings.height >= 720 {
            enc.set_color_primaries(color::Primaries::BT709);
            enc.set_color_transfer_characteristic(color::TransferCharacteristic::BT709);
            enc.set_colorspace(color::Space::BT709);
        }
        // Closed GOPs: every 2 s keyframe is a clean seek point for players and editors.
        let mut flags = codec::Flags::CLOSED_GOP;
        if settings.global_header {
            flags |= codec::Flags::GLOBAL_HEADER;
        }
        enc.set_flags(flags);
        configure(&mut enc);
        let inner = enc
            .open_as_with(codec, options)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            kind,
            inner,
            time_base,
        })
    }

    fn drain(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        loop {
            let mut packet = Packet::empty();
            match self.inner.receive_packet(&mut packet) {
                Ok(()) => out.push(packet),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn encode(&mut self, frame: &frame::Video, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.inner.send_frame(frame)?;
        self.drain(out)
    }

    fn flush(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.inner.send_eof()?;
        self.drain(out)
    }
}

/// h264_nvenc: preset p4, VBR with a CQ target, b:v 0, maxrate 5M, bufsize 10M.
pub struct Nvenc(LavcEncoder);

impl VideoEncoder for Nvenc {
    fn open(settings: &EncoderSettings) -> Result<Self, EncoderInitError> {
        let mut options = Dictionary::new();
        options.set("preset", "p4");
        options.set("rc", "vbr");
        // cq 0 means "no CQ target" to NVENC, so the top quality maps to its best real value.
        options.set("cq", &quality_to_cq(settings.quality).max(1).to_string());
        options.set("bufsize", "10M");
        LavcEncoder::open(
            EncoderKind::Nvenc,
            settings,
            |enc| {
                enc.set_bit_rate(0);
                enc.set_max_bit_rate(5_000_000);
            },
            options,
        )
        .map(Nvenc)
    }
    fn kind(&self) -> EncoderKind {
        self.0.kind
    }
    fn context(&self) -> &encoder::Video {
        &self.0.inner
    }
    fn time_base(&self) -> Rational {
        self.0.time_base
    }
    fn encode(&mut self, frame: &frame::Video, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.encode(frame, out)
    }
    fn flush(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.flush(out)
    }
}

/// libx264 with CRF 51 − q·0.51 and a configurable preset.
pub struct X264(LavcEncoder);

impl VideoEncoder for X264 {
    fn open(settings: &EncoderSettings) -> Result<Self, EncoderInitError> {
        if !X264_PRESETS.contains(&settings.x264_preset.as_str()) {
            return Err(EncoderInitError {
                encoder: EncoderKind::X264,
                reason: format!(
                    "unknown x264 preset {:?} (expected one of {})",
                    settings.x264_preset,
                    X264_PRESETS.join(", ")
                ),
            });
        }
        let mut options = Dictionary::new();
        options.set("preset", &settings.x264_preset);
        options.set("crf", &format!("{:.2}", quality_to_crf(settings.quality)));
        LavcEncoder::open(EncoderKind::X264, settings, |_| {}, options).map(X264)
    }
    fn kind(&self) -> EncoderKind {
        self.0.kind
    }
    fn context(&self) -> &encoder::Video {
        &self.0.inner
    }
    fn time_base(&self) -> Rational {
        self.0.time_base
    }
    fn encode(&mut self, frame: &frame::Video, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.encode(frame, out)
    }
    fn flush(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.flush(out)
    }
}

/// libvpx-vp9 in constant-quality mode (b:v 0, CRF 63 − q·0.63) at the realtime deadline with
/// row multithreading and tile columns, so a webm render is not many times slower than x264.
pub struct Vp9(LavcEncoder);

impl VideoEncoder for Vp9 {
    fn open(settings: &EncoderSettings) -> Result<Self, EncoderInitError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(VP9_MAX_THREADS);
        let mut options = Dictionary::new();
        options.set("crf", &quality_to_vp9_crf(settings.quality).to_string());
        options.set("deadline", "realtime");
        options.set("cpu-used", &VP9_CPU_USED.to_string());
        options.set("row-mt", "1");
        options.set(
            "tile-columns",
            &vp9_tile_columns_log2(settings.width).to_string(),
        );
        options.set("threads", &threads.to_string());
        LavcEncoder::open(
            EncoderKind::Vp9,
            settings,
            // b:v 0 with a CRF is libvpx's constant-quality mode.
            |enc| enc.set_bit_rate(0),
            options,
        )
        .map(Vp9)
    }
    fn kind(&self) -> EncoderKind {
        self.0.kind
    }
    fn context(&self) -> &encoder::Video {
        &self.0.inner
    }
    fn time_base(&self) -> Rational {
        self.0.time_base
    }
    fn encode(&mut self, frame: &frame::Video, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.encode(frame, out)
    }
    fn flush(&mut self, out: &mut Vec<Packet>) -> Result<(), ffmpeg::Error> {
        self.0.flush(out)
    }
}

/// Opens the encoder of `kind` as a trait object.
pub fn open_encoder(
    kind: EncoderKind,
    settings: &EncoderSettings,
) -> Result<Box<dyn VideoEncoder>, EncoderInitError> {
    Ok(match kind {
        EncoderKind::Nvenc => Box::new(Nvenc::open(settings)?),
        EncoderKind::X264 => Box::new(X264::open(settings)?),
        EncoderKind::Vp9 => Box::new(Vp9::open(settings)?),
    })
}

static NVENC_PROBE: OnceLock<Result<(), String>> = OnceLock::new();

fn nvenc_probe() -> &'static Result<(), String> {
    NVENC_PROBE.get_or_init(|| {
        let settings = EncoderSettings {
            width: 256,
            height: 256,
            fps: Rational(25, 1),
            quality: 50,
            x264_preset: "veryfast".into(),
            global_header: false,
        };
        match Nvenc::open(&settings) {
            Ok(_) => {
                tracing::info!("h264_nvenc opens: NVENC available");
                Ok(())
            }
            Err(err) => {
                tracing::info!(reason = %err.reason, "NVENC unavailable");
                Err(err.reason)
            }
        }
    })
}

/// Whether h264_nvenc can actually open here; probed once per process.
pub fn nvenc_available() -> bool {
    nvenc_probe().is_ok()
}

/// Why an encoder choice cannot write a container, or `None` when it can.
pub fn choice_conflict(choice: EncoderChoice, container: Container) -> Option<String> {
    match (choice, container) {
        (EncoderChoice::Auto, _)
        | (EncoderChoice::Nvenc | EncoderChoice::X264, Container::Mp4 | Container::Mov)
        | (EncoderChoice::Vp9, Container::Webm) => None,
        (EncoderChoice::Nvenc | EncoderChoice::X264, Container::Webm) => Some(format!(
            "the {} encoder writes H.264, which webm does not hold; webm is encoded with VP9 \
             (choose the auto or vp9 encoder)",
            if choice == EncoderChoice::Nvenc {
                "nvenc"
            } else {
                "x264"
            }
        )),
        (EncoderChoice::Vp9, Container::Mp4 | Container::Mov) => Some(format!(
            "the vp9 encoder writes webm only, not {container} (choose auto, nvenc or x264)"
        )),
    }
}

/// Checks that the encoder `kind` is compiled into this FFmpeg.
fn ensure_compiled_in(kind: EncoderKind) -> Result<EncoderKind, RenderError> {
    ensure_ffmpeg_init().map_err(|e| RenderError::ffmpeg("initialising FFmpeg", e))?;
    if encoder::find_by_name(kind.codec_name()).is_some() {
        Ok(kind)
    } else {
        Err(RenderError::Encoder {
            encoder: kind,
            reason: format!("{} is not compiled into this FFmpeg", kind.codec_name()),
        })
    }
}

/// Resolves `choice` to an encoder that works on this machine and writes `container`: VP9 for
/// webm, NVENC or x264 for mp4 and mov.
pub fn select_encoder(
    choice: EncoderChoice,
    container: Container,
) -> Result<EncoderKind, RenderError> {
    if let Some(conflict) = choice_conflict(choice, container) {
        return Err(RenderError::Options(conflict));
    }
    if container == Container::Webm {
        return ensure_compiled_in(EncoderKind::Vp9);
    }
    match choice {
        EncoderChoice::Auto => Ok(if nvenc_available() {
            EncoderKind::Nvenc
        } else {
            EncoderKind::X264
        }),
        EncoderChoice::Nvenc => match nvenc_probe() {
            Ok(()) => Ok(EncoderKind::Nvenc),
            Err(reason) => Err(RenderError::Encoder {
                encoder: EncoderKind::Nvenc,
                reason: format!("NVENC is not available on this machine ({reason})"),
            }),
        },
        EncoderChoice::X264 => ensure_compiled_in(EncoderKind::X264),
        EncoderChoice::Vp9 => ensure_compiled_in(EncoderKind::Vp9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_like_the_old_service() {
        assert_eq!(quality_to_cq(90), 5);
        assert_eq!(quality_to_cq(10), 46);
        assert_eq!(quality_to_cq(100), 0);
        assert_eq!(quality_to_cq(50), 26);
        assert!((quality_to_crf(90) - 5.1).abs() < 1e-4);
        assert!((quality_to_crf(10) - 45.9).abs() < 1e-4);
        assert_eq!(quality_to_crf(100), 0.0);
    }

    #[test]
    fn nvenc_is_probed_cleanly_and_forcing_it_names_nvenc() {
        // This machine has no NVIDIA driver; on one that has, the probe must open it.
        let available = nvenc_available();
        assert_eq!(available, nvenc_available(), "probe result is remembered");
        match select_encoder(EncoderChoice::Nvenc, Container::Mp4) {
            Ok(kind) => {
                assert!(available);
                assert_eq!(kind, EncoderKind::Nvenc);
            }
            Err(err) => {
                assert!(!available);
                assert_eq!(err.kind(), "GPU_NOT_AVAILABLE");
                assert!(err.to_string().contains("NVENC is not available"), "{err}");
            }
        }
        let auto = select_encoder(EncoderChoice::Auto, Container::Mov).expect("auto resolves");
        assert_eq!(auto == EncoderKind::Nvenc, available);
    }

    #[test]
    fn vp9_quality_mapping_spans_libvpx_scale() {
        assert_eq!(quality_to_vp9_crf(90), 6);
        assert_eq!(quality_to_vp9_crf(50), 32);
        assert_eq!(quality_to_vp9_crf(10), 57);
        assert_eq!(quality_to_vp9_crf(100), 0);
        assert_eq!(quality_to_vp9_crf(0), 63);
        // Monotonic: a higher quality never means a higher CRF.
        let crfs: Vec<u32> = (10..=100).map(quality_to_vp9_crf).collect();
        assert!(crfs.windows(2).all(|w| w[0] >= w[1]), "{crfs:?}");
    }

    #[test]
    fn tile_columns_keep_tiles_at_least_256_wide() {
        assert_eq!(vp9_tile_columns_log2(320), 0);
        assert_eq!(vp9_tile_columns_log2(640), 1);
        assert_eq!(vp9_tile_columns_log2(1280), 2);
        assert_eq!(vp9_tile_columns_log2(3840), 2);
    }

    #[test]
    fn webm_always_selects_vp9_and_h264_choices_conflict_with_it() {
        for choice in [EncoderChoice::Auto, EncoderChoice::Vp9] {
            assert_eq!(
                select_encoder(choice, Container::Webm).expect("vp9"),
                EncoderKind::Vp9
            );
        }
        for choice in [EncoderChoice::Nvenc, EncoderChoice::X264] {
            let err = select_encoder(choice, Container::Webm).expect_err("h264 into webm");
            assert_eq!(err.kind(), "INVALID_RENDER_OPTIONS");
            assert!(err.to_string().contains("VP9"), "{err}");
        }
        for container in [Container::Mp4, Container::Mov] {
            let err = select_encoder(EncoderChoice::Vp9, container).expect_err("vp9 into mp4");
            assert!(err.to_string().contains(container.as_str()), "{err}");
            assert_eq!(
                select_encoder(EncoderChoice::X264, container).expect("x264"),
                EncoderKind::X264
            );
        }
    }

    #[test]
    fn vp9_opens_at_the_requested_size_and_rate() {
        let settings = EncoderSettings {
            width: 320,
            height: 240,
            fps: Rational(10, 1),
            quality: 90,
            x264_preset: "veryfast".into(),
            global_header: true,
        };
        let mut enc = Vp9::open(&settings).expect("libvpx-vp9 opens");
        assert_eq!(enc.kind(), EncoderKind::Vp9);
        assert_eq!(enc.time_base(), Rational(1, 10));
        assert_eq!(enc.context().id(), codec::Id::VP9);
        let mut packets = Vec::new();
        for n in 0..5 {
            let mut picture = frame::Video::new(format::Pixel::YUV420P, 320, 240);
            for plane in 0..3 {
                picture
                    .data_mut(plane)
                    .fill(if plane == 0 { 40 + n * 30 } else { 128 });
            }
            picture.set_pts(Some(i64::from(n)));
            enc.encode(&picture, &mut packets).expect("encode");
        }
        enc.flush(&mut packets).expect("flush");
        assert_eq!(packets.len(), 5, "one packet per frame");
        assert!(packets[0].is_key(), "the stream starts with a keyframe");
        let odd = EncoderSettings {
            width: 321,
            ..settings
        };
        assert!(Vp9::open(&odd).is_err());
    }

    #[test]
    fn x264_opens_and_rejects_bad_settings() {
        let mut settings = EncoderSettings {
            width: 64,
            height: 48,
            fps: Rational(30000, 1001),
            quality: 90,
            x264_preset: "veryfast".into(),
            global_header: true,
        };
        let enc = X264::open(&settings).expect("libx264 opens");
        assert_eq!(enc.kind(), EncoderKind::X264);
        assert_eq!(enc.time_base(), Rational(1001, 30000));
        settings.x264_preset = "warp9".into();
        let err = X264::open(&settings).err().expect("bad preset rejected");
        assert!(err.reason.contains("warp9"));
        settings.x264_preset = "veryfast".into();
        settings.width = 63;
        assert!(X264::open(&settings).is_err());
    }
}
