//! CPU cost of composing captions (the part of the GPU stage that runs on the CPU: plugin
//! evaluation, layout, glyph rasterisation and caching, display-list building), frame by frame at
//! 30 fps over a 1920×1080 frame, for one scenario.
//!
//! `cargo run --release --example bench_compose SCENARIO.json [SECONDS]`
//! (e.g. the benchmark's captions: `ALL_PLUGINS=1 python3 scripts/bench/make_captions.py 20 20 c.json c.ass`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use renderd::compose::display::DrawItem;
use renderd::compose::Composer;
use renderd::config::Config;
use renderd::engine::scene_parse_options;
use renderd::scene::parse_scenario;
use renderd::text::FontLibrary;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: bench_compose SCENARIO.json [SECONDS]")?;
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20.0);
    let config = Config::default();
    let json = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    let scene = Arc::new(parse_scenario(&json, &scene_parse_options(&config))?);
    let fonts = FontLibrary::load(config.fonts.dir.as_deref())?;
    let frames = (seconds * 30.0).round() as usize;
    for pass in ["first pass (cold caches)", "second pass (warm caches)"] {
        let mut composer = Composer::new(Arc::clone(&scene), fonts.engine(), config.compose);
        if pass.starts_with("second") {
            for i in 0..frames {
                composer.compose(i as f64 / 30.0, [0.0, 0.0, 1920.0, 1080.0]);
            }
        }
        let mut times = Vec::with_capacity(frames);
        let (mut items, mut masks) = (0usize, 0usize);
        for i in 0..frames {
            let t0 = Instant::now();
            let list = composer.compose(i as f64 / 30.0, [0.0, 0.0, 1920.0, 1080.0]);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            items += list.items.len();
            masks += list
                .items
                .iter()
                .filter(|d| matches!(d, DrawItem::Mask(_)))
                .count();
        }
        let total: f64 = times.iter().sum();
        times.sort_by(f64::total_cmp);
        let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize];
        println!(
            "{pass}: {frames} frames, {total:.0} ms in all, per frame median {:.3} ms, p90 {:.3} ms, \
             max {:.3} ms; {:.1} draw items ({:.1} masks) per frame",
            q(0.5), q(0.9), q(1.0),
            items as f64 / frames as f64, masks as f64 / frames as f64
        );
    }
    Ok(())
}
