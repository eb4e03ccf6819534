//! Golden-frame checks shared by the golden tests: `renderd frame` at 640×360 on #808080,
//! compared with a reviewed PNG (PSNR and SSIM); on failure the actual, expected and diff
//! images go to target/golden-failures/. `RENDERD_BLESS=1` rewrites the expected images.

use std::path::{Path, PathBuf};

use super::*;
use renderd::imagecmp::{compare, diff_image, Image};

const W: &str = "640";
const H: &str = "360";

pub fn render_frame(scenario: &Path, at: &str, out: &Path) -> Image {
    let o = run(renderd()
        .arg("frame")
        .arg(scenario)
        .args([
            "--at",
            at,
            "--width",
            W,
            "--height",
            H,
            "--background",
            "#808080",
        ])
        .arg("--output")
        .arg(out));
    assert!(
        o.status.success(),
        "frame {} at {at}: {}",
        scenario.display(),
        stderr(&o)
    );
    Image::read_png(out).expect("frame PNG")
}

fn failures_dir() -> PathBuf {
    let dir = repo("target/golden-failures");
    std::fs::create_dir_all(&dir).expect("failures dir");
    dir
}

/// Checks `scenario` at `at` against `expected_path`.
pub fn check_golden_file(scenario: &Path, name: &str, at: &str, expected_path: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let actual = render_frame(scenario, at, &dir.path().join("a.png"));
    if std::env::var_os("RENDERD_BLESS").is_some() {
        actual.write_png(expected_path).expect("bless");
        return;
    }
    let expected = Image::read_png(expected_path)
        .unwrap_or_else(|e| panic!("{e} (run with RENDERD_BLESS=1 once)"));
    let c = compare(&actual, &expected, actual.full_region());
    if !(c.psnr >= 38.0 && c.ssim >= 0.98) {
        let out = failures_dir();
        actual
            .write_png(&out.join(format!("{name}.actual.png")))
            .expect("write");
        expected
            .write_png(&out.join(format!("{name}.expected.png")))
            .expect("write");
        diff_image(&actual, &expected)
            .write_png(&out.join(format!("{name}.diff.png")))
            .expect("write");
        panic!("{name}: {c:?}; images in {}", out.display());
    }
}
