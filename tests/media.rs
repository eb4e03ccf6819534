//! Image and video nodes and define assets, end to end through `renderd frame` (640×360 on
//! #808080, 1 CSS px = 1 output px): pictures from the asset folder (PNG, JPEG, WebP, GIF) at
//! their natural size or shrunk to a narrower box (SPEC §7.4), a video node's first frame
//! (§7.5), a define font used by `fontFamily` (§4.9), and the errors for a path that leaves the
//! asset folder and for an asset over the size limit.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use common::{renderd, run, stderr};
use image::{ImageFormat, Rgba, RgbaImage};
use renderd::imagecmp::Image;

const GREY: [u8; 3] = [128, 128, 128];

fn scenario(define: &str, nodes: &str) -> String {
    format!(
        r#"{{"version": "2.0", "timebase": {{"unit": "seconds"}}, "stage": {{"baseAspect": "16:9"}},
        "tracks": [{{"id": "t", "type": "free"}}], "define": {define},
        "cues": [{{"id": "c", "track": "t", "root": {{"id": "g", "eType": "group", "displayTime": [0, 5],
            "children": {nodes}}}}}]}}"#
    )
}

/// A node centred at (x, y) (fractions of the stage).
fn node(id: &str, kind: &str, src: &str, x: f64, y: f64, extra: &str) -> String {
    format!(
        r#"{{"id": "{id}", "eType": "{kind}", "src": "{src}", "layout": {{"position": {{"x": {x}, "y": {y}}}, "anchor": "cc"{extra}}}}}"#
    )
}

fn frame_cmd(assets: &Path, json: &str) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("s.json");
    std::fs::write(&scenario, json).expect("write scenario");
    let mut cmd = renderd();
    cmd.env("RENDERD__ASSETS__BASE_DIR", assets)
        .arg("frame")
        .arg(&scenario)
        .args(["--at", "1", "--width", "640", "--height", "360"])
        .args(["--background", "#808080", "--output"])
        .arg(dir.path().join("out.png"));
    (cmd, dir)
}

fn render(assets: &Path, json: &str) -> Image {
    let (mut cmd, dir) = frame_cmd(assets, json);
    let out = run(&mut cmd);
    assert!(out.status.success(), "frame failed: {}", stderr(&out));
    Image::read_png(&dir.path().join("out.png")).expect("frame PNG")
}

fn render_err(assets: &Path, json: &str, env: &[(&str, &str)]) -> Output {
    let (mut cmd, _dir) = frame_cmd(assets, json);
    cmd.envs(env.iter().copied());
    let out = run(&mut cmd);
    assert!(!out.status.success(), "frame should fail");
    out
}

fn rgb(img: &Image, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * img.width + x) * 4) as usize;
    [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
}

fn near(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn assert_rgb(img: &Image, x: u32, y: u32, want: [u8; 3], tol: u8) {
    let got = rgb(img, x, y);
    assert!(near(got, want, tol), "({x}, {y}): {got:?}, want {want:?}");
}

/// w×h, left half red, right half blue, opaque.
fn red_blue(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        }
    })
}

fn save(img: &RgbaImage, path: &Path, format: ImageFormat) {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => image::DynamicImage::ImageRgba8(img.clone())
            .to_rgb8()
            .write_to(&mut out, format),
        _ => img.write_to(&mut out, format),
    }
    .expect("encode");
    std::fs::write(path, out.into_inner()).expect("write picture");
}

