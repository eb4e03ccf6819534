//! Scene at time t → display list.
pub mod display;
