//! Scenario assets: the pictures of `image` nodes, the first frame of `video` nodes, `define`
//! assets of type font and image (SPEC §4.9, §7.4, §7.5) and plugin assets such as the flames
//! GIF (PLUGINS §14).
//!
//! Sources are a relative path inside the configured asset folder (never escaping it: the same
//! canonical-path rule as `file://` render inputs) or an allow-listed `https://` URL, fetched with
//! the render inputs' downloader ([`InputResolver`]) under the asset size limit. Plugin assets come
//! from the plugin-assets folder, laid out as the editor's plugin server serves them:
//! `<plugin_dir>/<name>@<version>/assets/<file>`.
//!
//! Everything a scene needs is loaded and decoded once per job ([`AssetLoader::load`]) into
//! [`MediaAssets`]: premultiplied sRGB RGBA frames (all frames of an animated GIF, composited by
//! the decoder per the GIF disposal rules, with their delays). Drawing goes through the display
//! list's RGBA masks ([`ImageMasks`] crops and pre-scales them to the drawn size).

use std::collections::HashMap;
use std::io::{BufRead, Cursor, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use image::{AnimationDecoder, ImageDecoder, ImageFormat};
use serde::{Deserialize, Serialize};

use crate::compose::display::{Mask, MaskFormat};
use crate::media::{InputError, InputResolver, InputUrl, MediaConfig};
use crate::progress::CancelToken;
use crate::scene::{classify_asset_src, AssetKind, AssetSrc, AssetSrcError, Node, NodeKind, Scene};

/// The `[assets]` configuration section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssetConfig {
    /// Relative `src` values of image/video nodes and define assets resolve inside this folder.
    pub base_dir: PathBuf,
    /// Plugin assets: `<plugin_dir>/<name>@<version>/assets/<file>` (the editor's plugin server
    /// layout).
    pub plugin_dir: PathBuf,
    /// Largest asset file (bytes), local or downloaded.
    pub max_bytes: u64,
    /// Largest picture side, in pixels.
    pub max_dimension: u32,
    /// Most frames of one animated image.
    pub max_frames: usize,
    /// Decoded pixels of all assets of one job together, in bytes (RGBA, every frame).
    pub max_decoded_bytes: u64,
}

impl Default for AssetConfig {
    fn default() -> Self {
        AssetConfig {
            base_dir: PathBuf::from("./data/assets"),
            plugin_dir: PathBuf::from("./data/plugins"),
            max_bytes: 32 * 1024 * 1024,
            max_dimension: 8192,
            max_frames: 1000,
            max_decoded_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// What went wrong with one asset.
#[derive(Debug, thiserror::Error)]
pub enum AssetProblem {
    #[error("{0}")]
    Source(#[from] AssetSrcError),
    #[error("the path leaves the asset folder")]
    OutsideBase,
    #[error("not a usable source: {0}")]
    InvalidSource(String),
    #[error("file {0} does not exist")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{bytes} bytes, more than the limit of {limit} bytes")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("{width}×{height} px, larger than the limit of {limit} px per side")]
    TooManyPixels { width: u32, height: u32, limit: u32 },
    #[error("more than the limit of {limit} frames")]
    TooManyFrames { limit: usize },
    #[error("the job's decoded assets would need more than {limit} bytes")]
    DecodedTooLarge { limit: u64 },
    #[error("not a PNG, JPEG, WebP or GIF image")]
    UnknownFormat,
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("remote assets are off (media.allowed_hosts is empty)")]
    RemoteOff,
    #[error("{0}")]
    Remote(#[from] InputError),
    #[error("not a font file cosmic-text can read")]
    BadFont,
}

/// An asset of the scene could not be loaded: which one, from where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} ({src}): {problem}")]
pub struct LoadAssetError {
    /// E.g. `image node "logo" at cues[0].root.children[1]`, `define asset "brandFont"`,
    /// `plugin "flames"`.
    pub what: String,
    pub src: String,
    pub problem: AssetProblem,
}

impl LoadAssetError {
    /// The contract's job failure code: the scenario's fault, a storage failure, or (a plugin
    /// asset missing from the server) an internal error.
    pub fn code(&self) -> &'static str {
        if self.what.starts_with("plugin ") {
            return "RENDER_INTERNAL_ERROR";
        }
        match &self.problem {
            AssetProblem::Remote(e) => e.code(),
            AssetProblem::Read { .. } => "STORAGE_ACCESS_ERROR",
            _ => "SCENARIO_PARSE_ERROR",
        }
    }
}

/// The asset folders could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum AssetInitError {
    #[error("cannot set up the asset downloader: {0}")]
    Remote(#[from] crate::media::MediaInitError),
}

/// One frame of a decoded picture: premultiplied sRGB RGBA, row-major.
pub struct ImageFrame {
    pub pixels: Vec<u8>,
    /// How long the frame shows, in seconds (GIF delay; still images: infinity).
    pub delay: f64,
}

/// A decoded picture (all frames of an animation).
pub struct DecodedImage {
    /// Unique per decoded picture (mask cache key).
    pub uid: u64,
    pub width: u32,
    pub height: u32,
    pub frames: Vec<ImageFrame>,
    /// Start time of each frame in the loop; `loop_len` is the whole loop.
    starts: Vec<f64>,
    loop_len: f64,
}

impl std::fmt::Debug for ImageFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFrame")
            .field("bytes", &self.pixels.len())
            .field("delay", &self.delay)
            .finish()
    }
}

impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImage")
            .field("uid", &self.uid)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("frames", &self.frames.len())
            .finish()
    }
}

/// Largest accepted `max_dimension` setting.
pub const MAX_DIMENSION: u32 = 16384;

/// Browsers show GIF frames with a delay of 10 ms or less for 100 ms.
const MIN_GIF_DELAY: f64 = 0.02;
const DEFAULT_GIF_DELAY: f64 = 0.1;

