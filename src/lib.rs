//! renderd: MotionText captions composited on the GPU over decoded video, encoded to MP4.
//!
//! Layers (arrows point down): `pipeline` → `gpu` / `compose` → `text` / `anim` → `scene`.
#![deny(unsafe_code)]

pub mod anim;
pub mod api;
pub mod app;
pub mod auth;
pub mod browser;
pub mod compose;
pub mod config;
pub mod domain;
pub mod engine;
pub mod gpu;
pub mod grpc;
pub mod imagecmp;
pub mod media;
pub mod pipeline;
pub mod progress;
pub mod queue;
pub mod quota;
pub mod reference;
pub mod rest;
pub mod scene;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod webhook;
