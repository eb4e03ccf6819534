//! The output's audio track: stream copy when the container holds the source codec as it is,
//! else a transcode to the container's codec (AAC for MP4 / MOV, Opus at 48 kHz for WebM).
//!
//! The track reads its own demuxer on the input, pulled by the muxer thread up to the video time
//! written so far, so audio never waits on a channel and `write_interleaved` sees both streams.

use std::path::Path;

use ffmpeg::{
    codec, encoder, format, frame, media, software::resampling, ChannelLayout, Dictionary, Packet,
    Rational,
};
use ffmpeg_next as ffmpeg;

use super::error::RenderError;
use super::probe::open_input;
use crate::domain::job::OutputFormat as Container;

/// Codecs the MP4 muxer stores as they are.
const MP4_COPYABLE: [codec::Id; 7] = [
    codec::Id::AAC,
    codec::Id::MP3,
    codec::Id::AC3,
    codec::Id::EAC3,
    codec::Id::OPUS,
    codec::Id::ALAC,
    codec::Id::FLAC,
];

/// Codecs the QuickTime muxer stores as they are (it has no Opus or FLAC).
const MOV_COPYABLE: [codec::Id; 5] = [
    codec::Id::AAC,
    codec::Id::MP3,
    codec::Id::AC3,
    codec::Id::EAC3,
    codec::Id::ALAC,
];

/// WebM's audio is Opus (Vorbis, also legal there, is transcoded so every webm carries Opus).
const WEBM_COPYABLE: [codec::Id; 1] = [codec::Id::OPUS];

const AAC_BIT_RATE: usize = 128_000;
/// Opus is transparent for speech and music at 64 kb/s a channel (128 kb/s stereo).
const OPUS_BIT_RATE_PER_CHANNEL: usize = 64_000;
/// libopus's native rate; the other rates it takes are only for narrower-band sources.
const OPUS_RATE: i32 = 48_000;

/// What the resampler writes and the FIFO queues: planar f32, converted to the encoder's own
/// sample format when a frame is built.
const QUEUE_FORMAT: format::Sample = format::Sample::F32(format::sample::Type::Planar);

/// Chunk size for encoders that take frames of any size.
const VARIABLE_FRAME_SIZE_CHUNK: usize = 1024;

/// Whether `container` stores audio of codec `id` as it is.
pub(crate) fn can_copy(container: Container, id: codec::Id) -> bool {
    match container {
        Container::Mp4 => MP4_COPYABLE.contains(&id),
        Container::Mov => MOV_COPYABLE.contains(&id),
        Container::Webm => WEBM_COPYABLE.contains(&id),
    }
}

/// The audio encoder a container's transcodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AudioCodec {
    /// FFmpeg's native AAC encoder: planar f32, the source rate when AAC has it, else 48 kHz.
    Aac,
    /// libopus: packed f32 at 48 kHz.
    Opus,
}

impl AudioCodec {
    fn for_container(container: Container) -> Self {
        match container {
            Container::Mp4 | Container::Mov => AudioCodec::Aac,
            Container::Webm => AudioCodec::Opus,
        }
    }

    fn encoder_name(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Opus => "libopus",
        }
    }

    fn sample_format(self) -> format::Sample {
        match self {
            AudioCodec::Aac => QUEUE_FORMAT,
            AudioCodec::Opus => format::Sample::F32(format::sample::Type::Packed),
        }
    }

    fn bit_rate(self, channels: i32) -> usize {
        match self {
            AudioCodec::Aac => AAC_BIT_RATE,
            AudioCodec::Opus => {
                OPUS_BIT_RATE_PER_CHANNEL * usize::try_from(channels.max(1)).unwrap_or(1)
            }
        }
    }

    /// The encoder's rate for a source at `source_rate`, given the rates the encoder lists.
    fn rate(self, source_rate: i32, supported: Option<&[i32]>) -> i32 {
        match self {
            AudioCodec::Opus => OPUS_RATE,
            AudioCodec::Aac => match supported {
                Some(rates) if !rates.contains(&source_rate) => 48_000,
                _ => source_rate,
            },
        }
    }
}

/// Clears the source container's codec tag so the MP4 muxer picks its own.
#[allow(unsafe_code)]
fn clear_codec_tag(stream: &mut format::stream::StreamMut) {
    let mut parameters = stream.parameters();
    // SAFETY: `parameters()` wraps the stream's own AVCodecParameters, which is non-null and
    // owned by the output context that `stream` mutably borrows; codec_tag is a plain u32 field.
    unsafe {
        (*parameters.as_mut_ptr()).codec_tag = 0;
    }
}