impl DecodedImage {
    fn new(width: u32, height: u32, frames: Vec<ImageFrame>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut starts = Vec::with_capacity(frames.len());
        let mut acc = 0.0;
        for f in &frames {
            starts.push(acc);
            acc += f.delay;
        }
        DecodedImage {
            uid: NEXT.fetch_add(1, Ordering::Relaxed),
            width,
            height,
            frames,
            starts,
            loop_len: acc,
        }
    }

    /// The frame showing `elapsed` seconds after the picture appeared (the animation loops).
    pub fn frame_index(&self, elapsed: f64) -> usize {
        if self.frames.len() <= 1 || !self.loop_len.is_finite() || self.loop_len <= 0.0 {
            return 0;
        }
        let e = elapsed.max(0.0).rem_euclid(self.loop_len);
        // Last start <= e.
        self.starts
            .partition_point(|&s| s <= e + 1e-9)
            .saturating_sub(1)
            .min(self.frames.len() - 1)
    }

    fn decoded_bytes(&self) -> u64 {
        self.frames.iter().map(|f| f.pixels.len() as u64).sum()
    }
}

/// Decodes a PNG, JPEG, WebP or GIF (every frame) within `config`'s limits.
pub fn decode_image(bytes: &[u8], config: &AssetConfig) -> Result<DecodedImage, AssetProblem> {
    let limit = config.max_bytes;
    if bytes.len() as u64 > limit {
        return Err(AssetProblem::TooLarge {
            bytes: bytes.len() as u64,
            limit,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| AssetProblem::UnknownFormat)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(config.max_dimension);
    limits.max_image_height = Some(config.max_dimension);
    limits.max_alloc = Some(config.max_decoded_bytes);
    let decode_err = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => AssetProblem::DecodedTooLarge {
            limit: config.max_decoded_bytes,
        },
        other => AssetProblem::Decode(other.to_string()),
    };
    let check_size = |(width, height): (u32, u32)| {
        if width > config.max_dimension || height > config.max_dimension {
            Err(AssetProblem::TooManyPixels {
                width,
                height,
                limit: config.max_dimension,
            })
        } else if width == 0 || height == 0 {
            Err(AssetProblem::Decode("the picture is empty".into()))
        } else {
            Ok((width, height))
        }
    };
    match format {
        ImageFormat::Gif => decode_gif(Cursor::new(bytes), config, check_size, decode_err),
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP => {
            let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
            let dims = image::ImageReader::with_format(Cursor::new(bytes), format)
                .into_dimensions()
                .map_err(decode_err)?;
            let (width, height) = check_size(dims)?;
            reader.limits(limits);
            let rgba = reader.decode().map_err(decode_err)?.into_rgba8();
            let mut pixels = rgba.into_raw();
            premultiply(&mut pixels);
            Ok(DecodedImage::new(
                width,
                height,
                vec![ImageFrame {
                    pixels,
                    delay: f64::INFINITY,
                }],
            ))
        }
        _ => Err(AssetProblem::UnknownFormat),
    }
}

fn decode_gif<R: BufRead + Seek>(
    reader: R,
    config: &AssetConfig,
    check_size: impl Fn((u32, u32)) -> Result<(u32, u32), AssetProblem>,
    decode_err: impl Fn(image::ImageError) -> AssetProblem,
) -> Result<DecodedImage, AssetProblem> {
    let decoder = image::codecs::gif::GifDecoder::new(reader).map_err(&decode_err)?;
    let (width, height) = check_size(decoder.dimensions())?;
    let frame_bytes = u64::from(width) * u64::from(height) * 4;
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(&decode_err)?;
        if frames.len() >= config.max_frames {
            return Err(AssetProblem::TooManyFrames {
                limit: config.max_frames,
            });
        }
        if (frames.len() as u64 + 1) * frame_bytes > config.max_decoded_bytes {
            return Err(AssetProblem::DecodedTooLarge {
                limit: config.max_decoded_bytes,
            });
        }
        let (num, den) = frame.delay().numer_denom_ms();
        let delay = f64::from(num) / f64::from(den.max(1)) / 1000.0;
        let delay = if delay < MIN_GIF_DELAY {
            DEFAULT_GIF_DELAY
        } else {
            delay
        };
        let mut pixels = frame.into_buffer().into_raw();
        premultiply(&mut pixels);
        frames.push(ImageFrame { pixels, delay });
    }
    if frames.is_empty() {
        return Err(AssetProblem::Decode("the GIF has no frames".into()));
    }
    if frames.len() == 1 {
        frames[0].delay = f64::INFINITY;
    }
    Ok(DecodedImage::new(width, height, frames))
}

/// Straight RGBA8 → premultiplied, in place.
fn premultiply(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        for c in &mut px[..3] {
            *c = ((u16::from(*c) * a + 127) / 255) as u8;
        }
    }
}

/// A registered define font: the font file and the family names it answers to (the define key
/// and its `family`, SPEC §4.9 Recommended).
#[derive(Debug, Clone)]
pub struct DefineFont {
    pub names: Vec<String>,
    pub data: Arc<Vec<u8>>,
}

/// Everything a job's scene draws besides text, decoded once.
#[derive(Debug, Default)]
pub struct MediaAssets {
    /// Image and video node pictures and define image assets, by `src` (video: `video:` + src).
    images: HashMap<String, Arc<DecodedImage>>,
    /// Plugin assets by `<name>/<file>`.
    plugin_images: HashMap<String, Arc<DecodedImage>>,
    pub fonts: Vec<DefineFont>,
}

impl MediaAssets {
    pub fn image(&self, src: &str) -> Option<&Arc<DecodedImage>> {
        self.images.get(src)
    }

    pub fn video_frame(&self, src: &str) -> Option<&Arc<DecodedImage>> {
        self.images.get(&video_key(src))
    }

    /// A plugin's asset (`plugin` without version, `file` under its `assets/`).
    pub fn plugin_image(&self, plugin: &str, file: &str) -> Option<&Arc<DecodedImage>> {
        self.plugin_images.get(&format!("{plugin}/{file}"))
    }

