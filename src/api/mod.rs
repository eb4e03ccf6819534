//! The render API independent of its faces: [`core::RenderCore`] does what a request asks
//! (rate limit, validation, quota, store, queue) and [`error::ApiError`] classifies what went
//! wrong. `grpc` and `rest` are thin faces over it; nothing here imports tonic or axum.

pub mod core;
pub mod error;

pub use self::core::{CreateInput, Created, HistoryQuery, OptionsInput, RenderCore};
pub use self::error::{ApiError, Lang};
