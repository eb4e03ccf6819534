//! Issue 4, "Must show 3": a caption with Hangul, Latin and colour emoji is drawn with the emoji
//! in colour (Noto Color Emoji's CBDT bitmaps through the RGBA glyph atlas), as the browser does.

mod common;

use common::golden::check_golden_file;
use common::*;
use renderd::imagecmp::Image;

const SCENARIO: &str = "tests/golden/emoji_caption.json";

fn render_720p(out: &std::path::Path) -> Image {
    let o = run(renderd()
        .arg("frame")
        .arg(repo(SCENARIO))
        .args(["--at", "2.000", "--width", "1280", "--height", "720"])
        .args(["--background", "#808080", "--output"])
        .arg(out));
    assert!(o.status.success(), "renderd frame: {}", stderr(&o));
    Image::read_png(out).expect("frame PNG")
}

/// Pixels of columns `x0..x1` matching `pred`.
fn count_in_columns(img: &Image, x0: u32, x1: u32, pred: impl Fn([u8; 3]) -> bool) -> usize {
    (0..img.height)
        .flat_map(|y| (x0..x1.min(img.width)).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let i = ((y * img.width + x) * 4) as usize;
            pred([img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]])
        })
        .count()
}

#[test]
fn emoji_are_drawn_in_colour_next_to_hangul_and_latin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = render_720p(&dir.path().join("emoji.png"));
    let (x, _, w, h) = img
        .content_region([128, 128, 128], 8, 0)
        .expect("the caption is drawn");
    assert!(w > 300 && h > 30, "caption region {w}x{h}");
    // "안녕 Hello 😀🎉": the emoji's yellow starts after the text, past the middle of the line.
    let yellow = |[r, g, b]: [u8; 3]| r > 200 && g > 150 && b < 100;
    let emoji_x0 = (x..x + w)
        .find(|&col| count_in_columns(&img, col, col + 1, yellow) > 0)
        .expect("yellow pixels");
    assert!(
        emoji_x0 > x + w / 2,
        "emoji start at {emoji_x0} in {x}..{}",
        x + w
    );
    let emoji_yellow = count_in_columns(&img, emoji_x0, x + w, yellow);
    assert!(
        emoji_yellow > 1000,
        "only {emoji_yellow} yellow pixels in the emoji"
    );
    // Strongly saturated colours of several hues (the party popper's red, blue, ...).
    let red = count_in_columns(&img, emoji_x0, x + w, |[r, g, b]| {
        r > 180 && g < 110 && b < 130
    });
    assert!(red > 20, "only {red} red pixels in the emoji");
    // White Hangul and Latin glyphs before them.
    let white = |[r, g, b]: [u8; 3]| r > 240 && g > 240 && b > 240;
    let text_white = count_in_columns(&img, x, emoji_x0, white);
    assert!(text_white > 1000, "only {text_white} white text pixels");
    // Hangul (left third) and Latin (middle) both present.
    let hangul = count_in_columns(&img, x, x + w / 4, white);
    let latin = count_in_columns(&img, x + w / 3, emoji_x0, white);
    assert!(
        hangul > 300 && latin > 300,
        "hangul {hangul}, latin {latin}"
    );
}

#[test]
fn emoji_caption_matches_the_reviewed_frame() {
    check_golden_file(
        &repo(SCENARIO),
        "emoji_caption",
        "2.000",
        &repo("tests/golden/emoji_caption.png"),
    );
}