    /// Natural size of what a node shows, in pixels.
    pub fn natural_size(&self, kind: &NodeKind) -> Option<(u32, u32)> {
        let img = match kind {
            NodeKind::Image { src } => self.image(src),
            NodeKind::Video { src } => self.video_frame(src),
            _ => None,
        }?;
        Some((img.width, img.height))
    }
}

fn video_key(src: &str) -> String {
    format!("video:{src}")
}

/// The plugin assets an implemented plugin needs: (plugin id, version, file under `assets/`).
pub const PLUGIN_ASSETS: &[(&str, &str, &str)] = &[("flames", "2.0.0", "flame.gif")];

/// Loads a scene's assets (one per engine; [`AssetLoader::load`] once per job).
#[derive(Debug)]
pub struct AssetLoader {
    config: AssetConfig,
    remote: Option<InputResolver>,
}

impl AssetLoader {
    /// Remote assets use the media allow-list (`media.allowed_hosts`, `allow_http`); with an
    /// empty list they are refused and no downloader (nor its folders) is set up.
    pub fn new(config: &AssetConfig, media: &MediaConfig) -> Result<Self, AssetInitError> {
        let remote = if media.allowed_hosts.is_empty() {
            None
        } else {
            Some(InputResolver::new(&MediaConfig {
                max_download_bytes: config.max_bytes,
                ..media.clone()
            })?)
        };
        Ok(AssetLoader {
            config: config.clone(),
            remote,
        })
    }

    pub fn config(&self) -> &AssetConfig {
        &self.config
    }

    /// Reads and decodes every asset `scene` uses: define fonts and images, image and video
    /// nodes, and the assets of the plugins in its chains. The first failure is the error.
    pub fn load(&self, scene: &Scene) -> Result<MediaAssets, LoadAssetError> {
        let mut out = MediaAssets::default();
        let mut budget = self.config.max_decoded_bytes;
        let mut spend = |img: &DecodedImage, what: &str, src: &str| {
            let n = img.decoded_bytes();
            if n > budget {
                return Err(LoadAssetError {
                    what: what.to_string(),
                    src: src.to_string(),
                    problem: AssetProblem::DecodedTooLarge {
                        limit: self.config.max_decoded_bytes,
                    },
                });
            }
            budget -= n;
            Ok(())
        };
        for asset in &scene.assets {
            let what = format!("define asset \"{}\"", asset.key);
            let fail = |problem| LoadAssetError {
                what: what.clone(),
                src: asset.src.clone(),
                problem,
            };
            match asset.kind {
                AssetKind::Font => {
                    let data = self.read(&asset.src).map_err(fail)?;
                    if cosmic_text::fontdb::Database::new()
                        .load_font_source(cosmic_text::fontdb::Source::Binary(Arc::new(
                            data.clone(),
                        )))
                        .is_empty()
                    {
                        return Err(fail(AssetProblem::BadFont));
                    }
                    // The define key, its family, and its source (the name a `fontFamily`
                    // that resolves to a family-less asset object gets, see scene::style).
                    let mut names = vec![asset.key.clone()];
                    names.extend(asset.family.iter().cloned());
                    names.push(asset.src.clone());
                    out.fonts.push(DefineFont {
                        names,
                        data: Arc::new(data),
                    });
                }
                AssetKind::Image => {
                    if out.images.contains_key(&asset.src) {
                        continue;
                    }
                    let img = self.read_image(&asset.src).map_err(fail)?;
                    spend(&img, &what, &asset.src)?;
                    out.images.insert(asset.src.clone(), Arc::new(img));
                }
                AssetKind::Video | AssetKind::Audio => {}
            }
        }
        let mut nodes = Vec::new();
        for cue in &scene.cues {
            collect_nodes(&cue.root, &mut nodes);
        }
        for node in &nodes {
            let (src, key, is_video) = match &node.kind {
                NodeKind::Image { src } if !src.is_empty() => (src, src.clone(), false),
                NodeKind::Video { src } if !src.is_empty() => (src, video_key(src), true),
                _ => continue,
            };
            if out.images.contains_key(&key) {
                continue;
            }
            let kind = if is_video { "video" } else { "image" };
            let what = format!("{kind} node \"{}\" at {}", node.id, node.path);
            let fail = |problem| LoadAssetError {
                what: what.clone(),
                src: src.clone(),
                problem,
            };
            let img = if is_video {
                self.read_video_frame(src).map_err(fail)?
            } else {
                self.read_image(src).map_err(fail)?
            };
            spend(&img, &what, src)?;
            out.images.insert(key, Arc::new(img));
        }
        for (plugin, version, file) in PLUGIN_ASSETS {
            let used = nodes.iter().any(|n| {
                n.plugins.iter().any(|p| {
                    p.resolved_id() == Some(*plugin)
                        && p.version.as_deref().is_none_or(|v| v == *version)
                })
            });
            if !used {
                continue;
            }
            let path = self
                .config
                .plugin_dir
                .join(format!("{plugin}@{version}"))
                .join("assets")
                .join(file);
            let what = format!("plugin \"{plugin}\"");
            let fail = |problem| LoadAssetError {
                what: what.clone(),
                src: path.display().to_string(),
                problem,
            };
            let bytes = read_limited(&path, self.config.max_bytes).map_err(fail)?;
            let img = decode_image(&bytes, &self.config).map_err(fail)?;
            spend(&img, &what, &path.display().to_string())?;
            out.plugin_images
                .insert(format!("{plugin}/{file}"), Arc::new(img));
        }
        Ok(out)
    }

    fn read_image(&self, src: &str) -> Result<DecodedImage, AssetProblem> {
        let bytes = self.read(src)?;
        decode_image(&bytes, &self.config)
    }