#[test]
fn png_picture_keeps_its_natural_size_or_shrinks_into_a_narrower_box() {
    let assets = tempfile::tempdir().expect("tempdir");
    save(
        &red_blue(40, 20),
        &assets.path().join("rb.png"),
        ImageFormat::Png,
    );
    // Natural size: 40×20 px centred at (320, 90).
    // A 20 px wide box (20/640 of the stage): shrunk to 20×10, aspect kept, centred at (320, 270).
    // A 100 px wide box: the picture stays 40×20 at the box's top-left.
    let json = scenario(
        "{}",
        &format!(
            "[{}, {}, {}]",
            node("a", "image", "rb.png", 0.5, 0.25, ""),
            node(
                "b",
                "image",
                "rb.png",
                0.5,
                0.75,
                r#", "size": {"width": 0.03125}"#
            ),
            node(
                "wide",
                "image",
                "./rb.png",
                0.5,
                0.5,
                r#", "size": {"width": 0.15625}"#
            ),
        ),
    );
    let img = render(assets.path(), &json);
    // Natural size.
    assert_rgb(&img, 302, 82, [255, 0, 0], 3);
    assert_rgb(&img, 318, 98, [255, 0, 0], 3);
    assert_rgb(&img, 322, 82, [0, 0, 255], 3);
    assert_rgb(&img, 338, 98, [0, 0, 255], 3);
    assert_rgb(&img, 297, 90, GREY, 2);
    assert_rgb(&img, 343, 90, GREY, 2);
    assert_rgb(&img, 320, 77, GREY, 2);
    assert_rgb(&img, 320, 103, GREY, 2);
    // Shrunk: x 310..330, y 265..275.
    assert_rgb(&img, 312, 270, [255, 0, 0], 3);
    assert_rgb(&img, 328, 270, [0, 0, 255], 3);
    assert_rgb(&img, 307, 270, GREY, 2);
    assert_rgb(&img, 333, 270, GREY, 2);
    assert_rgb(&img, 320, 262, GREY, 2);
    assert_rgb(&img, 320, 278, GREY, 2);
    // Wider box (x 270..370, y 170..190): the picture at its top-left, x 270..310.
    assert_rgb(&img, 272, 180, [255, 0, 0], 3);
    assert_rgb(&img, 308, 180, [0, 0, 255], 3);
    assert_rgb(&img, 330, 180, GREY, 2);
}

#[test]
fn jpeg_webp_gif_and_define_image_assets_are_drawn() {
    let assets = tempfile::tempdir().expect("tempdir");
    let solid = |c: [u8; 3]| RgbaImage::from_pixel(30, 30, Rgba([c[0], c[1], c[2], 255]));
    save(
        &solid([0, 200, 0]),
        &assets.path().join("g.jpg"),
        ImageFormat::Jpeg,
    );
    save(
        &solid([0, 0, 220]),
        &assets.path().join("b.webp"),
        ImageFormat::WebP,
    );
    save(
        &solid([230, 230, 0]),
        &assets.path().join("y.gif"),
        ImageFormat::Gif,
    );
    std::fs::create_dir(assets.path().join("logos")).expect("mkdir");
    save(
        &solid([250, 0, 250]),
        &assets.path().join("logos/m.png"),
        ImageFormat::Png,
    );
    let json = scenario(
        r#"{"logo": {"type": "image", "src": "logos/m.png", "alt": "brand"}}"#,
        &format!(
            "[{}, {}, {}, {}]",
            node("j", "image", "g.jpg", 0.2, 0.5, ""),
            node("w", "image", "b.webp", 0.4, 0.5, ""),
            node("f", "image", "y.gif", 0.6, 0.5, ""),
            node("d", "image", "define.logo", 0.8, 0.5, ""),
        ),
    );
    let img = render(assets.path(), &json);
    assert_rgb(&img, 128, 180, [0, 200, 0], 6);
    assert_rgb(&img, 256, 180, [0, 0, 220], 3);
    assert_rgb(&img, 384, 180, [230, 230, 0], 3);
    assert_rgb(&img, 512, 180, [250, 0, 250], 3);
    assert_rgb(&img, 128, 200, GREY, 2);
}

#[test]
fn video_node_shows_its_first_frame() {
    let assets = tempfile::tempdir().expect("tempdir");
    // Green for the first second, then red: only green may show.
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=c=0x00C800:s=64x36:r=10:d=1"])
        .args(["-f", "lavfi", "-i", "color=c=red:s=64x36:r=10:d=1"])
        .args(["-filter_complex", "[0][1]concat=n=2:v=1"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(assets.path().join("clip.mp4"))
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let json = scenario(
        "{}",
        r#"[{"id": "v", "eType": "video", "src": "clip.mp4", "autoplay": true, "loop": true, "muted": false,
            "layout": {"position": {"x": 0.5, "y": 0.5}, "anchor": "cc"}}]"#,
    );
    let img = render(assets.path(), &json);
    // 64×36 at the centre: x 288..352, y 162..198.
    assert_rgb(&img, 320, 180, [0, 200, 0], 12);
    assert_rgb(&img, 292, 166, [0, 200, 0], 12);
    assert_rgb(&img, 284, 180, GREY, 2);
    assert_rgb(&img, 320, 202, GREY, 2);
}

