//! The decoder thread: demux + decode the video stream, resample to the output rate.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ffmpeg::{frame, media, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::error::{MediaError, RenderError};
use super::probe::{open_input, open_video_decoder, stream_fps};
use super::resample::FrameRateResampler;
use super::Stop;

/// One frame for the stage, at output media time `t`.
pub(crate) struct StageInput {
    pub(crate) frame: Arc<frame::Video>,
    pub(crate) t: f64,
    /// Filled in by the stage's preparation thread, when there is one.
    pub(crate) prepared: Option<super::Prepared>,
}

pub(crate) struct DecodeSummary {
    pub(crate) busy: Duration,
    pub(crate) source_frames: u64,
}

struct Held {
    frame: Arc<frame::Video>,
    t: f64,
    duration: f64,
}

struct FrameSender<'a> {
    tx: &'a Sender<StageInput>,
    out_fps: Rational,
    stop: &'a Stop<'a>,
    /// Time spent waiting for the stage to take frames (not decoder work).
    blocked: std::cell::Cell<Duration>,
}

impl FrameSender<'_> {
    fn send(
        &self,
        frame: &Arc<frame::Video>,
        outputs: std::ops::Range<u64>,
    ) -> Result<(), RenderError> {
        let (num, den) = (self.out_fps.numerator(), self.out_fps.denominator());
        for n in outputs {
            self.stop.check()?;
            let t = (n as f64) * f64::from(den) / f64::from(num);
            let waiting = Instant::now();
            let sent = self
                .tx
                .send(StageInput {
                    frame: Arc::clone(frame),
                    t,
                    prepared: None,
                })
                // The stage thread is gone: it failed or stopped; its result says why.
                .map_err(|_| RenderError::Cancelled);
            self.blocked.set(self.blocked.get() + waiting.elapsed());
            sent?;
        }
        Ok(())
    }
}

/// Decodes `input` and sends each output frame (resampled to `out_fps`) to `tx`.
/// `start_s` is the source time that maps to output time 0.
pub(crate) fn run_decoder(
    input: &Path,
    out_fps: Rational,
    start_s: f64,
    tx: &Sender<StageInput>,
    stop: &Stop<'_>,
) -> Result<DecodeSummary, RenderError> {
    let started = Instant::now();
    let mut ictx = open_input(input)?;
    let stream =
        ictx.streams()
            .best(media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream {
                path: input.to_path_buf(),
            })?;
    let index = stream.index();
    let tb = f64::from(stream.time_base());
    let source_frame_s = stream_fps(&stream).map_or(1.0 / 25.0, |r| 1.0 / f64::from(r));
    let mut decoder = open_video_decoder(input, &stream)?;

    let sender = FrameSender {
        tx,
        out_fps,
        stop,
        blocked: std::cell::Cell::new(Duration::ZERO),
    };
    let mut resampler = FrameRateResampler::new(f64::from(out_fps));
    let mut held: Option<Held> = None;
    let mut decoded = 0u64;
    let decode_error = |frame: u64, source: ffmpeg::Error| MediaError::Decode {
        path: input.to_path_buf(),
        frame,
        source,
    };

    let mut on_frame = |frame: frame::Video, decoded: &mut u64, held: &mut Option<Held>| {
        *decoded += 1;
        let previous_end = held.as_ref().map_or(0.0, |h| h.t + h.duration);
        let t = match frame.timestamp() {
            Some(ts) => ts as f64 * tb - start_s,
            None => previous_end,
        };
        let t = held.as_ref().map_or(t.max(0.0), |h| t.max(h.t));
        let packet_duration = frame.packet().duration;
        let duration = if packet_duration > 0 {
            packet_duration as f64 * tb
        } else {
            source_frame_s
        };
        let frame = Arc::new(frame);
        let outputs = resampler.next_frame_starts(t);
        match held.as_ref() {
            Some(previous) => sender.send(&previous.frame, outputs)?,
            // Output time before the first frame shows the first frame.
            None => sender.send(&frame, outputs)?,
        }
        *held = Some(Held { frame, t, duration });
        Ok::<(), RenderError>(())
    };

    let mut packet = Packet::empty();
    let mut ended = false;
    while !ended {
        stop.check()?;
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(err) if decoded > 0 => {
                tracing::warn!(input = %input.display(), %err, frames = decoded, "input ends early (truncated?); rendering the frames read");
                break;
            }
            Err(err) => return Err(decode_error(0, err).into()),
        }
        if packet.stream() != index {
            continue;
        }
        if let Err(err) = decoder.send_packet(&packet) {
            return Err(decode_error(decoded, err).into());
        }
        loop {
            let mut frame = frame::Video::empty();
            match decoder.receive_frame(&mut frame) {
                Ok(()) => on_frame(frame, &mut decoded, &mut held)?,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof) => {
                    ended = true;
                    break;
                }
                Err(err) => return Err(decode_error(decoded, err).into()),
            }
        }
    }
    if let Err(err) = decoder.send_eof() {
        tracing::debug!(%err, "decoder flush refused");
    }
    loop {
        let mut frame = frame::Video::empty();
        match decoder.receive_frame(&mut frame) {
            Ok(()) => on_frame(frame, &mut decoded, &mut held)?,
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => break,
            Err(err) => return Err(decode_error(decoded, err).into()),
        }
    }
    let Some(last) = held else {
        return Err(MediaError::NoFrames {
            path: input.to_path_buf(),
        }
        .into());
    };
    let outputs = resampler.finish(last.t + last.duration);
    sender.send(&last.frame, outputs)?;
    Ok(DecodeSummary {
        busy: started.elapsed().saturating_sub(sender.blocked.get()),
        source_frames: decoded,
    })
}

/// The source frame on screen at `t` seconds (the last frame whose timestamp is ≤ t, or the first
/// frame for t before it). Seeks to the keyframe before `t`, then decodes forward.
pub fn decode_frame_at(input: &Path, t: f64) -> Result<frame::Video, MediaError> {
    let mut ictx = open_input(input)?;
    let stream =
        ictx.streams()
            .best(media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream {
                path: input.to_path_buf(),
            })?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut decoder = open_video_decoder(input, &stream)?;
    let target = (t.max(0.0) * 1_000_000.0) as i64;
    // A failed seek (unseekable input) just decodes from the start.
    let _ = ictx.seek(target, ..target);
    let to_seconds =
        |pts: i64| pts as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator());
    let mut best: Option<frame::Video> = None;
    let mut decoded = frame::Video::empty();
    let mut frame_no = 0u64;
    let mut receive = |decoder: &mut ffmpeg::decoder::Video,
                       best: &mut Option<frame::Video>,
                       count: &mut u64|
     -> bool {
        while decoder.receive_frame(&mut decoded).is_ok() {
            *count += 1;
            let ts = decoded
                .timestamp()
                .or(decoded.pts())
                .map(to_seconds)
                .unwrap_or(0.0);
            if best.is_none() || ts <= t + 1e-6 {
                *best = Some(decoded.clone());
            }
            if ts > t + 1e-6 {
                return true;
            }
        }
        false
    };
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        decoder
            .send_packet(&packet)
            .map_err(|source| MediaError::Decode {
                path: input.to_path_buf(),
                frame: frame_no,
                source,
            })?;
        if receive(&mut decoder, &mut best, &mut frame_no) {
            return best.ok_or_else(|| MediaError::NoFrames {
                path: input.to_path_buf(),
            });
        }
    }
    let _ = decoder.send_eof();
    receive(&mut decoder, &mut best, &mut frame_no);
    best.ok_or_else(|| MediaError::NoFrames {
        path: input.to_path_buf(),
    })
}