    /// The first frame of a clip (SPEC §7.5: the reference never starts it), as a picture.
    fn read_video_frame(&self, src: &str) -> Result<DecodedImage, AssetProblem> {
        let local = match classify_asset_src(src)? {
            AssetSrc::Relative(rel) => LocalFile::Plain(self.local_path(&rel)?),
            AssetSrc::Remote(url) => LocalFile::Fetched(self.fetch_remote(&url)?),
        };
        let frame = crate::pipeline::decode_frame_at(local.path(), 0.0)
            .map_err(|e| AssetProblem::Decode(e.to_string()))?;
        let (width, height) = (frame.width(), frame.height());
        if width > self.config.max_dimension || height > self.config.max_dimension {
            return Err(AssetProblem::TooManyPixels {
                width,
                height,
                limit: self.config.max_dimension,
            });
        }
        let pixels = video_frame_rgba(&frame).map_err(AssetProblem::Decode)?;
        Ok(DecodedImage::new(
            width,
            height,
            vec![ImageFrame {
                pixels,
                delay: f64::INFINITY,
            }],
        ))
    }

    /// The bytes of a source within the size limit.
    fn read(&self, src: &str) -> Result<Vec<u8>, AssetProblem> {
        match classify_asset_src(src)? {
            AssetSrc::Relative(rel) => read_limited(&self.local_path(&rel)?, self.config.max_bytes),
            AssetSrc::Remote(url) => {
                let local = self.fetch_remote(&url)?;
                read_limited(local.path(), self.config.max_bytes)
            }
        }
    }

    /// The canonical path of a file inside the asset folder (symlinks resolved).
    fn local_path(&self, rel: &Path) -> Result<PathBuf, AssetProblem> {
        let base = self
            .config
            .base_dir
            .canonicalize()
            .map_err(|_| AssetProblem::NotFound(self.config.base_dir.join(rel)))?;
        let joined = base.join(rel);
        let canonical = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AssetProblem::NotFound(joined.clone()),
            _ => AssetProblem::Read {
                path: joined.clone(),
                source: e,
            },
        })?;
        if !canonical.starts_with(&base) {
            return Err(AssetProblem::OutsideBase);
        }
        if !canonical.is_file() {
            return Err(AssetProblem::InvalidSource(format!(
                "{} is not a regular file",
                joined.display()
            )));
        }
        Ok(canonical)
    }

    /// Downloads an allow-listed URL with the render inputs' downloader (size limit = the asset
    /// limit); the file is deleted when the returned value drops.
    fn fetch_remote(&self, url: &str) -> Result<crate::media::LocalInput, AssetProblem> {
        let Some(resolver) = &self.remote else {
            return Err(AssetProblem::RemoteOff);
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| AssetProblem::InvalidSource(format!("not a valid URL: {e}")))?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "asset-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let input = InputUrl::Remote { url: parsed };
        let cancel = CancelToken::default();
        let fut = resolver.fetch(&input, &id, &cancel);
        let result = match tokio::runtime::Handle::try_current() {
            // Engine work runs on blocking threads of the service's runtime.
            Ok(handle) => handle.block_on(fut),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| AssetProblem::Read {
                    path: PathBuf::from(url),
                    source,
                })?
                .block_on(fut),
        };
        Ok(result?)
    }
}

enum LocalFile {
    Plain(PathBuf),
    Fetched(crate::media::LocalInput),
}

impl LocalFile {
    fn path(&self) -> &Path {
        match self {
            LocalFile::Plain(p) => p,
            LocalFile::Fetched(l) => l.path(),
        }
    }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, AssetProblem> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AssetProblem::NotFound(path.to_path_buf()),
        _ => AssetProblem::Read {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if meta.len() > limit {
        return Err(AssetProblem::TooLarge {
            bytes: meta.len(),
            limit,
        });
    }
    std::fs::read(path).map_err(|source| AssetProblem::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn collect_nodes<'a>(node: &'a Node, out: &mut Vec<&'a Node>) {
    out.push(node);
    for c in &node.children {
        collect_nodes(c, out);
    }
}

/// A decoded video frame as premultiplied (opaque) RGBA, converted by swscale.
fn video_frame_rgba(frame: &ffmpeg_next::frame::Video) -> Result<Vec<u8>, String> {
    use ffmpeg_next::format::Pixel;
    use ffmpeg_next::software::scaling;
    let (w, h) = (frame.width(), frame.height());
    let mut ctx = scaling::Context::get(
        frame.format(),
        w,
        h,
        Pixel::RGBA,
        w,
        h,
        scaling::Flags::BILINEAR,
    )
    .map_err(|e| format!("cannot convert {:?} frames to RGBA: {e}", frame.format()))?;
    let mut out = ffmpeg_next::frame::Video::empty();
    ctx.run(frame, &mut out)
        .map_err(|e| format!("pixel format conversion failed: {e}"))?;
    let stride = out.stride(0);
    let row = w as usize * 4;
    let data = out.data(0);
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let start = y * stride;
        let line = data
            .get(start..start + row)
            .ok_or_else(|| "the converted frame is shorter than expected".to_string())?;
        pixels.extend_from_slice(line);
    }
    premultiply(&mut pixels);
    Ok(pixels)
}

/// The source rectangle (x, y, w, h in picture pixels) that `object-fit: cover` shows in a
/// `box_w`×`box_h` box: the picture scaled by max(boxW/w, boxH/h), centred, cropped.
pub fn cover_crop(img_w: f64, img_h: f64, box_w: f64, box_h: f64) -> [f64; 4] {
    let s = (box_w / img_w).max(box_h / img_h);
    if !(s.is_finite() && s > 0.0) {
        return [0.0, 0.0, img_w, img_h];
    }
    let (cw, ch) = ((box_w / s).min(img_w), (box_h / s).min(img_h));
    [(img_w - cw) / 2.0, (img_h - ch) / 2.0, cw, ch]
}

/// Largest side of an image mask: four such masks (with the atlas's 1-px borders) still fit the
/// 4096² atlas together.
pub const MAX_MASK_SIDE: u32 = 2040;
/// Source pixels per drawn pixel above which the picture is pre-scaled on the CPU.
const PRESCALE_ABOVE: f64 = 1.25;
const MASK_CACHE_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MaskKey {
    uid: u64,
    frame: usize,
    crop: [u32; 4],
    size: (u32, u32),
}

/// Ids of image masks: from the top half of the id space, never colliding with glyph masks.
fn next_mask_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 62);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// RGBA masks of pictures, cropped and scaled to their drawn size (one per render thread).
#[derive(Debug, Default)]
pub struct ImageMasks {
    cache: HashMap<MaskKey, Arc<Mask>>,
}