/// Columns with any non-grey pixel in rows y0..y1.
fn ink_columns(img: &Image, y0: u32, y1: u32) -> usize {
    (0..img.width)
        .filter(|&x| (y0..y1).any(|y| !near(rgb(img, x, y), GREY, 10)))
        .count()
}

#[test]
fn define_font_is_used_by_fontfamily_under_its_family_and_its_key() {
    let assets = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
        assets.path().join("brand.ttf"),
    )
    .expect("Liberation Mono (fonts-liberation2) to copy");
    let define = r#"{"brand": {"type": "font", "src": "brand.ttf", "family": "Brand Test Mono"}}"#;
    let text = |family: &str| {
        format!(
            r#"[{{"id": "x", "eType": "text", "text": "iiiiiiiiii", "style": {{"fontFamily": {family}, "fontSize": "40px"}},
               "layout": {{"position": {{"x": 0.5, "y": 0.5}}, "anchor": "cc"}}}}]"#
        )
    };
    // The default face draws narrow i's; the monospaced define font draws ten 24 px cells.
    let plain = render(assets.path(), &scenario(define, &text("\"sans-serif\"")));
    let by_object = render(assets.path(), &scenario(define, &text("\"define.brand\"")));
    let by_key = render(
        assets.path(),
        &scenario(define, &text("\"brand, sans-serif\"")),
    );
    let by_family = render(
        assets.path(),
        &scenario(define, &text("\"Brand Test Mono\"")),
    );
    let no_family = r#"{"brand": {"type": "font", "url": "brand.ttf"}}"#;
    let by_bare_object = render(
        assets.path(),
        &scenario(no_family, &text("\"define.brand\"")),
    );
    let w = |img: &Image| {
        let cols: Vec<u32> = (0..img.width)
            .filter(|&x| (160..200).any(|y| !near(rgb(img, x, y), GREY, 10)))
            .collect();
        cols.last().copied().unwrap_or(0) - cols.first().copied().unwrap_or(0)
    };
    let (p, o, k, f) = (w(&plain), w(&by_object), w(&by_key), w(&by_family));
    let b = w(&by_bare_object);
    assert!(p < 150, "sans-serif i's are narrow: {p}");
    for (name, v) in [("object", o), ("key", k), ("family", f), ("bare object", b)] {
        assert!((200..260).contains(&v), "{name}: {v} (plain {p})");
    }
    assert!(ink_columns(&by_key, 160, 200) > ink_columns(&plain, 160, 200));
}

#[test]
fn escaping_missing_and_oversized_assets_are_clear_errors() {
    let assets = tempfile::tempdir().expect("tempdir");
    save(
        &red_blue(40, 20),
        &assets.path().join("rb.png"),
        ImageFormat::Png,
    );
    let one = |src: &str| {
        scenario(
            "{}",
            &format!("[{}]", node("p", "image", src, 0.5, 0.5, "")),
        )
    };
    let escape = render_err(assets.path(), &one("../rb.png"), &[]);
    let msg = stderr(&escape);
    assert!(
        msg.contains(
            "cues[0].root.children[0].src: \"../rb.png\": the path leaves the asset folder"
        ),
        "{msg}"
    );
    let scheme = stderr(&render_err(assets.path(), &one("file:///etc/passwd"), &[]));
    assert!(scheme.contains("scheme 'file' is not allowed"), "{scheme}");
    let missing = stderr(&render_err(assets.path(), &one("nope.png"), &[]));
    assert!(
        missing.contains("image node \"p\" at cues[0].root.children[0] (nope.png): file")
            && missing.contains("does not exist"),
        "{missing}"
    );
    let big = stderr(&render_err(
        assets.path(),
        &one("rb.png"),
        &[("RENDERD__ASSETS__MAX_BYTES", "50")],
    ));
    assert!(big.contains("more than the limit of 50 bytes"), "{big}");
    let wide = stderr(&render_err(
        assets.path(),
        &one("rb.png"),
        &[("RENDERD__ASSETS__MAX_DIMENSION", "16")],
    ));
    assert!(
        wide.contains("40×20 px, larger than the limit of 16 px per side"),
        "{wide}"
    );
}
