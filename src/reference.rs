//! Closeness to the reference renderer: the frames the editor's own preview renderer drew
//! (`shared/motiontext/reference/<sample>/frame_<t>.png`, 1280×720 on #808080), and how a frame
//! of ours scores against one — SSIM of luma and mean colour difference over the caption region
//! (the union of both images' non-background pixels), PSNR of the whole frame.

use std::path::{Path, PathBuf};

use crate::imagecmp::{compare, union, Image};

/// The background the reference frames were drawn on.
pub const BACKGROUND: [u8; 3] = [128, 128, 128];
/// The target for every frame's caption SSIM.
pub const TARGET_SSIM: f64 = 0.95;

/// One reference frame: the sample it shows, at what media time, from which scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceFrame {
    pub sample: String,
    pub t: f64,
    pub scenario: PathBuf,
    pub png: PathBuf,
}

/// Every reference frame under `motiontext` (the `shared/motiontext` folder), sorted by sample
/// and time.
pub fn reference_frames(motiontext: &Path) -> std::io::Result<Vec<ReferenceFrame>> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(motiontext.join("reference"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Some(sample) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let scenario = if sample == "v2_basic_v20" {
            motiontext.join("samples/v2/basic_v20.json")
        } else {
            motiontext.join(format!("samples/{sample}.json"))
        };
        let mut frames: Vec<(f64, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|png| {
                let t = png
                    .file_stem()?
                    .to_str()?
                    .strip_prefix("frame_")?
                    .parse::<f64>()
                    .ok()?;
                Some((t, png))
            })
            .collect();
        frames.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.extend(frames.into_iter().map(|(t, png)| ReferenceFrame {
            sample: sample.clone(),
            t,
            scenario: scenario.clone(),
            png,
        }));
    }
    Ok(out)
}

/// How close one of our frames is to the reference frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptionScore {
    /// SSIM of luma over the caption region (1 when neither image draws anything).
    pub ssim: f64,
    /// Mean absolute colour difference over the caption region (0–255).
    pub mean_abs_diff: f64,
    /// PSNR of the whole frame (dB).
    pub frame_psnr: f64,
}

pub fn score(actual: &Image, expected: &Image) -> CaptionScore {
    let region = union(
        actual.content_region(BACKGROUND, 6, 4),
        expected.content_region(BACKGROUND, 6, 4),
    );
    let whole = compare(actual, expected, actual.full_region());
    let (ssim, mean_abs_diff) = match region {
        Some(r) => {
            let c = compare(actual, expected, r);
            (c.ssim, c.mean_abs_diff)
        }
        None => (1.0, 0.0),
    };
    CaptionScore {
        ssim,
        mean_abs_diff,
        frame_psnr: whole.psnr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: u32, height: u32) -> Image {
        Image {
            width,
            height,
            pixels: [128, 128, 128, 255].repeat((width * height) as usize),
        }
    }

    #[test]
    fn identical_frames_score_one_and_a_changed_caption_less() {
        let a = grey(64, 64);
        let empty = score(&a, &a);
        assert_eq!((empty.ssim, empty.mean_abs_diff), (1.0, 0.0));
        let mut caption = grey(64, 64);
        for y in 20..30 {
            for x in 10..50 {
                let i = ((y * 64 + x) * 4) as usize;
                caption.pixels[i..i + 3].copy_from_slice(&[250, 250, 250]);
            }
        }
        assert_eq!(score(&caption, &caption).ssim, 1.0);
        let missing = score(&a, &caption);
        assert!(missing.ssim < 0.5, "{missing:?}");
        assert!(missing.mean_abs_diff > 50.0, "{missing:?}");
    }

    #[test]
    fn reference_frames_are_found_with_their_scenarios() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/motiontext");
        let frames = reference_frames(&shared).expect("reference folder");
        assert!(frames.len() >= 30, "{} frames", frames.len());
        for f in &frames {
            assert!(f.scenario.is_file(), "{} has no scenario", f.sample);
            assert!(f.t >= 0.0);
        }
    }
}