impl ImageMasks {
    /// The mask for `crop` (picture pixels) of frame `frame` drawn `drawn` output pixels large.
    /// Drawn at most 1.25× smaller than the source, the source pixels are used as they are
    /// (the GPU samples them bilinearly); smaller, they are area-averaged to the drawn size so
    /// the sampling does not alias. Never larger than [`MAX_MASK_SIDE`].
    pub fn mask(
        &mut self,
        img: &DecodedImage,
        frame: usize,
        crop: [f64; 4],
        drawn: (f64, f64),
    ) -> Option<Arc<Mask>> {
        let f = img.frames.get(frame)?;
        let [x, y, w, h] = crop;
        if !(w > 0.0 && h > 0.0 && drawn.0 > 0.0 && drawn.1 > 0.0) {
            return None;
        }
        let keep_source = w <= drawn.0 * PRESCALE_ABOVE && h <= drawn.1 * PRESCALE_ABOVE;
        let (mut ow, mut oh) = if keep_source {
            (w.ceil(), h.ceil())
        } else {
            (drawn.0.ceil().min(w.ceil()), drawn.1.ceil().min(h.ceil()))
        };
        let side = f64::from(MAX_MASK_SIDE);
        if ow > side || oh > side {
            let k = (side / ow).min(side / oh);
            ow = (ow * k).floor();
            oh = (oh * k).floor();
        }
        let size = (ow.max(1.0) as u32, oh.max(1.0) as u32);
        let q = |v: f64| (v * 64.0).round().max(0.0) as u32;
        let key = MaskKey {
            uid: img.uid,
            frame,
            crop: [q(x), q(y), q(w), q(h)],
            size,
        };
        if let Some(m) = self.cache.get(&key) {
            return Some(Arc::clone(m));
        }
        let pixels = resample(&f.pixels, img.width, img.height, crop, size);
        let mask = Arc::new(Mask {
            id: next_mask_id(),
            width: size.0,
            height: size.1,
            format: MaskFormat::Rgba,
            pixels,
        });
        if self.cache.len() >= MASK_CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(key, Arc::clone(&mask));
        Some(mask)
    }
}

/// Resamples the `crop` rectangle of a premultiplied RGBA picture to `out` pixels: an area
/// (box) filter per axis where it shrinks, linear interpolation where it grows.
pub fn resample(src: &[u8], sw: u32, sh: u32, crop: [f64; 4], out: (u32, u32)) -> Vec<u8> {
    let (ow, oh) = (out.0 as usize, out.1 as usize);
    let (sw, sh) = (sw as usize, sh as usize);
    let [cx, cy, cw, ch] = crop;
    let xw = axis_weights(cx, cw, ow, sw);
    let yw = axis_weights(cy, ch, oh, sh);
    // Horizontal pass over the source rows the vertical pass needs.
    let row0 = yw
        .iter()
        .flat_map(|w| w.iter().map(|(i, _)| *i))
        .min()
        .unwrap_or(0);
    let row1 = yw
        .iter()
        .flat_map(|w| w.iter().map(|(i, _)| *i))
        .max()
        .unwrap_or(0);
    let rows = row1 + 1 - row0;
    let mut tmp = vec![0f32; rows * ow * 4];
    for r in 0..rows {
        let srow = &src[(row0 + r) * sw * 4..(row0 + r + 1) * sw * 4];
        for (ox, weights) in xw.iter().enumerate() {
            let mut acc = [0f32; 4];
            for &(i, wgt) in weights {
                for c in 0..4 {
                    acc[c] += f32::from(srow[i * 4 + c]) * wgt;
                }
            }
            tmp[(r * ow + ox) * 4..(r * ow + ox) * 4 + 4].copy_from_slice(&acc);
        }
    }
    let mut dst = vec![0u8; ow * oh * 4];
    for (oy, weights) in yw.iter().enumerate() {
        for ox in 0..ow {
            let mut acc = [0f32; 4];
            for &(i, wgt) in weights {
                let t = &tmp[((i - row0) * ow + ox) * 4..((i - row0) * ow + ox) * 4 + 4];
                for c in 0..4 {
                    acc[c] += t[c] * wgt;
                }
            }
            let d = &mut dst[(oy * ow + ox) * 4..(oy * ow + ox) * 4 + 4];
            let a = acc[3].round().clamp(0.0, 255.0);
            d[3] = a as u8;
            for c in 0..3 {
                // Premultiplied: colour never exceeds alpha.
                d[c] = acc[c].round().clamp(0.0, a) as u8;
            }
        }
    }
    dst
}

