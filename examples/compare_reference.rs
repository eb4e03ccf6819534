//! Renders every sample × time of `shared/motiontext/reference/` with the engine (1280×720 on
//! #808080, as the reference frames were drawn) and prints how close each frame is to the
//! reference renderer's picture (`renderd::reference::score`): SSIM of luma and mean colour
//! difference over the caption region, and PSNR of the whole frame.
//! Writes actual / expected / diff PNGs to `target/reference-compare/`.
//!
//! `cargo run --release --example compare_reference [SAMPLE_FILTER]`

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use renderd::compose::display::Color;
use renderd::config::Config;
use renderd::engine::Engine;
use renderd::imagecmp::{diff_image, Image};
use renderd::reference::{reference_frames, score, TARGET_SSIM};

fn main() -> Result<()> {
    let filter = std::env::args().nth(1);
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/motiontext");
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reference-compare");
    std::fs::create_dir_all(&out_dir)?;
    let mut config = Config::default();
    config.assets.plugin_dir = shared.join("plugins");
    let engine = Engine::new(config)?;
    let grey = Color::rgba8(128, 128, 128, 1.0);

    println!("| sample | t (s) | caption SSIM | mean |Δ| | frame PSNR (dB) |");
    println!("|---|---|---|---|---|");
    let mut ssims = Vec::new();
    for frame in reference_frames(&shared)? {
        if filter.as_deref().is_some_and(|f| !frame.sample.contains(f)) {
            continue;
        }
        let scene = Arc::new(
            engine
                .load_scene(&frame.scenario)
                .with_context(|| frame.scenario.display().to_string())?,
        );
        let expected = Image::read_png(&frame.png)?;
        let rgba = engine.frame(
            scene,
            frame.t,
            None,
            (Some(expected.width), Some(expected.height)),
            grey,
        )?;
        let actual = Image {
            width: rgba.width,
            height: rgba.height,
            pixels: rgba.pixels,
        };
        let s = score(&actual, &expected);
        ssims.push(s.ssim);
        let (name, t) = (&frame.sample, frame.t);
        println!(
            "| {name} | {t:.3} | {:.3} | {:.1} | {:.1} |",
            s.ssim, s.mean_abs_diff, s.frame_psnr
        );
        let file = |kind: &str| out_dir.join(format!("{name}_{t:.3}.{kind}.png"));
        actual.write_png(&file("actual"))?;
        expected.write_png(&file("expected"))?;
        diff_image(&actual, &expected).write_png(&file("diff"))?;
    }
    let above = ssims.iter().filter(|s| **s >= TARGET_SSIM).count();
    let mean = ssims.iter().sum::<f64>() / ssims.len().max(1) as f64;
    println!(
        "\n{} frames, mean caption SSIM {mean:.3}, {above} at or above {TARGET_SSIM}",
        ssims.len()
    );
    Ok(())
}
