//! MotionText scenario → validated scene.
pub mod model;
