//! Closeness to the reference renderer, as a test: every frame of shared/motiontext/reference is
//! rendered in-process (1280×720 on #808080) and scored (`renderd::reference::score`: caption
//! SSIM on luma, mean colour difference). A frame fails when its SSIM drops below its floor in
//! tests/golden/reference-floors.tsv (today's value less 0.01; the target is 0.95 for every
//! frame); actual / expected / diff images then go to target/reference-failures/. The table is
//! printed (`--nocapture`), with the frames whose floor can be raised.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use renderd::compose::display::Color;
use renderd::config::Config;
use renderd::engine::Engine;
use renderd::imagecmp::{diff_image, Image};
use renderd::reference::{reference_frames, score, TARGET_SSIM};

/// (sample, time as written) → floor.
fn floors() -> BTreeMap<(String, String), f64> {
    let text = std::fs::read_to_string(common::repo("tests/golden/reference-floors.tsv"))
        .expect("reference-floors.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let (sample, t, floor) = (
                parts.next().expect("sample"),
                parts.next().expect("time"),
                parts.next().expect("floor"),
            );
            (
                (sample.to_owned(), t.to_owned()),
                floor.parse().expect("floor is a number"),
            )
        })
        .collect()
}

#[test]
fn every_reference_frame_stays_at_or_above_its_floor() {
    let mut config = Config::default();
    config.gpu.validation = std::env::var_os("RENDERD_VK_VALIDATION").is_some();
    config.assets.plugin_dir = common::shared().join("plugins");
    let engine = Engine::new(config).expect("engine");
    let floors = floors();
    let failures_dir = common::repo("target/reference-failures");
    let frames = reference_frames(&common::shared()).expect("reference frames");
    let mut failures = Vec::new();
    let mut raisable = Vec::new();
    let mut at_target = 0;
    for frame in &frames {
        let t = format!("{:.3}", frame.t);
        let floor = *floors
            .get(&(frame.sample.clone(), t.clone()))
            .unwrap_or_else(|| panic!("no floor for {} at {t}", frame.sample));
        let scene = Arc::new(engine.load_scene(&frame.scenario).expect("scenario"));
        let expected = Image::read_png(&frame.png).expect("reference PNG");
        let rgba = engine
            .frame(
                scene,
                frame.t,
                None,
                (Some(expected.width), Some(expected.height)),
                Color::rgba8(128, 128, 128, 1.0),
            )
            .expect("frame");
        let actual = Image {
            width: rgba.width,
            height: rgba.height,
            pixels: rgba.pixels,
        };
        let s = score(&actual, &expected);
        println!(
            "{:<28} {t:>8}  SSIM {:.3} (floor {floor:.2})  |Δ| {:.1}",
            frame.sample, s.ssim, s.mean_abs_diff
        );
        if s.ssim >= TARGET_SSIM {
            at_target += 1;
        }
        if s.ssim < floor {
            std::fs::create_dir_all(&failures_dir).expect("failures dir");
            let file = |kind: &str| failures_dir.join(format!("{}_{t}.{kind}.png", frame.sample));
            actual.write_png(&file("actual")).expect("write");
            expected.write_png(&file("expected")).expect("write");
            diff_image(&actual, &expected)
                .write_png(&file("diff"))
                .expect("write");
            failures.push(format!(
                "{} at {t}: SSIM {:.3} < {floor:.2}",
                frame.sample, s.ssim
            ));
        } else if s.ssim - floor > 0.03 {
            raisable.push(format!("{} at {t}: {:.3}", frame.sample, s.ssim));
        }
    }
    assert_eq!(frames.len(), floors.len(), "one floor per reference frame");
    println!(
        "{} frames, {at_target} at or above {TARGET_SSIM}; floors that can be raised: {raisable:?}",
        frames.len()
    );
    assert!(
        failures.is_empty(),
        "below their floors (images in {}):\n{}",
        failures_dir.display(),
        failures.join("\n")
    );
    assert!(
        engine.gpu().validation_errors() == 0,
        "Vulkan validation errors"
    );
}