struct Transcoder {
    decoder: codec::decoder::Audio,
    /// Time base of the decoded frames' timestamps (the input stream's).
    source_tb: Rational,
    converter: SampleConverter,
    encoder: encoder::Audio,
    /// 1 / sample rate: encoder pts are sample counts.
    encoder_tb: Rational,
    frame_size: i64,
}

enum Mode {
    Copy,
    Transcode(Box<Transcoder>),
}

pub(crate) struct AudioTrack {
    ictx: format::context::Input,
    in_index: usize,
    in_tb: Rational,
    out_index: usize,
    out_tb: Rational,
    /// Source time (seconds) that maps to output time 0, shared with the video.
    start_offset_ticks: i64,
    mode: Mode,
    pending: Option<Packet>,
    input_done: bool,
    end_s: Option<f64>,
}

fn ff(context: &str) -> impl FnOnce(ffmpeg::Error) -> RenderError + '_ {
    move |e| RenderError::ffmpeg(context, e)
}

impl AudioTrack {
    /// Adds the audio stream of `input` (if any) to `octx`, a `container` file; call before
    /// `write_header`.
    pub(crate) fn add(
        input: &Path,
        octx: &mut format::context::Output,
        container: Container,
        global_header: bool,
        start_s: f64,
    ) -> Result<Option<Self>, RenderError> {
        let ictx = open_input(input)?;
        let Some(ist) = ictx.streams().best(media::Type::Audio) else {
            return Ok(None);
        };
        let in_index = ist.index();
        let in_tb = ist.time_base();
        let id = ist.parameters().id();
        let (out_index, mode) = if can_copy(container, id) {
            let mut ost = octx
                .add_stream(encoder::find(codec::Id::None))
                .map_err(ff("adding the audio stream"))?;
            ost.set_parameters(ist.parameters());
            clear_codec_tag(&mut ost);
            ost.set_time_base(in_tb);
            (ost.index(), Mode::Copy)
        } else {
            let codec = AudioCodec::for_container(container);
            let (index, transcoder) = Transcoder::new(&ist, octx, codec, global_header)?;
            (index, Mode::Transcode(Box::new(transcoder)))
        };
        tracing::debug!(codec = ?id, copy = matches!(mode, Mode::Copy), "audio track");
        let start_offset_ticks = if f64::from(in_tb) > 0.0 {
            (start_s / f64::from(in_tb)).round() as i64
        } else {
            0
        };
        Ok(Some(Self {
            ictx,
            in_index,
            in_tb,
            out_index,
            out_tb: in_tb,
            start_offset_ticks,
            mode,
            pending: None,
            input_done: false,
            end_s: None,
        }))
    }

    /// The muxer may change the stream time base in `write_header`; read it after.
    pub(crate) fn set_output_time_base(&mut self, tb: Rational) {
        self.out_tb = tb;
    }

    pub(crate) fn out_index(&self) -> usize {
        self.out_index
    }

    fn packet_time(&self, packet: &Packet) -> Option<f64> {
        packet
            .pts()
            .or(packet.dts())
            .map(|ts| (ts - self.start_offset_ticks) as f64 * f64::from(self.in_tb))
    }

    /// Writes the audio that starts before `until_s` (output seconds).
    pub(crate) fn pump(
        &mut self,
        octx: &mut format::context::Output,
        until_s: f64,
    ) -> Result<(), RenderError> {
        loop {
            if self.pending.is_none() {
                if self.input_done {
                    return Ok(());
                }
                let mut packet = Packet::empty();
                match packet.read(&mut self.ictx) {
                    Ok(()) => {
                        if packet.stream() == self.in_index {
                            self.pending = Some(packet);
                        }
                        continue;
                    }
                    Err(ffmpeg::Error::Eof) => {
                        self.input_done = true;
                        return Ok(());
                    }
                    Err(err) => {
                        tracing::warn!(%err, "audio demuxing stopped early");
                        self.input_done = true;
                        return Ok(());
                    }
                }
            }
            let Some(packet) = self.pending.take() else {
                continue;
            };
            let t = self.packet_time(&packet);
            if let Some(t) = t {
                if t >= until_s {
                    self.pending = Some(packet);
                    return Ok(());
                }
                if self.end_s.is_some_and(|end| t >= end) {
                    continue;
                }
            }
            self.write_packet(packet, octx)?;
        }
    }

