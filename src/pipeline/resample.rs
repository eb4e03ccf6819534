//! Frame-rate conversion by timestamp: output frame n shows the source frame on screen at n/fps.

use std::ops::Range;

/// Decides which output frames each decoded source frame fills.
///
/// Source frames arrive in presentation order with times relative to the first frame. A source
/// frame stays on screen until the next one starts; output frame `n` (at `n / fps`) shows the
/// frame on screen then. A small tolerance absorbs timestamp rounding (e.g. millisecond time
/// bases) so that equal rates map one to one.
#[derive(Debug, Clone)]
pub(crate) struct FrameRateResampler {
    fps: f64,
    tolerance_s: f64,
    next_output: u64,
}

impl FrameRateResampler {
    pub(crate) fn new(fps: f64) -> Self {
        Self {
            fps,
            tolerance_s: 0.25 / fps,
            next_output: 0,
        }
    }

    /// A new source frame starts at `t` seconds: returns the output frames that the previous
    /// source frame fills (empty for the first frame, or when the previous one is dropped).
    pub(crate) fn next_frame_starts(&mut self, t: f64) -> Range<u64> {
        let start = self.next_output;
        let mut end = start;
        while (end as f64) / self.fps + self.tolerance_s < t {
            end += 1;
        }
        self.next_output = end;
        start..end
    }

    /// The stream ends at `end_s`: returns the output frames that the last source frame fills,
    /// so that the output holds round(end_s × fps) frames.
    pub(crate) fn finish(&mut self, end_s: f64) -> Range<u64> {
        let total = (end_s * self.fps).round().max(0.0) as u64;
        let start = self.next_output;
        let end = total.max(start);
        self.next_output = end;
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(src_times: &[f64], end: f64, fps: f64) -> Vec<u64> {
        let mut r = FrameRateResampler::new(fps);
        let mut per_frame = Vec::new();
        for (i, &t) in src_times.iter().enumerate() {
            let filled = r.next_frame_starts(t);
            if i > 0 {
                per_frame.push(filled.end - filled.start);
            } else {
                assert!(filled.is_empty());
            }
        }
        let last = r.finish(end);
        per_frame.push(last.end - last.start);
        per_frame
    }

    #[test]
    fn same_rate_is_one_to_one_even_with_rounded_timestamps() {
        let times: Vec<f64> = (0..30)
            .map(|i| (i as f64 / 30.0 * 1000.0).round() / 1000.0)
            .collect();
        let c = counts(&times, 1.0, 30.0);
        assert_eq!(c, vec![1; 30]);
    }

    #[test]
    fn upsampling_25_to_30_duplicates_and_totals_60() {
        let times: Vec<f64> = (0..50).map(|i| i as f64 / 25.0).collect();
        let c = counts(&times, 2.0, 30.0);
        assert_eq!(c.iter().sum::<u64>(), 60);
        assert!(c.iter().all(|&n| n == 1 || n == 2));
    }

    #[test]
    fn downsampling_60_to_30_drops_every_other_frame() {
        let times: Vec<f64> = (0..120).map(|i| i as f64 / 60.0).collect();
        let c = counts(&times, 2.0, 30.0);
        assert_eq!(c.iter().sum::<u64>(), 60);
        assert_eq!(&c[..4], &[1, 0, 1, 0]);
    }

    #[test]
    fn output_indices_are_contiguous() {
        let mut r = FrameRateResampler::new(24.0);
        let mut next = 0;
        for i in 0..40 {
            let range = r.next_frame_starts(i as f64 / 29.97);
            assert_eq!(range.start, next);
            next = range.end;
        }
        let last = r.finish(40.0 / 29.97);
        assert_eq!(last.start, next);
        assert_eq!(last.end, (40.0 / 29.97 * 24.0_f64).round() as u64);
    }
}
