//! renderd: MotionText captions composited on the GPU over decoded video, encoded to MP4.
//!
//! Layers (arrows point down): `pipeline` → `gpu` / `compose` → `text` / `anim` → `scene`.
#![deny(unsafe_code)]

pub mod compose;
pub mod gpu;
pub mod progress;
pub mod scene;