    fn write_packet(
        &mut self,
        mut packet: Packet,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        let offset = self.start_offset_ticks;
        packet.set_pts(packet.pts().map(|v| v - offset));
        packet.set_dts(packet.dts().map(|v| v - offset));
        match &mut self.mode {
            Mode::Copy => {
                packet.set_stream(self.out_index);
                packet.set_position(-1);
                packet.rescale_ts(self.in_tb, self.out_tb);
                packet
                    .write_interleaved(octx)
                    .map_err(ff("writing an audio packet"))
            }
            Mode::Transcode(t) => t.decode(&packet, self.out_index, self.out_tb, self.end_s, octx),
        }
    }

    /// Writes the audio up to the video end and drains the audio encoder.
    pub(crate) fn finish(
        &mut self,
        octx: &mut format::context::Output,
        video_end_s: f64,
    ) -> Result<(), RenderError> {
        self.end_s = Some(video_end_s);
        self.pump(octx, video_end_s)?;
        if let Mode::Transcode(t) = &mut self.mode {
            t.finish(self.out_index, self.out_tb, Some(video_end_s), octx)?;
        }
        Ok(())
    }
}

impl Transcoder {
    fn new(
        ist: &format::stream::Stream,
        octx: &mut format::context::Output,
        target: AudioCodec,
        global_header: bool,
    ) -> Result<(usize, Self), RenderError> {
        let decoder = codec::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(ff("opening the audio decoder"))?;
        let name = target.encoder_name();
        let fail = |what: &str| {
            let context = format!("{what} the {name} encoder");
            move |e| RenderError::ffmpeg(context, e)
        };
        let codec = encoder::find_by_name(name)
            .ok_or(ffmpeg::Error::EncoderNotFound)
            .map_err(fail("finding"))?;
        let codec_audio = codec.audio().map_err(fail("inspecting"))?;
        let channels = i32::from(decoder.channels()).max(1);
        let layout = if channels <= 2 {
            ChannelLayout::default(channels)
        } else {
            ChannelLayout::STEREO
        };
        let supported: Option<Vec<i32>> = codec_audio.rates().map(|rates| rates.collect());
        let rate = target.rate(decoder.rate() as i32, supported.as_deref());
        let mut ost = octx
            .add_stream(codec)
            .map_err(ff("adding the audio stream"))?;
        let mut enc = codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(fail("creating"))?;
        enc.set_rate(rate);
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_format(target.sample_format());
        enc.set_bit_rate(target.bit_rate(layout.channels()));
        let encoder_tb = Rational(1, rate);
        enc.set_time_base(encoder_tb);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as_with(codec, Dictionary::new())
            .map_err(fail("opening"))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(encoder_tb);
        let index = ost.index();

        // Encoders without a fixed frame size take any; AAC's is 1024, Opus's 960 (20 ms).
        let frame_size = match encoder.frame_size() {
            0 => VARIABLE_FRAME_SIZE_CHUNK,
            n => n as usize,
        };
        let converter =
            SampleConverter::new(layout, rate as u32, frame_size, target.sample_format());
        Ok((
            index,
            Self {
                decoder,
                source_tb: ist.time_base(),
                converter,
                encoder,
                encoder_tb,
                frame_size: frame_size as i64,
            },
        ))
    }

    fn decode(
        &mut self,
        packet: &Packet,
        out_index: usize,
        out_tb: Rational,
        end_s: Option<f64>,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        if let Err(err) = self.decoder.send_packet(packet) {
            // One bad audio packet should not fail a video render.
            tracing::warn!(%err, "skipping an undecodable audio packet");
            return Ok(());
        }
        self.drain_decoder(out_index, out_tb, end_s, octx)
    }