/// For each of `n` output samples over source span [start, start + len) of an axis of `size`
/// pixels: the source indices and weights (summing to 1).
fn axis_weights(start: f64, len: f64, n: usize, size: usize) -> Vec<Vec<(usize, f32)>> {
    let step = len / n.max(1) as f64;
    let last = size.saturating_sub(1);
    (0..n)
        .map(|k| {
            if step >= 1.0 {
                let (a, b) = (start + k as f64 * step, start + (k + 1) as f64 * step);
                let mut out = Vec::new();
                let mut i = a.floor().max(0.0) as usize;
                while (i as f64) < b && i <= last {
                    let cover = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                    if cover > 0.0 {
                        out.push((i, (cover / step) as f32));
                    }
                    i += 1;
                }
                if out.is_empty() {
                    out.push((last.min(a.max(0.0) as usize), 1.0));
                }
                out
            } else {
                let centre = (start + (k as f64 + 0.5) * step - 0.5).clamp(0.0, last as f64);
                let i = centre.floor() as usize;
                let frac = (centre - i as f64) as f32;
                if i < last && frac > 0.0 {
                    vec![(i, 1.0 - frac), (i + 1, frac)]
                } else {
                    vec![(i, 1.0)]
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};
    use std::process::Command;

    fn limits() -> AssetConfig {
        AssetConfig::default()
    }

    /// 4×2: left half opaque red, right half half-transparent blue.
    fn picture() -> RgbaImage {
        RgbaImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                Rgba([255, 0, 0, 255])
            } else {
                Rgba([0, 0, 255, 128])
            }
        })
    }

    fn encode(format: ImageFormat, img: &RgbaImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        match format {
            // JPEG has no alpha.
            ImageFormat::Jpeg => image::DynamicImage::ImageRgba8(img.clone())
                .to_rgb8()
                .write_to(&mut out, format)
                .expect("encode jpeg"),
            _ => img.write_to(&mut out, format).expect("encode"),
        }
        out.into_inner()
    }

    fn gif(frames: &[(u8, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.set_repeat(image::codecs::gif::Repeat::Infinite)
                .expect("repeat");
            for &(shade, ms) in frames {
                let img = RgbaImage::from_pixel(3, 2, Rgba([shade, shade, 0, 255]));
                let frame =
                    image::Frame::from_parts(img, 0, 0, image::Delay::from_numer_denom_ms(ms, 1));
                enc.encode_frame(frame).expect("gif frame");
            }
        }
        out
    }

    fn px(img: &DecodedImage, frame: usize, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * img.width + x) * 4) as usize;
        let p = &img.frames[frame].pixels[i..i + 4];
        [p[0], p[1], p[2], p[3]]
    }

    #[test]
    fn png_webp_jpeg_gif_decode_premultiplied() {
        for format in [ImageFormat::Png, ImageFormat::WebP] {
            let img = decode_image(&encode(format, &picture()), &limits()).expect("decodes");
            assert_eq!((img.width, img.height, img.frames.len()), (4, 2, 1));
            assert_eq!(px(&img, 0, 0, 0), [255, 0, 0, 255], "{format:?}");
            assert_eq!(
                px(&img, 0, 3, 1),
                [0, 0, 128, 128],
                "{format:?} premultiplied"
            );
        }
        let jpeg = decode_image(&encode(ImageFormat::Jpeg, &picture()), &limits()).expect("jpeg");
        assert_eq!((jpeg.width, jpeg.height), (4, 2));
        assert_eq!(px(&jpeg, 0, 0, 0)[3], 255);
        assert!(px(&jpeg, 0, 0, 0)[0] > 180, "{:?}", px(&jpeg, 0, 0, 0));
        let g = decode_image(&gif(&[(200, 100)]), &limits()).expect("gif");
        assert_eq!((g.width, g.height, g.frames.len()), (3, 2, 1));
        assert_eq!(px(&g, 0, 1, 1)[3], 255);
        assert_eq!(g.frame_index(123.0), 0);
    }

    #[test]
    fn animated_gif_keeps_every_frame_and_its_delay() {
        let g = decode_image(&gif(&[(10, 100), (100, 200), (250, 5)]), &limits()).expect("gif");
        assert_eq!(g.frames.len(), 3);
        let delays: Vec<f64> = g.frames.iter().map(|f| f.delay).collect();
        // A 5 ms delay shows for 100 ms, as browsers do.
        assert_eq!(delays, [0.1, 0.2, 0.1]);
        assert!(px(&g, 0, 0, 0)[0] < px(&g, 1, 0, 0)[0]);
        // Loop of 0.4 s: [0, 0.1) frame 0, [0.1, 0.3) frame 1, [0.3, 0.4) frame 2.
        let at = |t| g.frame_index(t);
        assert_eq!(
            [
                at(0.0),
                at(0.05),
                at(0.1),
                at(0.29),
                at(0.3),
                at(0.41),
                at(-1.0)
            ],
            [0, 0, 1, 1, 2, 0, 0]
        );
    }

    #[test]
    fn flames_gif_frames_follow_media_time() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/motiontext/plugins/flames@2.0.0/assets/flame.gif");
        let bytes = std::fs::read(&path).expect("flame.gif in shared");
        let g = decode_image(&bytes, &limits()).expect("flame.gif decodes");
        assert_eq!((g.width, g.height, g.frames.len()), (480, 272, 104));
        assert!(g.frames.iter().all(|f| (f.delay - 0.1).abs() < 1e-9));
        // floor((t − t_appear) / 0.1) mod 104.
        assert_eq!(g.frame_index(0.0), 0);
        assert_eq!(g.frame_index(0.35), 3);
        assert_eq!(g.frame_index(10.45), 0);
        assert_eq!(g.frame_index(12.5), 21);
        // 1-bit transparency: the top rows are clear, the middle has fire.
        assert_eq!(px(&g, 10, 240, 0)[3], 0);
        assert!((0..480).any(|x| px(&g, 10, x, 200)[3] == 255));
    }

    #[test]
    fn limits_are_enforced() {
        let png = encode(ImageFormat::Png, &picture());
        let small = AssetConfig {
            max_bytes: 10,
            ..limits()
        };
        assert!(matches!(
            decode_image(&png, &small),
            Err(AssetProblem::TooLarge { limit: 10, .. })
        ));
        let narrow = AssetConfig {
            max_dimension: 3,
            ..limits()
        };
        let e = decode_image(&png, &narrow).unwrap_err();
        assert_eq!(
            e.to_string(),
            "4×2 px, larger than the limit of 3 px per side"
        );
        let few = AssetConfig {
            max_frames: 2,
            ..limits()
        };
        assert!(matches!(
            decode_image(&gif(&[(1, 100), (2, 100), (3, 100)]), &few),
            Err(AssetProblem::TooManyFrames { limit: 2 })
        ));
        let tight = AssetConfig {
            max_decoded_bytes: 30,
            ..limits()
        };
        assert!(matches!(
            decode_image(&gif(&[(1, 100), (2, 100)]), &tight),
            Err(AssetProblem::DecodedTooLarge { .. })
        ));
        let e = decode_image(b"GIF89a\x02\x00\x02\x00\x00\x00\x00,", &limits()).unwrap_err();
        assert!(matches!(e, AssetProblem::Decode(_)), "{e:?}");
        assert!(matches!(
            decode_image(b"plain text", &limits()),
            Err(AssetProblem::UnknownFormat)
        ));
    }

    #[test]
    fn cover_crop_takes_the_middle_band() {
        // A wide box: scale 600/480 = 1.25, the box shows 60/1.25 = 48 rows from the middle.
        let c = cover_crop(480.0, 272.0, 600.0, 60.0);
        assert_eq!(c, [0.0, 112.0, 480.0, 48.0]);
        // A tall box: the middle columns.
        let c = cover_crop(480.0, 272.0, 100.0, 272.0);
        assert_eq!(c, [190.0, 0.0, 100.0, 272.0]);
        // The same aspect: everything.
        assert_eq!(
            cover_crop(480.0, 272.0, 240.0, 136.0),
            [0.0, 0.0, 480.0, 272.0]
        );
    }

    #[test]
    fn resample_averages_when_shrinking_and_interpolates_when_growing() {
        // 4×1: 0, 100, 200, 250 grey, opaque.
        let src: Vec<u8> = [0u8, 100, 200, 250]
            .iter()
            .flat_map(|&v| [v, v, v, 255])
            .collect();
        let half = resample(&src, 4, 1, [0.0, 0.0, 4.0, 1.0], (2, 1));
        assert_eq!(half, [50, 50, 50, 255, 225, 225, 225, 255]);
        let cropped = resample(&src, 4, 1, [1.0, 0.0, 2.0, 1.0], (1, 1));
        assert_eq!(cropped, [150, 150, 150, 255]);
        let grown = resample(&src, 4, 1, [0.0, 0.0, 2.0, 1.0], (4, 1));
        // Sample centres at 0.25, 0.75, 1.25, 1.75 source px (clamped at the edge).
        assert_eq!(
            grown.chunks(4).map(|p| p[0]).collect::<Vec<_>>(),
            [0, 25, 75, 125]
        );
    }

    #[test]
    fn masks_keep_the_source_unless_heavily_downscaled_and_fit_the_atlas() {
        let img = DecodedImage::new(
            3000,
            10,
            vec![ImageFrame {
                pixels: vec![255; 3000 * 10 * 4],
                delay: f64::INFINITY,
            }],
        );
        let mut masks = ImageMasks::default();
        let full = [0.0, 0.0, 3000.0, 10.0];
        let m = masks.mask(&img, 0, full, (300.0, 1.0)).expect("mask");
        assert_eq!(
            (m.width, m.height),
            (300, 1),
            "pre-scaled to the drawn size"
        );
        assert_eq!(m.format, MaskFormat::Rgba);
        let again = masks.mask(&img, 0, full, (300.0, 1.0)).expect("mask");
        assert_eq!(again.id, m.id, "cached");
        let big = masks.mask(&img, 0, full, (3000.0, 10.0)).expect("mask");
        assert_eq!(
            (big.width, big.height),
            (MAX_MASK_SIDE, 6),
            "capped for the atlas"
        );
        let part = masks
            .mask(&img, 0, [0.0, 0.0, 100.0, 10.0], (110.0, 11.0))
            .expect("mask");
        assert_eq!((part.width, part.height), (100, 10), "source pixels kept");
        assert!(masks.mask(&img, 1, full, (1.0, 1.0)).is_none());
        assert!(m.id >= 1 << 62);
    }

    fn loader_in(dir: &Path) -> AssetLoader {
        let config = AssetConfig {
            base_dir: dir.to_path_buf(),
            plugin_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/motiontext/plugins"),
            ..AssetConfig::default()
        };
        AssetLoader::new(&config, &MediaConfig::default()).expect("loader")
    }

    fn scene(define: &str, nodes: &str) -> Scene {
        let json = format!(
            r#"{{"version": "2.0", "timebase": {{"unit": "seconds"}}, "stage": {{"baseAspect": "16:9"}},
            "tracks": [{{"id": "t", "type": "free"}}], "define": {define},
            "cues": [{{"id": "c", "track": "t", "root": {{"id": "g", "eType": "group", "displayTime": [0, 5], "children": {nodes}}}}}]}}"#
        );
        crate::scene::parse_scenario(json.as_bytes(), &crate::scene::ParseOptions::default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn loader_reads_nodes_define_images_fonts_and_plugin_assets() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("pics")).expect("mkdir");
        std::fs::write(
            dir.path().join("pics/a.png"),
            encode(ImageFormat::Png, &picture()),
        )
        .expect("write");
        std::fs::write(dir.path().join("b.gif"), gif(&[(1, 100), (2, 100)])).expect("write");
        std::fs::copy(
            "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
            dir.path().join("brand.ttf"),
        )
        .expect("a font to copy");
        let s = scene(
            r#"{"logo": {"type": "image", "src": "b.gif"}, "brand": {"type": "font", "url": "./brand.ttf", "family": "Brand Sans"},
                "music": {"type": "audio", "src": "x.mp3"}}"#,
            r#"[{"id": "i", "eType": "image", "src": "pics/a.png"}, {"id": "j", "eType": "image", "src": "define.logo"},
                {"id": "f", "eType": "text", "text": "x", "pluginChain": [{"name": "flames@2.0.0"}]}]"#,
        );
        let media = loader_in(dir.path()).load(&s).expect("loads");
        assert_eq!(media.image("pics/a.png").map(|i| i.width), Some(4));
        assert_eq!(media.image("b.gif").map(|i| i.frames.len()), Some(2));
        assert_eq!(media.fonts.len(), 1);
        assert_eq!(media.fonts[0].names, ["brand", "Brand Sans", "./brand.ttf"]);
        assert_eq!(
            media
                .plugin_image("flames", "flame.gif")
                .map(|i| i.frames.len()),
            Some(104)
        );
        assert_eq!(
            media.natural_size(&NodeKind::Image {
                src: "pics/a.png".into()
            }),
            Some((4, 2))
        );
    }

    #[test]
    fn loader_errors_name_the_node_source_and_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = dir.path().join("assets");
        std::fs::create_dir(&inner).expect("mkdir");
        std::fs::write(
            dir.path().join("secret.png"),
            encode(ImageFormat::Png, &picture()),
        )
        .expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret.png"), inner.join("link.png"))
            .expect("symlink");
        std::fs::write(inner.join("big.png"), vec![0u8; 2048]).expect("write");
        std::fs::write(inner.join("junk.png"), b"not a picture").expect("write");
        let loader = loader_in(&inner);
        let err = |nodes: &str| {
            loader
                .load(&scene("{}", nodes))
                .expect_err("must fail")
                .to_string()
        };
        assert_eq!(
            err(r#"[{"id": "m", "eType": "image", "src": "nope.png"}]"#),
            format!(
                "image node \"m\" at cues[0].root.children[0] (nope.png): file {} does not exist",
                inner.canonicalize().unwrap().join("nope.png").display()
            )
        );
        assert!(err(r#"[{"id": "l", "eType": "image", "src": "link.png"}]"#)
            .ends_with("(link.png): the path leaves the asset folder"));
        assert!(err(r#"[{"id": "j", "eType": "image", "src": "junk.png"}]"#)
            .ends_with("not a PNG, JPEG, WebP or GIF image"));
        let small = AssetLoader::new(
            &AssetConfig {
                base_dir: inner.clone(),
                max_bytes: 1024,
                ..AssetConfig::default()
            },
            &MediaConfig::default(),
        )
        .expect("loader");
        let e = small
            .load(&scene(
                "{}",
                r#"[{"id": "b", "eType": "image", "src": "big.png"}]"#,
            ))
            .expect_err("too large");
        assert!(
            e.to_string()
                .ends_with("2048 bytes, more than the limit of 1024 bytes"),
            "{e}"
        );
        assert_eq!(e.code(), "SCENARIO_PARSE_ERROR");
        let remote = loader
            .load(&scene(
                "{}",
                r#"[{"id": "r", "eType": "image", "src": "https://cdn.example.com/a.png"}]"#,
            ))
            .expect_err("remote off");
        assert!(
            remote.to_string().contains("remote assets are off"),
            "{remote}"
        );
        // A missing plugin asset names the plugin and the path.
        let no_plugins = AssetLoader::new(
            &AssetConfig {
                plugin_dir: dir.path().join("no-plugins"),
                ..AssetConfig::default()
            },
            &MediaConfig::default(),
        )
        .expect("loader");
        let e = no_plugins
            .load(&scene(
                "{}",
                r#"[{"id": "f", "eType": "text", "text": "x", "pluginChain": [{"name": "flames"}]}]"#,
            ))
            .expect_err("no flame.gif");
        let path = dir.path().join("no-plugins/flames@2.0.0/assets/flame.gif");
        assert_eq!(
            e.to_string(),
            format!(
                "plugin \"flames\" ({}): file {} does not exist",
                path.display(),
                path.display()
            )
        );
        assert_eq!(e.code(), "RENDER_INTERNAL_ERROR");
    }

    #[test]
    fn remote_sources_use_the_media_allow_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = MediaConfig {
            root: dir.path().join("media"),
            work_dir: dir.path().join("work"),
            allowed_hosts: vec!["cdn.example.com".into()],
            ..MediaConfig::default()
        };
        let loader = AssetLoader::new(&AssetConfig::default(), &media).expect("loader");
        let e = loader
            .load(&scene(
                "{}",
                r#"[{"id": "r", "eType": "image", "src": "https://evil.example.org/a.png"}]"#,
            ))
            .expect_err("host refused");
        assert!(
            e.to_string()
                .contains("host 'evil.example.org' is not on the allowed host list"),
            "{e}"
        );
    }

    #[test]
    fn video_node_shows_its_first_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 2 s clip: red for the first second, then blue.
        let status = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=64x36:r=10:d=1",
            ])
            .args(["-f", "lavfi", "-i", "color=c=blue:s=64x36:r=10:d=1"])
            .args([
                "-filter_complex",
                "[0][1]concat=n=2:v=1",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(dir.path().join("clip.mp4"))
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        std::fs::write(dir.path().join("broken.mp4"), b"not a video").expect("write");
        let loader = loader_in(dir.path());
        let media = loader
            .load(&scene(
                "{}",
                r#"[{"id": "v", "eType": "video", "src": "clip.mp4", "autoplay": true}]"#,
            ))
            .expect("video loads");
        let frame = media.video_frame("clip.mp4").expect("first frame");
        assert_eq!((frame.width, frame.height), (64, 36));
        let p = px(frame, 0, 32, 18);
        assert!(
            p[0] > 200 && p[2] < 60 && p[3] == 255,
            "red first frame: {p:?}"
        );
        let e = loader
            .load(&scene(
                "{}",
                r#"[{"id": "w", "eType": "video", "src": "broken.mp4"}]"#,
            ))
            .expect_err("undecodable");
        assert!(
            e.to_string().starts_with(
                "video node \"w\" at cues[0].root.children[0] (broken.mp4): cannot decode"
            ),
            "{e}"
        );
    }
}
