//! End-to-end renders through the `renderd` binary: every frame present, durations, codecs,
//! audio handling, captions actually burnt in, encoder selection.

mod common;

use common::*;
use renderd::imagecmp::{compare, Image};

#[test]
fn render_keeps_every_frame_the_duration_and_the_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 3.0, (640, 360), 30, Audio::AacTone);
    let output = dir.path().join("out.mp4");
    render_demo_ok(&input, &output, &[]);

    let probe = ffprobe(&output);
    let video = stream(&probe, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(
        num(&video["nb_read_frames"]),
        90.0,
        "every frame of 3 s at 30 fps"
    );
    let duration = num(&probe["format"]["duration"]);
    assert!(
        (duration - 3.0).abs() <= 1.0 / 30.0 + 0.03,
        "duration {duration}"
    );
    let audio = stream(&probe, "audio").expect("the source audio is kept");
    assert_eq!(audio["codec_name"], "aac");
    // Nothing but the output is left in the folder (no temporary file).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn captions_in_the_video_match_the_frame_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 2.0, (640, 360), 25, Audio::None);
    let output = dir.path().join("out.mp4");
    let scenario = repo("demo/scenario.json");
    let out = run(&mut render_cmd(&scenario, &input, &output));
    assert!(out.status.success(), "render failed: {}", stderr(&out));

    // t = 1.6 s is frame 40: captions of the first cue are on screen.
    let from_video = dir.path().join("video.png");
    extract_frame(&output, 1.6, &from_video);
    let single = dir.path().join("frame.png");
    let out = run(renderd()
        .arg("frame")
        .arg(&scenario)
        .arg("--at")
        .arg("1.6")
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&single));
    assert!(out.status.success(), "frame failed: {}", stderr(&out));
    let (a, b) = (
        Image::read_png(&from_video).expect("png"),
        Image::read_png(&single).expect("png"),
    );
    let source = dir.path().join("source.png");
    extract_frame(&input, 1.6, &source);
    let plain = Image::read_png(&source).expect("png");

    // The caption area (bottom rows): the video shows what the frame command draws. Differences
    // come from chroma (the video keeps the source's 4:2:0 chroma bytes outside the glyphs, the
    // PNG path upsamples and re-subsamples it) and the near-lossless encode.
    let captions = (0, 250, 640, 110);
    let c = compare(&a, &b, captions);
    assert!(c.psnr > 27.0 && c.ssim > 0.9, "caption area: {c:?}");
    // The captions are really there: that area differs from the plain source frame.
    assert!(
        compare(&plain, &a, captions).psnr < 25.0,
        "caption region changed"
    );
    // Away from the captions and the title the source picture passes through (up to the encode).
    let c = compare(&plain, &a, (0, 0, 150, 250));
    assert!(c.psnr > 35.0, "source picture preserved: {c:?}");
}

#[test]
fn output_size_and_rate_follow_the_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 2.0, (1280, 720), 25, Audio::None);
    let output = dir.path().join("out.mp4");
    let out = run(renderd()
        .arg("render")
        .arg(repo("demo/scenario.json"))
        .args([
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "30",
            "--quality",
            "60",
            "--encoder",
            "x264",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output));
    assert!(out.status.success(), "render failed: {}", stderr(&out));
    let probe = ffprobe(&output);
    let video = stream(&probe, "video").expect("video");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(num(&video["nb_read_frames"]), 60.0);
    assert!(
        stream(&probe, "audio").is_none(),
        "no audio in, no audio out"
    );
}

#[test]
fn pcm_audio_is_transcoded_to_aac() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mkv");
    make_clip(&input, 1.0, (640, 360), 25, Audio::Pcm);
    let output = dir.path().join("out.mp4");
    render_demo_ok(&input, &output, &[]);
    let probe = ffprobe(&output);
    assert_eq!(stream(&probe, "audio").expect("audio")["codec_name"], "aac");
    assert_eq!(
        num(&stream(&probe, "video").expect("video")["nb_read_frames"]),
        25.0
    );
}

#[test]
fn forcing_nvenc_without_nvidia_is_a_clear_error() {
    if renderd::pipeline::nvenc_available() {
        eprintln!("NVENC opens on this machine; nothing to check");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 0.5, (640, 360), 25, Audio::None);
    let output = dir.path().join("out.mp4");
    let out =
        run(render_cmd(&repo("demo/scenario.json"), &input, &output).args(["--encoder", "nvenc"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NVENC"), "{}", stderr(&out));
    assert!(!output.exists());
}

#[test]
fn interrupt_stops_cleanly_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.mp4");
    make_clip(&input, 30.0, (640, 360), 30, Audio::AacTone);
    let output = dir.path().join("out.mp4");
    let mut child = render_cmd(&repo("demo/scenario.json"), &input, &output)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn renderd");
    // Wait until the render has started writing (its temporary file exists), then interrupt.
    let started = std::time::Instant::now();
    while std::fs::read_dir(dir.path()).expect("dir").count() < 2 {
        assert!(started.elapsed().as_secs() < 60, "render never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = run(std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string()));
    assert!(kill.status.success());
    let status = child.wait().expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err)
        .expect("read stderr");
    assert!(!status.success(), "an interrupted render fails");
    assert!(err.contains("cancelled"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("in.mp4")],
        "no output and no temporary file left"
    );
}