    fn drain_decoder(
        &mut self,
        out_index: usize,
        out_tb: Rational,
        end_s: Option<f64>,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        let mut decoded = frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let start_pts = decoded
                .timestamp()
                .map(|ts| rescale(ts, self.source_tb, self.encoder_tb))
                .unwrap_or(0);
            self.converter.convert(&mut decoded, start_pts)?;
            self.encode_ready(false, out_index, out_tb, end_s, octx)?;
        }
        Ok(())
    }

    /// Encodes the whole frames queued, and at the end of the stream the last partial one too.
    fn encode_ready(
        &mut self,
        end_of_stream: bool,
        out_index: usize,
        out_tb: Rational,
        end_s: Option<f64>,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        let end_samples = end_s.map(|end| (end / f64::from(self.encoder_tb)).round() as i64);
        while let Some(mut chunk) = self.converter.fifo.pop(end_of_stream) {
            if let Some(end) = end_samples {
                if chunk.pts >= end {
                    continue;
                }
                chunk.truncate(usize::try_from(end - chunk.pts).unwrap_or(usize::MAX));
            }
            let audio = chunk.to_frame(
                self.converter.layout,
                self.converter.rate,
                self.converter.encoder_format,
            );
            self.encoder
                .send_frame(&audio)
                .map_err(ff("encoding audio"))?;
            self.write_packets(out_index, out_tb, octx)?;
        }
        Ok(())
    }

    fn write_packets(
        &mut self,
        out_index: usize,
        out_tb: Rational,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            if packet.duration() <= 0 {
                packet.set_duration(self.frame_size);
            }
            packet.set_stream(out_index);
            packet.rescale_ts(self.encoder_tb, out_tb);
            packet
                .write_interleaved(octx)
                .map_err(ff("writing an audio packet"))?;
        }
        Ok(())
    }

    fn finish(
        &mut self,
        out_index: usize,
        out_tb: Rational,
        end_s: Option<f64>,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        self.decoder
            .send_eof()
            .map_err(ff("flushing the audio decoder"))?;
        self.drain_decoder(out_index, out_tb, end_s, octx)?;
        self.converter.flush()?;
        self.encode_ready(true, out_index, out_tb, end_s, octx)?;
        self.encoder
            .send_eof()
            .map_err(ff("flushing the audio encoder"))?;
        self.write_packets(out_index, out_tb, octx)
    }
}

/// What the resampler was built for: a decoded frame that differs needs a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceFormat {
    format: format::Sample,
    layout: ChannelLayout,
    rate: u32,
}

impl SourceFormat {
    fn of(decoded: &frame::Audio) -> Self {
        let layout = decoded.channel_layout();
        let layout = if layout.bits() != 0 {
            layout
        } else {
            // Sources without a layout (raw PCM in some containers) get FFmpeg's default order.
            ChannelLayout::default(i32::from(decoded.channels()).max(1))
        };
        Self {
            format: decoded.format(),
            layout,
            rate: decoded.rate(),
        }
    }
}

/// Decoded audio → planar f32 at the encoder's rate and layout (libswresample), queued in a
/// [`SampleFifo`] that cuts it into encoder frames of the encoder's sample format.
struct SampleConverter {
    resampler: Option<(SourceFormat, resampling::Context)>,
    layout: ChannelLayout,
    rate: u32,
    /// The sample format encoder frames are built in (planar or packed f32).
    encoder_format: format::Sample,
    fifo: SampleFifo,
}

impl SampleConverter {
    fn new(
        layout: ChannelLayout,
        rate: u32,
        frame_size: usize,
        encoder_format: format::Sample,
    ) -> Self {
        Self {
            resampler: None,
            layout,
            rate,
            encoder_format,
            fifo: SampleFifo::new(
                usize::try_from(layout.channels()).unwrap_or(1).max(1),
                frame_size,
            ),
        }
    }

    /// Converts one decoded frame; `start_pts` (encoder time base) places the first frame only:
    /// later audio follows on sample for sample, so jittery source timestamps (millisecond time
    /// bases) cannot open gaps or overlaps.
    fn convert(&mut self, decoded: &mut frame::Audio, start_pts: i64) -> Result<(), RenderError> {
        if decoded.samples() == 0 {
            return Ok(());
        }
        let source = SourceFormat::of(decoded);
        if self.resampler.as_ref().map(|(s, _)| *s) != Some(source) {
            if self.resampler.is_some() {
                tracing::debug!(?source, "audio format changed mid-stream; new resampler");
                self.flush()?;
            }
            let context = resampling::Context::get(
                source.format,
                source.layout,
                source.rate,
                QUEUE_FORMAT,
                self.layout,
                self.rate,
            )
            .map_err(ff("opening the audio resampler"))?;
            self.resampler = Some((source, context));
        }
        let Some((_, context)) = self.resampler.as_mut() else {
            return Ok(());
        };
        // swresample checks each frame against the layout it was opened with.
        decoded.set_channel_layout(source.layout);
        let capacity = output_capacity(context, decoded.samples());
        let mut converted = frame::Audio::new(QUEUE_FORMAT, capacity, self.layout);
        converted.set_rate(self.rate);
        context
            .run(decoded, &mut converted)
            .map_err(ff("resampling audio"))?;
        self.fifo.start_at(start_pts);
        push_frame(&mut self.fifo, &converted)
    }

