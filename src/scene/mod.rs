//! MotionText scenario → validated scene.
pub mod color;
pub mod css;
pub mod model;
