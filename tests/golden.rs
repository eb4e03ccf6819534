//! Golden frames: `renderd frame` for sample scenarios at two times each, compared with reviewed
//! PNGs under tests/golden/ (PSNR and SSIM). On failure the actual, expected and diff images are
//! written to target/golden-failures/. `RENDERD_BLESS=1` rewrites the expected images (review them
//! by eye before committing).

mod common;

use common::golden::{check_golden_file, render_frame};
use common::*;
use renderd::imagecmp::compare;

/// A sample of shared/motiontext/samples at `at`, against tests/golden/<sample>_<at>.png.
fn check_golden(sample_file: &str, at: &str) {
    let name = format!(
        "{}_{at}",
        sample_file.trim_end_matches(".json").replace('/', "_")
    );
    let expected = repo("tests/golden").join(format!("{name}.png"));
    check_golden_file(&sample(sample_file), &name, at, &expected);
}

macro_rules! golden {
    ($($test:ident: $file:expr, $at:expr;)*) => {
        $( #[test] fn $test() { check_golden($file, $at); } )*
    };
}

golden! {
    basic_2_25: "basic.json", "2.250";
    basic_8_5: "basic.json", "8.500";
    cwi_demo_full_5_16: "cwi_demo_full.json", "5.160";
    cwi_demo_full_81_02: "cwi_demo_full.json", "81.020";
    plugin_showcase_1_25: "plugin_showcase.json", "1.250";
    plugin_showcase_12_5: "plugin_showcase.json", "12.500";
    boxstyle_3_5: "boxstyle_inheritance_demo.json", "3.500";
    boxstyle_7_75: "boxstyle_inheritance_demo.json", "7.750";
    m5_layout_3_2: "m5_layout_features.json", "3.200";
    m5_layout_6_5: "m5_layout_features.json", "6.500";
    dual_channel_0_25: "dual_channel_test.json", "0.250";
    dual_channel_5: "dual_channel_test.json", "5.000";
    animated_subtitle_1_25: "animated_subtitle.json", "1.250";
    animated_subtitle_8_4: "animated_subtitle.json", "8.400";
}

/// The v1.3 and v2.0 files of the same sample describe the same captions: same picture.
fn check_versions_agree(name: &str, at: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let v2 = render_frame(
        &sample(&format!("{name}.json")),
        at,
        &dir.path().join("v2.png"),
    );
    let v13 = render_frame(
        &sample(&format!("v1.3/{name}.json")),
        at,
        &dir.path().join("v13.png"),
    );
    let c = compare(&v2, &v13, v2.full_region());
    assert!(
        c.psnr == f64::INFINITY || c.psnr > 50.0,
        "{name} at {at}: v1.3 and v2.0 differ: {c:?}"
    );
    assert!(
        v2.content_region([128, 128, 128], 8, 0).is_some(),
        "{name} at {at} draws something"
    );
}

#[test]
fn v13_and_v20_agree_basic() {
    check_versions_agree("basic", "2.250");
    check_versions_agree("basic", "8.500");
}

#[test]
fn v13_and_v20_agree_plugin_showcase() {
    check_versions_agree("plugin_showcase", "1.250");
    check_versions_agree("plugin_showcase", "12.500");
}

#[test]
fn v13_and_v20_agree_plugin_local() {
    check_versions_agree("plugin_local", "4.500");
}

#[test]
fn v13_and_v20_agree_m5_layout() {
    check_versions_agree("m5_layout_features", "3.200");
}