    /// Drains the samples the resampler holds back (its filter delay) into the FIFO.
    fn flush(&mut self) -> Result<(), RenderError> {
        let Some((_, mut context)) = self.resampler.take() else {
            return Ok(());
        };
        loop {
            let capacity = output_capacity(&context, 0);
            let mut converted = frame::Audio::new(QUEUE_FORMAT, capacity, self.layout);
            converted.set_rate(self.rate);
            context
                .flush(&mut converted)
                .map_err(ff("flushing the audio resampler"))?;
            if converted.samples() == 0 {
                return Ok(());
            }
            push_frame(&mut self.fifo, &converted)?;
        }
    }
}

/// Room for everything one `swr_convert` call may return: the buffered delay plus the input
/// at the output rate, with the slack libswresample itself allocates.
fn output_capacity(context: &resampling::Context, input_samples: usize) -> usize {
    let delay = context.delay().map_or(0, |d| d.output.max(0) as u64);
    let input_rate = u64::from(context.input().rate.max(1));
    let output_rate = u64::from(context.output().rate);
    let scaled = (input_samples as u64 * output_rate).div_ceil(input_rate);
    usize::try_from(delay + scaled + 16).unwrap_or(usize::MAX)
}

fn push_frame(fifo: &mut SampleFifo, converted: &frame::Audio) -> Result<(), RenderError> {
    if converted.samples() == 0 {
        return Ok(());
    }
    let planes: Vec<&[f32]> = (0..converted.planes())
        .map(|ch| converted.plane::<f32>(ch))
        .collect();
    fifo.push(&planes).map_err(|err| {
        tracing::error!(%err, "resampler output does not match the encoder");
        RenderError::ffmpeg(
            format!("queueing resampled audio ({err})"),
            ffmpeg::Error::Bug,
        )
    })
}

/// The resampler's output did not fit the FIFO's channel shape.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum QueueSamplesError {
    #[error("got {got} audio planes for {expected} channels")]
    ChannelCount { expected: usize, got: usize },
    #[error("audio planes differ in length ({first} and {other} samples)")]
    UnevenPlanes { first: usize, other: usize },
}

/// Planar f32 samples waiting to be cut into encoder frames of `frame_size` samples.
///
/// Pts are sample counts in the encoder time base (1 / sample rate): the first frame starts at
/// the pts given to [`SampleFifo::start_at`] and each next one where the previous one ended,
/// so frames never overlap or leave gaps.
#[derive(Debug)]
struct SampleFifo {
    planes: Vec<Vec<f32>>,
    frame_size: usize,
    next_pts: Option<i64>,
}

/// One encoder frame's worth of planar samples.
#[derive(Debug, Clone, PartialEq)]
struct PlanarChunk {
    pts: i64,
    planes: Vec<Vec<f32>>,
}

impl SampleFifo {
    fn new(channels: usize, frame_size: usize) -> Self {
        Self {
            planes: vec![Vec::with_capacity(frame_size * 2); channels],
            frame_size: frame_size.max(1),
            next_pts: None,
        }
    }

    /// Starts the timeline at `pts` unless it has started already.
    fn start_at(&mut self, pts: i64) {
        self.next_pts.get_or_insert(pts);
    }

