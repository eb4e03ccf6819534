//! The output's audio track: stream copy when MP4 can hold the codec, else AAC transcode.
//!
//! The track reads its own demuxer on the input, pulled by the muxer thread up to the video time
//! written so far, so audio never waits on a channel and `write_interleaved` sees both streams.

use std::path::Path;

use ffmpeg::{
    codec, encoder, filter, format, frame, media, ChannelLayout, Dictionary, Packet, Rational,
};
use ffmpeg_next as ffmpeg;

use super::error::RenderError;
use super::probe::open_input;

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

const AAC_BIT_RATE: usize = 128_000;

pub(crate) fn mp4_can_copy(id: codec::Id) -> bool {
    MP4_COPYABLE.contains(&id)
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

struct AacTranscoder {
    decoder: codec::decoder::Audio,
    graph: filter::Graph,
    encoder: encoder::Audio,
    /// 1 / sample rate: encoder pts are sample counts.
    encoder_tb: Rational,
    frame_size: i64,
}

enum Mode {
    Copy,
    Transcode(Box<AacTranscoder>),
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
    /// Adds the audio stream of `input` (if any) to `octx`; call before `write_header`.
    pub(crate) fn add(
        input: &Path,
        octx: &mut format::context::Output,
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
        let (out_index, mode) = if mp4_can_copy(id) {
            let mut ost = octx
                .add_stream(encoder::find(codec::Id::None))
                .map_err(ff("adding the audio stream"))?;
            ost.set_parameters(ist.parameters());
            clear_codec_tag(&mut ost);
            ost.set_time_base(in_tb);
            (ost.index(), Mode::Copy)
        } else {
            let (index, transcoder) = AacTranscoder::new(&ist, octx, global_header)?;
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

    /// Writes the audio up to the video end and drains the AAC encoder.
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

impl AacTranscoder {
    fn new(
        ist: &format::stream::Stream,
        octx: &mut format::context::Output,
        global_header: bool,
    ) -> Result<(usize, Self), RenderError> {
        let decoder = codec::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(ff("opening the audio decoder"))?;
        let aac = encoder::find_by_name("aac").ok_or_else(|| {
            RenderError::ffmpeg("finding the aac encoder", ffmpeg::Error::EncoderNotFound)
        })?;
        let aac_audio = aac.audio().map_err(ff("inspecting the aac encoder"))?;
        let channels = i32::from(decoder.channels()).max(1);
        let layout = if channels <= 2 {
            ChannelLayout::default(channels)
        } else {
            ChannelLayout::STEREO
        };
        let source_rate = decoder.rate() as i32;
        let rate = match aac_audio.rates() {
            Some(mut rates) => {
                if rates.any(|r| r == source_rate) {
                    source_rate
                } else {
                    48_000
                }
            }
            None => source_rate,
        };
        let mut ost = octx
            .add_stream(aac)
            .map_err(ff("adding the audio stream"))?;
        let mut enc = codec::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(ff("creating the aac encoder"))?;
        enc.set_rate(rate);
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_format(format::Sample::F32(format::sample::Type::Planar));
        enc.set_bit_rate(AAC_BIT_RATE);
        let encoder_tb = Rational(1, rate);
        enc.set_time_base(encoder_tb);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as_with(aac, Dictionary::new())
            .map_err(ff("opening the aac encoder"))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(encoder_tb);
        let index = ost.index();

        let in_layout = if decoder.channel_layout().bits() != 0 {
            decoder.channel_layout()
        } else {
            ChannelLayout::default(channels)
        };
        let args = format!(
            "time_base={}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
            ist.time_base(),
            decoder.rate(),
            decoder.format().name(),
            in_layout.bits()
        );
        let mut graph = filter::Graph::new();
        let abuffer = filter::find("abuffer")
            .ok_or_else(|| RenderError::ffmpeg("finding abuffer", ffmpeg::Error::FilterNotFound))?;
        let abuffersink = filter::find("abuffersink").ok_or_else(|| {
            RenderError::ffmpeg("finding abuffersink", ffmpeg::Error::FilterNotFound)
        })?;
        graph
            .add(&abuffer, "in", &args)
            .map_err(ff("creating the audio source filter"))?;
        let mut sink = graph
            .add(&abuffersink, "out", "")
            .map_err(ff("creating the audio sink filter"))?;
        sink.set_sample_format(encoder.format());
        sink.set_channel_layout(encoder.channel_layout());
        sink.set_sample_rate(encoder.rate());
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse("anull"))
            .map_err(ff("linking the audio filters"))?;
        graph
            .validate()
            .map_err(ff("configuring the audio filters"))?;
        let frame_size = i64::from(encoder.frame_size()).max(1);
        if let Some(mut out) = graph.get("out") {
            out.sink().set_frame_size(encoder.frame_size());
        }
        Ok((
            index,
            Self {
                decoder,
                graph,
                encoder,
                encoder_tb,
                frame_size,
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
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            let mut source = self.graph.get("in").ok_or_else(|| {
                RenderError::ffmpeg("finding the audio source", ffmpeg::Error::Bug)
            })?;
            source
                .source()
                .add(&decoded)
                .map_err(ff("filtering audio"))?;
            self.drain_graph(out_index, out_tb, end_s, octx)?;
        }
        Ok(())
    }

    fn drain_graph(
        &mut self,
        out_index: usize,
        out_tb: Rational,
        end_s: Option<f64>,
        octx: &mut format::context::Output,
    ) -> Result<(), RenderError> {
        let mut sink = self
            .graph
            .get("out")
            .ok_or_else(|| RenderError::ffmpeg("finding the audio sink", ffmpeg::Error::Bug))?;
        let sink_tb = sink.sink().time_base();
        let mut filtered = frame::Audio::empty();
        while sink.sink().frame(&mut filtered).is_ok() {
            let pts = filtered
                .pts()
                .map(|p| rescale(p, sink_tb, self.encoder_tb))
                .unwrap_or(0);
            if let Some(end) = end_s {
                let end_samples = (end / f64::from(self.encoder_tb)).round() as i64;
                if pts >= end_samples {
                    continue;
                }
                let keep = end_samples - pts;
                if (filtered.samples() as i64) > keep {
                    filtered.set_samples(keep as usize);
                }
            }
            filtered.set_pts(Some(pts));
            self.encoder
                .send_frame(&filtered)
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
        if let Some(mut source) = self.graph.get("in") {
            source
                .source()
                .flush()
                .map_err(ff("flushing the audio filters"))?;
        }
        self.drain_graph(out_index, out_tb, end_s, octx)?;
        self.encoder
            .send_eof()
            .map_err(ff("flushing the aac encoder"))?;
        self.write_packets(out_index, out_tb, octx)
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
    fn mp4_copy_table() {
        assert!(mp4_can_copy(codec::Id::AAC));
        assert!(mp4_can_copy(codec::Id::OPUS));
        assert!(!mp4_can_copy(codec::Id::PCM_S16LE));
        assert!(!mp4_can_copy(codec::Id::VORBIS));
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
