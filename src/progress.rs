//! Progress reporting and cancellation shared by the engine and its callers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::pipeline::EncoderKind;

/// What the engine is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderStage {
    Probing,
    Rendering,
    Finalizing,
}

impl RenderStage {
    pub fn as_str(self) -> &'static str {
        match self {
            RenderStage::Probing => "probing",
            RenderStage::Rendering => "rendering",
            RenderStage::Finalizing => "finalizing",
        }
    }
}

/// One progress update. `frames_total` is an estimate from the container until the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: RenderStage,
    pub frames_done: u64,
    pub frames_total: u64,
    /// Frames per second over the render so far.
    pub fps: f64,
    /// The video encoder actually open, once it is.
    pub encoder: Option<EncoderKind>,
}

/// A sink for progress updates; called from the render threads, so it must be cheap.
pub trait ProgressSink: Send + Sync {
    fn report(&self, progress: &Progress);
}

impl<F: Fn(&Progress) + Send + Sync> ProgressSink for F {
    fn report(&self, progress: &Progress) {
        self(progress)
    }
}

/// Cooperative cancellation, checked by the engine once per frame.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// The underlying flag, for signal handlers that set it.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