    fn queued(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    /// Appends one slice per channel, all of the same length.
    fn push(&mut self, planes: &[&[f32]]) -> Result<(), QueueSamplesError> {
        if planes.len() != self.planes.len() {
            return Err(QueueSamplesError::ChannelCount {
                expected: self.planes.len(),
                got: planes.len(),
            });
        }
        let first = planes.first().map_or(0, |p| p.len());
        if let Some(other) = planes.iter().map(|p| p.len()).find(|&n| n != first) {
            return Err(QueueSamplesError::UnevenPlanes { first, other });
        }
        for (queue, samples) in self.planes.iter_mut().zip(planes) {
            queue.extend_from_slice(samples);
        }
        Ok(())
    }

    /// The next whole frame; at the end of the stream also the last, shorter one.
    fn pop(&mut self, end_of_stream: bool) -> Option<PlanarChunk> {
        let queued = self.queued();
        let take = if queued >= self.frame_size {
            self.frame_size
        } else if end_of_stream && queued > 0 {
            queued
        } else {
            return None;
        };
        let pts = *self.next_pts.get_or_insert(0);
        self.next_pts = Some(pts + take as i64);
        let planes = self
            .planes
            .iter_mut()
            .map(|queue| queue.drain(..take).collect())
            .collect();
        Some(PlanarChunk { pts, planes })
    }
}

impl PlanarChunk {
    fn samples(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    fn truncate(&mut self, samples: usize) {
        for plane in &mut self.planes {
            plane.truncate(samples);
        }
    }

    /// The chunk as an encoder frame in `sample_format`: planar f32 as it is, packed f32 with
    /// the channels interleaved.
    fn to_frame(
        &self,
        layout: ChannelLayout,
        rate: u32,
        sample_format: format::Sample,
    ) -> frame::Audio {
        let mut audio = frame::Audio::new(sample_format, self.samples(), layout);
        audio.set_rate(rate);
        audio.set_pts(Some(self.pts));
        if sample_format.is_planar() {
            for (ch, plane) in self.planes.iter().enumerate().take(audio.planes()) {
                for (dst, src) in audio.plane_mut::<f32>(ch).iter_mut().zip(plane) {
                    *dst = *src;
                }
            }
        } else {
            let channels = self.planes.len().max(1);
            let bytes = audio.data_mut(0);
            for (ch, plane) in self.planes.iter().enumerate() {
                for (i, sample) in plane.iter().enumerate() {
                    let at = (i * channels + ch) * 4;
                    if let Some(dst) = bytes.get_mut(at..at + 4) {
                        dst.copy_from_slice(&sample.to_ne_bytes());
                    }
                }
            }
        }
        audio
    }
}

fn rescale(value: i64, from: Rational, to: Rational) -> i64 {
    use ffmpeg::Rescale;
    value.rescale(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tables_per_container() {
        assert!(can_copy(Container::Mp4, codec::Id::AAC));
        assert!(can_copy(Container::Mp4, codec::Id::OPUS));
        assert!(!can_copy(Container::Mp4, codec::Id::PCM_S16LE));
        assert!(!can_copy(Container::Mp4, codec::Id::VORBIS));
        assert!(can_copy(Container::Mov, codec::Id::AAC));
        assert!(can_copy(Container::Mov, codec::Id::ALAC));
        assert!(!can_copy(Container::Mov, codec::Id::OPUS));
        assert!(!can_copy(Container::Mov, codec::Id::FLAC));
        assert!(can_copy(Container::Webm, codec::Id::OPUS));
        assert!(!can_copy(Container::Webm, codec::Id::AAC));
        assert!(!can_copy(Container::Webm, codec::Id::VORBIS));
    }

    #[test]
    fn transcode_targets_per_container() {
        assert_eq!(AudioCodec::for_container(Container::Mp4), AudioCodec::Aac);
        assert_eq!(AudioCodec::for_container(Container::Mov), AudioCodec::Aac);
        assert_eq!(AudioCodec::for_container(Container::Webm), AudioCodec::Opus);
        // Opus always runs at 48 kHz; AAC keeps a rate it has, else 48 kHz.
        assert_eq!(
            AudioCodec::Opus.rate(44_100, Some(&[48_000, 24_000])),
            48_000
        );
        assert_eq!(
            AudioCodec::Aac.rate(44_100, Some(&[48_000, 44_100])),
            44_100
        );
        assert_eq!(
            AudioCodec::Aac.rate(11_111, Some(&[48_000, 44_100])),
            48_000
        );
        assert_eq!(AudioCodec::Aac.rate(22_050, None), 22_050);
        assert_eq!(AudioCodec::Opus.bit_rate(2), 128_000);
        assert_eq!(AudioCodec::Opus.bit_rate(1), 64_000);
        assert_eq!(AudioCodec::Aac.bit_rate(1), AAC_BIT_RATE);
        assert!(!AudioCodec::Opus.sample_format().is_planar());
        assert!(AudioCodec::Aac.sample_format().is_planar());
        // The encoders are there and take those sample formats and rates.
        crate::pipeline::probe::ensure_ffmpeg_init().expect("ffmpeg");
        for target in [AudioCodec::Aac, AudioCodec::Opus] {
            let codec = encoder::find_by_name(target.encoder_name()).expect("encoder");
            let audio = codec.audio().expect("audio encoder");
            let formats: Vec<_> = audio.formats().expect("formats").collect();
            assert!(formats.contains(&target.sample_format()), "{target:?}");
        }
    }

    /// A ramp per channel (channel c holds `(c + 1) * i` at sample i) to check order and gaps.
    fn ramp(channels: usize, start: usize, len: usize) -> Vec<Vec<f32>> {
        (0..channels)
            .map(|c| (start..start + len).map(|i| ((c + 1) * i) as f32).collect())
            .collect()
    }

    fn push_ramp(fifo: &mut SampleFifo, start: usize, len: usize) {
        let planes = ramp(2, start, len);
        let slices: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        fifo.push(&slices).expect("push");
    }

    #[test]
    fn fifo_cuts_whole_frames_then_the_partial_last_one() {
        let mut fifo = SampleFifo::new(2, 1024);
        fifo.start_at(480);
        let mut pushed = 0;
        let mut frames = Vec::new();
        for len in [700, 700, 1000, 333] {
            push_ramp(&mut fifo, pushed, len);
            pushed += len;
            // Later timestamps do not move a timeline that has started.
            fifo.start_at(99_999);
            while let Some(chunk) = fifo.pop(false) {
                frames.push(chunk);
            }
        }
        assert_eq!(pushed, 2733);
        assert_eq!(
            frames.iter().map(PlanarChunk::samples).collect::<Vec<_>>(),
            [1024, 1024]
        );
        assert_eq!(fifo.queued(), 685);
        assert_eq!(
            fifo.pop(false),
            None,
            "a partial frame waits for more audio"
        );
        let last = fifo.pop(true).expect("the last partial frame");
        assert_eq!(last.samples(), 685);
        frames.push(last);
        assert_eq!(fifo.pop(true), None);
        assert_eq!(fifo.queued(), 0);

        assert_eq!(
            frames.iter().map(|f| f.pts).collect::<Vec<_>>(),
            [480, 1504, 2528]
        );
        let mut next = 480;
        for chunk in &frames {
            assert_eq!(chunk.pts, next, "no gap or overlap");
            next += chunk.samples() as i64;
        }
        let expected = ramp(2, 0, pushed);
        for (c, want) in expected.iter().enumerate() {
            let got: Vec<f32> = frames
                .iter()
                .flat_map(|f| f.planes[c].iter().copied())
                .collect();
            assert_eq!(&got, want, "channel {c} comes out in order, whole");
        }
    }

    #[test]
    fn fifo_exact_multiple_leaves_no_empty_frame() {
        let mut fifo = SampleFifo::new(2, 4);
        push_ramp(&mut fifo, 0, 8);
        let a = fifo.pop(true).expect("first");
        let b = fifo.pop(true).expect("second");
        assert_eq!((a.pts, a.samples(), b.pts, b.samples()), (0, 4, 4, 4));
        assert_eq!(b.planes[1], vec![8.0, 10.0, 12.0, 14.0]);
        assert_eq!(fifo.pop(true), None);
    }

    #[test]
    fn fifo_rejects_planes_that_do_not_fit() {
        let mut fifo = SampleFifo::new(2, 1024);
        let one = [0.0f32; 3];
        let two = [0.0f32; 2];
        assert_eq!(
            fifo.push(&[&one]),
            Err(QueueSamplesError::ChannelCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            fifo.push(&[&one, &two]),
            Err(QueueSamplesError::UnevenPlanes { first: 3, other: 2 })
        );
        assert_eq!(fifo.queued(), 0);
    }

    #[test]
    fn chunk_truncates_and_becomes_an_encoder_frame() {
        let mut chunk = PlanarChunk {
            pts: 960,
            planes: ramp(2, 0, 10),
        };
        chunk.truncate(6);
        let audio = chunk.to_frame(ChannelLayout::STEREO, 48_000, QUEUE_FORMAT);
        assert_eq!(audio.samples(), 6);
        assert_eq!(audio.pts(), Some(960));
        assert_eq!(audio.rate(), 48_000);
        assert_eq!(audio.format(), QUEUE_FORMAT);
        assert_eq!(audio.plane::<f32>(0), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(audio.plane::<f32>(1), &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);

        // Packed f32 (Opus): the channels interleaved in one plane, L R L R …
        let packed = AudioCodec::Opus.sample_format();
        let audio = chunk.to_frame(ChannelLayout::STEREO, 48_000, packed);
        assert_eq!((audio.samples(), audio.format()), (6, packed));
        let interleaved: Vec<f32> = audio.data(0)[..6 * 2 * 4]
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(
            interleaved,
            [0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 8.0, 5.0, 10.0]
        );
    }

    /// Interleaved s16 stereo frames: left = a ramp, right = its negation.
    fn s16_frames(rate: u32, lengths: &[usize], layout: ChannelLayout) -> Vec<frame::Audio> {
        let mut start = 0usize;
        lengths
            .iter()
            .map(|&len| {
                let mut audio = frame::Audio::new(
                    format::Sample::I16(format::sample::Type::Packed),
                    len,
                    ChannelLayout::STEREO,
                );
                audio.set_rate(rate);
                audio.set_channel_layout(layout);
                let data = audio.data_mut(0);
                for i in 0..len {
                    let left = ((start + i) % 2000) as i16 * 10;
                    data[i * 4..i * 4 + 2].copy_from_slice(&left.to_le_bytes());
                    data[i * 4 + 2..i * 4 + 4].copy_from_slice(&(-left).to_le_bytes());
                }
                start += len;
                audio
            })
            .collect()
    }

    fn convert_all(
        converter: &mut SampleConverter,
        frames: &mut [frame::Audio],
        first_pts: i64,
    ) -> Vec<PlanarChunk> {
        let mut out = Vec::new();
        for audio in frames.iter_mut() {
            converter.convert(audio, first_pts).expect("convert");
            while let Some(chunk) = converter.fifo.pop(false) {
                out.push(chunk);
            }
        }
        converter.flush().expect("flush");
        while let Some(chunk) = converter.fifo.pop(true) {
            out.push(chunk);
        }
        out
    }

    #[test]
    fn converter_same_rate_keeps_every_sample() {
        // No layout on the frames, as with raw PCM from some containers.
        let mut frames = s16_frames(44_100, &[1000, 1000, 441], ChannelLayout::empty());
        let mut converter = SampleConverter::new(ChannelLayout::STEREO, 44_100, 1024, QUEUE_FORMAT);
        let chunks = convert_all(&mut converter, &mut frames, 0);
        assert_eq!(
            chunks.iter().map(PlanarChunk::samples).collect::<Vec<_>>(),
            [1024, 1024, 393]
        );
        assert_eq!(
            chunks.iter().map(|c| c.pts).collect::<Vec<_>>(),
            [0, 1024, 2048]
        );
        let left: Vec<f32> = chunks.iter().flat_map(|c| c.planes[0].clone()).collect();
        let right: Vec<f32> = chunks.iter().flat_map(|c| c.planes[1].clone()).collect();
        for (i, (l, r)) in left.iter().zip(&right).enumerate() {
            let want = f32::from((i % 2000) as i16 * 10) / 32768.0;
            assert!((l - want).abs() < 1e-6, "left sample {i}: {l} vs {want}");
            assert!(
                (r + want).abs() < 1e-6,
                "right sample {i}: {r} vs {}",
                -want
            );
        }
    }

    #[test]
    fn converter_resampling_flushes_the_delay() {
        // One second at 44.1 kHz becomes one second at 48 kHz, delay included.
        let mut lengths = vec![1000; 44];
        lengths.push(100);
        let mut frames = s16_frames(44_100, &lengths, ChannelLayout::STEREO);
        let mut converter = SampleConverter::new(ChannelLayout::STEREO, 48_000, 1024, QUEUE_FORMAT);
        let chunks = convert_all(&mut converter, &mut frames, 4800);
        let total: usize = chunks.iter().map(PlanarChunk::samples).sum();
        // Without the flush some 17 samples of resampler delay would be missing.
        assert!((47_998..=48_002).contains(&total), "{total} samples");
        let (last, whole) = chunks.split_last().expect("chunks");
        assert!(whole.iter().all(|c| c.samples() == 1024));
        assert!(last.samples() <= 1024 && last.samples() > 0);
        let mut next = 4800;
        for chunk in &chunks {
            assert_eq!(chunk.pts, next);
            next += chunk.samples() as i64;
        }
    }

    #[test]
    fn rescale_rounds_between_time_bases() {
        assert_eq!(
            rescale(90_000, Rational(1, 90_000), Rational(1, 48_000)),
            48_000
        );
        assert_eq!(
            rescale(1024, Rational(1, 44_100), Rational(1, 44_100)),
            1024
        );
    }
}
