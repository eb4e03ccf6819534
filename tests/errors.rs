//! Bad input gets a clear error naming the problem, and leaves nothing behind.

mod common;

use std::path::Path;

use common::*;

fn frame_with(dir: &Path, scenario_json: &str) -> std::process::Output {
    let scenario = dir.join("s.json");
    std::fs::write(&scenario, scenario_json).expect("write scenario");
    run(renderd()
        .arg("frame")
        .arg(&scenario)
        .args(["--at", "1", "--width", "640", "--height", "360"])
        .arg("--output")
        .arg(dir.join("f.png")))
}

const HEAD: &str = r#""version":"2.0","timebase":{"unit":"seconds"},"stage":{"baseAspect":"16:9"},
    "tracks":[{"id":"t","type":"free"}]"#;

#[test]
fn malformed_json_names_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = frame_with(dir.path(), "{\"version\": \"2.0\",\n  \"cues\": [,]}");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("line 2") && err.contains("column"), "{err}");
    assert!(!dir.path().join("f.png").exists());
}

#[test]
fn define_cycle_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = format!(r#"{{{HEAD},"define":{{"a":"define.b","b":"define.a"}},"cues":[]}}"#);
    let out = frame_with(dir.path(), &json);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Circular reference detected in define"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reversed_display_time_names_the_json_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = format!(
        r#"{{{HEAD},"cues":[{{"id":"c","track":"t","root":{{"id":"g","eType":"group","children":[
            {{"id":"x","eType":"text","text":"hi","displayTime":[2.0,1.2]}}]}}}}]}}"#
    );
    let out = frame_with(dir.path(), &json);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cues[0].root.children[0].displayTime: end 1.2 is before start 2"),
        "{err}"
    );
}

#[test]
fn unknown_plugin_is_a_warning_and_the_node_still_renders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = format!(
        r#"{{{HEAD},"cues":[{{"id":"c","track":"t","root":{{"id":"x","eType":"text","text":"Hello",
            "displayTime":[0,5],"layout":{{"position":{{"x":0.5,"y":0.5}}}},
            "pluginChain":[{{"name":"sparkle"}}]}}}}]}}"#
    );
    let out = frame_with(dir.path(), &json);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("sparkle") && err.contains("\"x\""),
        "warning names the plugin and the node: {err}"
    );
    let img = renderd::imagecmp::Image::read_png(&dir.path().join("f.png")).expect("png");
    assert!(
        img.content_region([0, 0, 0], 16, 0).is_some(),
        "the text is drawn"
    );
}

#[test]
fn missing_input_video_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.mp4");
    let output = dir.path().join("out.mp4");
    let out = run(&mut render_cmd(
        &repo("demo/scenario.json"),
        &missing,
        &output,
    ));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("nope.mp4"), "{err}");
    assert!(!output.exists());
}

#[test]
fn corrupt_and_truncated_videos_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.mp4");
    make_clip(&good, 2.0, (640, 360), 25, Audio::AacTone);
    let bytes = std::fs::read(&good).expect("read");
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() * 3 / 10]).expect("write");
    let text = dir.path().join("text.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(100)).expect("write");
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(4096).step_by(7) {
        *b ^= 0x5a;
    }
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, &garbage).expect("write");

    for bad in [&truncated, &text, &corrupt] {
        let output = dir.path().join("out.mp4");
        let out = run(&mut render_cmd(&repo("demo/scenario.json"), bad, &output));
        let err = stderr(&out);
        assert!(
            !err.contains("panicked"),
            "no panic on {}: {err}",
            bad.display()
        );
        if out.status.success() {
            // A damaged file may still hold decodable frames; then the output must be valid.
            let probe = ffprobe(&output);
            assert!(num(&stream(&probe, "video").expect("video")["nb_read_frames"]) > 0.0);
            std::fs::remove_file(&output).expect("rm");
        } else {
            assert!(
                err.contains(&*bad.file_name().expect("name").to_string_lossy()),
                "names the file: {err}"
            );
            assert!(!output.exists(), "no partial output for {}", bad.display());
        }
    }
}
