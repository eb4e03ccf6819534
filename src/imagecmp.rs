//! Image comparison for golden-frame tests and the reference report: PSNR, SSIM on luma, mean
//! colour difference, over a region, plus PNG read/write and a diff image.

use std::path::Path;

/// An RGBA8 image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// A rectangle (x, y, w, h) in pixels.
pub type Region = (u32, u32, u32, u32);

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PNG: {message}")]
    Decode { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

impl Image {
    pub fn read_png(path: &Path) -> Result<Image, ImageError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| ImageError::Read {
            path: name.clone(),
            source,
        })?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| ImageError::Decode {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| ImageError::Decode {
                path: name.clone(),
                message: e.to_string(),
            })?;
        buf.truncate(info.buffer_size());
        let pixels = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::Indexed => {
                return Err(ImageError::Decode {
                    path: name,
                    message: "indexed PNG after expansion".into(),
                })
            }
        };
        Ok(Image {
            width: info.width,
            height: info.height,
            pixels,
        })
    }

    pub fn write_png(&self, path: &Path) -> Result<(), ImageError> {
        let name = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| ImageError::Write {
            path: name.clone(),
            message: e.to_string(),
        };
        let file = std::fs::File::create(path).map_err(|e| err(&e))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| err(&e))?;
        writer.write_image_data(&self.pixels).map_err(|e| err(&e))?;
        Ok(())
    }

    fn rgb(&self, x: u32, y: u32) -> [f64; 3] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.pixels[i] as f64,
            self.pixels[i + 1] as f64,
            self.pixels[i + 2] as f64,
        ]
    }

    fn luma(&self, x: u32, y: u32) -> f64 {
        let [r, g, b] = self.rgb(x, y);
        0.2126 * r + 0.7152 * g + 0.0722 * b
    }

    pub fn full_region(&self) -> Region {
        (0, 0, self.width, self.height)
    }

    /// Bounding box of the pixels that differ from `background` by more than `tolerance` in
    /// any channel, grown by `margin`; `None` when nothing differs.
    pub fn content_region(
        &self,
        background: [u8; 3],
        tolerance: u8,
        margin: u32,
    ) -> Option<Region> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                let i = ((y * self.width + x) * 4) as usize;
                let differs =
                    (0..3).any(|c| self.pixels[i + c].abs_diff(background[c]) > tolerance);
                if differs {
                    x0 = x0.min(x);
                    y0 = y0.min(y);
                    x1 = x1.max(x);
                    y1 = y1.max(y);
                }
            }
        }
        (x0 != u32::MAX).then(|| {
            let (x0, y0) = (x0.saturating_sub(margin), y0.saturating_sub(margin));
            let (x1, y1) = (
                (x1 + margin).min(self.width - 1),
                (y1 + margin).min(self.height - 1),
            );
            (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
        })
    }
}

/// Union of two optional regions.
pub fn union(a: Option<Region>, b: Option<Region>) -> Option<Region> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (x0, y0) = (a.0.min(b.0), a.1.min(b.1));
            let (x1, y1) = ((a.0 + a.2).max(b.0 + b.2), (a.1 + a.3).max(b.1 + b.3));
            Some((x0, y0, x1 - x0, y1 - y0))
        }
        (a, None) => a,
        (None, b) => b,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// PSNR over RGB in dB (`f64::INFINITY` when identical).
    pub psnr: f64,
    /// Mean SSIM of luma over 8×8 windows (stride 4).
    pub ssim: f64,
    /// Mean absolute colour difference per channel, 0–255.
    pub mean_abs_diff: f64,
}

/// Compares `a` and `b` (same size) over `region`.
pub fn compare(a: &Image, b: &Image, region: Region) -> Comparison {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "images must have the same size"
    );
    let (rx, ry, rw, rh) = region;
    let mut se = 0.0;
    let mut ad = 0.0;
    let n = (rw as f64 * rh as f64 * 3.0).max(1.0);
    for y in ry..ry + rh {
        for x in rx..rx + rw {
            let (p, q) = (a.rgb(x, y), b.rgb(x, y));
            for c in 0..3 {
                let d = p[c] - q[c];
                se += d * d;
                ad += d.abs();
            }
        }
    }
    let mse = se / n;
    let psnr = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    };
    Comparison {
        psnr,
        ssim: ssim_luma(a, b, region),
        mean_abs_diff: ad / n,
    }
}

fn ssim_luma(a: &Image, b: &Image, (rx, ry, rw, rh): Region) -> f64 {
    const WIN: u32 = 8;
    const STEP: u32 = 4;
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    if rw < WIN || rh < WIN {
        return if compare_exact(a, b, (rx, ry, rw, rh)) {
            1.0
        } else {
            0.0
        };
    }
    let (mut total, mut count) = (0.0, 0u32);
    let mut y = ry;
    while y + WIN <= ry + rh {
        let mut x = rx;
        while x + WIN <= rx + rw {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for yy in y..y + WIN {
                for xx in x..x + WIN {
                    let (p, q) = (a.luma(xx, yy), b.luma(xx, yy));
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let n = (WIN * WIN) as f64;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
            x += STEP;
        }
        y += STEP;
    }
    total / count.max(1) as f64
}

fn compare_exact(a: &Image, b: &Image, (rx, ry, rw, rh): Region) -> bool {
    (ry..ry + rh).all(|y| (rx..rx + rw).all(|x| a.rgb(x, y) == b.rgb(x, y)))
}

/// A visual diff: grey copy of `a` with differing pixels in red (brightness ∝ difference).
pub fn diff_image(a: &Image, b: &Image) -> Image {
    let mut pixels = Vec::with_capacity(a.pixels.len());
    for (p, q) in a.pixels.chunks_exact(4).zip(b.pixels.chunks_exact(4)) {
        let d = (0..3).map(|c| p[c].abs_diff(q[c])).max().unwrap_or(0);
        let grey = ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 6) as u8;
        if d > 8 {
            pixels.extend_from_slice(&[255, 255u8.saturating_sub(d.saturating_mul(2)), 0, 255]);
        } else {
            pixels.extend_from_slice(&[grey, grey, grey, 255]);
        }
    }
    Image {
        width: a.width,
        height: a.height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> Image {
        Image {
            width: w,
            height: h,
            pixels: (0..w * h)
                .flat_map(|_| [rgb[0], rgb[1], rgb[2], 255])
                .collect(),
        }
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = solid(32, 32, [10, 20, 30]);
        let c = compare(&a, &a, a.full_region());
        assert_eq!(c.psnr, f64::INFINITY);
        assert!((c.ssim - 1.0).abs() < 1e-12);
        assert_eq!(c.mean_abs_diff, 0.0);
    }

    #[test]
    fn a_changed_block_lowers_ssim_and_psnr() {
        let a = solid(32, 32, [128, 128, 128]);
        let mut b = a.clone();
        for y in 8..16 {
            for x in 8..16 {
                let i = ((y * 32 + x) * 4) as usize;
                b.pixels[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let c = compare(&a, &b, a.full_region());
        assert!(c.ssim < 0.9 && c.psnr < 20.0, "{c:?}");
        assert_eq!(b.content_region([128, 128, 128], 4, 0), Some((8, 8, 8, 8)));
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.png");
        let a = solid(5, 3, [1, 2, 3]);
        a.write_png(&path).expect("write");
        assert_eq!(Image::read_png(&path).expect("read"), a);
    }
}
