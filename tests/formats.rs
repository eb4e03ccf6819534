//! Output formats through the `renderd` binary: mp4 and mov (H.264 + AAC) and webm (VP9 + Opus),
//! each checked with ffprobe for container, codecs, frame count, duration and size.

mod common;

use common::*;

/// What ffprobe must find in one format's output.
struct Expected {
    format: &'static str,
    /// ffprobe's `format_name` of the container.
    format_name: &'static str,
    video_codec: &'static str,
    audio_codec: &'static str,
}

const FORMATS: [Expected; 3] = [
    Expected {
        format: "mp4",
        format_name: "mov,mp4,m4a,3gp,3g2,mj2",
        video_codec: "h264",
        audio_codec: "aac",
    },
    Expected {
        format: "mov",
        format_name: "mov,mp4,m4a,3gp,3g2,mj2",
        video_codec: "h264",
        audio_codec: "aac",
    },
    Expected {
        format: "webm",
        format_name: "matroska,webm",
        video_codec: "vp9",
        audio_codec: "opus",
    },
];

#[test]
fn each_format_has_its_container_codecs_frames_and_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 1.0, (640, 360), 10, Audio::AacTone);
    for expected in FORMATS {
        // A neutral name: the container must come from --format, not from the extension.
        let output = dir.path().join(format!("out-{}.video", expected.format));
        render_demo_ok(&input, &output, &["--format", expected.format]);
        let probe = ffprobe(&output);
        let name = expected.format;
        assert_eq!(
            probe["format"]["format_name"], expected.format_name,
            "{name}"
        );
        let video = stream(&probe, "video").expect("a video stream");
        assert_eq!(video["codec_name"], expected.video_codec, "{name}");
        assert_eq!(video["pix_fmt"], "yuv420p", "{name}");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(640), Some(360)),
            "{name}"
        );
        assert_eq!(num(&video["nb_read_frames"]), 10.0, "{name}: every frame");
        let audio = stream(&probe, "audio").expect("the audio is kept");
        assert_eq!(audio["codec_name"], expected.audio_codec, "{name}");
        if expected.format == "webm" {
            assert_eq!(audio["sample_rate"], "48000", "Opus at 48 kHz");
        }
        let duration = num(&probe["format"]["duration"]);
        assert!(
            (duration - 1.0).abs() <= 0.1 + 0.03,
            "{name}: duration {duration}"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["in.mp4", "out-mov.video", "out-mp4.video", "out-webm.video"],
        "no temporary file left"
    );
}

#[test]
fn the_output_extension_picks_the_format_and_h264_cannot_write_webm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 0.5, (640, 360), 10, Audio::None);
    let output = dir.path().join("out.webm");
    render_demo_ok(&input, &output, &[]);
    let probe = ffprobe(&output);
    assert_eq!(probe["format"]["format_name"], "matroska,webm");
    assert_eq!(stream(&probe, "video").expect("video")["codec_name"], "vp9");
    assert!(
        stream(&probe, "audio").is_none(),
        "no audio in, no audio out"
    );

    let refused = dir.path().join("x264.webm");
    let out = run(
        render_cmd(&repo("demo/scenario.json"), &input, &refused).args([
            "--format",
            "webm",
            "--encoder",
            "x264",
        ]),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("VP9"), "{}", stderr(&out));
    assert!(!refused.exists());

    let out =
        run(render_cmd(&repo("demo/scenario.json"), &input, &refused).args(["--format", "avi"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("webm"),
        "lists the formats: {}",
        stderr(&out)
    );
}
