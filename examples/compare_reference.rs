//! Renders every sample × time of `shared/motiontext/reference/` with the engine (1280×720 on
//! #808080, as the reference frames were drawn) and prints how close each frame is to the
//! reference renderer's picture: SSIM of luma and mean colour difference over the caption
//! region (union of both images' non-background pixels), and PSNR of the whole frame.
//! Writes actual / expected / diff PNGs to `target/reference-compare/`.
//!
//! `cargo run --release --example compare_reference [SAMPLE_FILTER]`

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use renderd::compose::display::Color;
use renderd::config::Config;
use renderd::engine::Engine;
use renderd::imagecmp::{compare, diff_image, union, Image};

fn main() -> Result<()> {
    let filter = std::env::args().nth(1);
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/motiontext");
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reference-compare");
    std::fs::create_dir_all(&out_dir)?;
    let engine = Engine::new(Config::default())?;
    let grey = Color::rgba8(128, 128, 128, 1.0);

    let mut dirs: Vec<PathBuf> = std::fs::read_dir(shared.join("reference"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    println!("| sample | t (s) | caption SSIM | mean |Δ| | frame PSNR (dB) |");
    println!("|---|---|---|---|---|");
    let mut ssims = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let scenario = if name == "v2_basic_v20" {
            shared.join("samples/v2/basic_v20.json")
        } else {
            shared.join(format!("samples/{name}.json"))
        };
        let scene = Arc::new(
            engine
                .load_scene(&scenario)
                .with_context(|| scenario.display().to_string())?,
        );
        let mut frames: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        frames.sort();
        for frame in frames {
            let stem = frame
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let Some(t) = stem
                .strip_prefix("frame_")
                .and_then(|t| t.parse::<f64>().ok())
            else {
                continue;
            };
            let expected = Image::read_png(&frame)?;
            let rgba = engine.frame(
                Arc::clone(&scene),
                t,
                None,
                (Some(expected.width), Some(expected.height)),
                grey,
            )?;
            let actual = Image {
                width: rgba.width,
                height: rgba.height,
                pixels: rgba.pixels,
            };
            let region = union(
                actual.content_region([128, 128, 128], 6, 4),
                expected.content_region([128, 128, 128], 6, 4),
            );
            let whole = compare(&actual, &expected, actual.full_region());
            let (ssim, mad) = match region {
                Some(r) => {
                    let c = compare(&actual, &expected, r);
                    (c.ssim, c.mean_abs_diff)
                }
                None => (1.0, 0.0),
            };
            ssims.push(ssim);
            println!(
                "| {name} | {t:.3} | {ssim:.3} | {mad:.1} | {:.1} |",
                whole.psnr
            );
            let file = |kind: &str| out_dir.join(format!("{name}_{t:.3}.{kind}.png"));
            actual.write_png(&file("actual"))?;
            expected.write_png(&file("expected"))?;
            diff_image(&actual, &expected).write_png(&file("diff"))?;
        }
    }
    let above = ssims.iter().filter(|s| **s >= 0.95).count();
    let mean = ssims.iter().sum::<f64>() / ssims.len().max(1) as f64;
    println!(
        "\n{} frames, mean caption SSIM {mean:.3}, {above} at or above 0.95",
        ssims.len()
    );
    Ok(())
}
