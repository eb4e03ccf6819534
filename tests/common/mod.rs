//! Helpers shared by the integration tests: the renderd binary, generated clips, ffprobe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn renderd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renderd"));
    cmd.env("RENDERD_LOG", "warn");
    // Plugin assets (the flames GIF) as the editor's plugin server lays them out.
    cmd.env("RENDERD__ASSETS__PLUGIN_DIR", shared().join("plugins"));
    if std::env::var_os("RENDERD_VK_VALIDATION").is_some() {
        cmd.env("RENDERD__GPU__VALIDATION", "true");
    }
    cmd
}

/// `renderd render SCENARIO --input INPUT --output OUTPUT`, more arguments to be added.
pub fn render_cmd(scenario: &Path, input: &Path, output: &Path) -> Command {
    let mut cmd = renderd();
    cmd.arg("render")
        .arg(scenario)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    cmd
}

/// Renders the bundled demo scenario over `input` (plus `extra` options) and asserts success.
pub fn render_demo_ok(input: &Path, output: &Path, extra: &[&str]) {
    let out = run(render_cmd(&repo("demo/scenario.json"), input, output).args(extra));
    assert!(out.status.success(), "render failed: {}", stderr(&out));
}

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/motiontext")
}

pub fn sample(name: &str) -> PathBuf {
    shared().join("samples").join(name)
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a command and returns its output, panicking with stderr when it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Audio of a generated clip.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    None,
    /// 440 Hz AAC tone.
    AacTone,
    /// 16-bit PCM (only in containers that hold it: mkv, mov).
    Pcm,
}

/// Generates a test clip with ffmpeg's testsrc2 (H.264, yuv420p).
pub fn make_clip(path: &Path, seconds: f64, size: (u32, u32), fps: u32, audio: Audio) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ]);
    cmd.arg(format!(
        "testsrc2=size={}x{}:rate={fps}:duration={seconds}",
        size.0, size.1
    ));
    if audio != Audio::None {
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ));
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    match audio {
        Audio::None => {}
        Audio::AacTone => {
            cmd.args(["-c:a", "aac", "-b:a", "96k"]);
        }
        Audio::Pcm => {
            cmd.args(["-c:a", "pcm_s16le"]);
        }
    }
    cmd.arg(path);
    let out = run(&mut cmd);
    assert!(out.status.success(), "ffmpeg failed: {}", stderr(&out));
}

/// ffprobe's JSON for the streams and format, with frames counted.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path));
    assert!(out.status.success(), "ffprobe failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

pub fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

pub fn num(v: &serde_json::Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Extracts the frame at `t` of a video as PNG (RGB) with the ffmpeg CLI.
pub fn extract_frame(video: &Path, t: f64, png: &Path) {
    let out = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-ss"])
        .arg(format!("{t}"))
        .arg("-i")
        .arg(video)
        .args(["-frames:v", "1"])
        .arg(png));
    assert!(
        out.status.success(),
        "ffmpeg frame extraction failed: {}",
        stderr(&out)
    );
}
pub mod golden;
pub mod server;
