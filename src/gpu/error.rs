//! Errors of GPU initialisation and of frame composition.

use ash::vk;

/// Why no usable Vulkan device could be set up.
#[derive(Debug, thiserror::Error)]
pub enum GpuInitError {
    #[error("cannot load the Vulkan loader (libvulkan): {0}")]
    LoaderMissing(String),
    #[error("Vulkan call {op} failed during initialisation: {result}")]
    Vulkan {
        op: &'static str,
        result: vk::Result,
    },
    #[error(
        "no Vulkan 1.3 device with a graphics+compute queue was found (devices seen: {seen:?})"
    )]
    NoDevice { seen: Vec<String> },
    #[error("device {device:?} has no queue family supporting both graphics and compute")]
    NoSuitableQueue { device: String },
    #[error("no device matches the configured preference {wanted} (devices seen: {seen:?})")]
    DeviceNotFound { wanted: String, seen: Vec<String> },
}

impl GpuInitError {
    /// True when the machine simply has no Vulkan (no loader or no device at all).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GpuInitError::LoaderMissing(_) | GpuInitError::NoDevice { .. }
        ) || matches!(
            self,
            GpuInitError::Vulkan {
                result: vk::Result::ERROR_INCOMPATIBLE_DRIVER
                    | vk::Result::ERROR_INITIALIZATION_FAILED,
                ..
            }
        )
    }
}

/// Coarse classes of [`GpuError`], for mapping to job failure codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuErrorKind {
    OutOfMemory,
    DeviceLost,
    InvalidInput,
    Internal,
}

/// A failure while creating compositor resources or composing a frame.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("out of GPU memory during {op}")]
    OutOfDeviceMemory { op: &'static str },
    #[error("out of host memory during {op}")]
    OutOfHostMemory { op: &'static str },
    #[error("the GPU device was lost during {op}")]
    DeviceLost { op: &'static str },
    #[error("Vulkan call {op} failed: {result}")]
    Vulkan {
        op: &'static str,
        result: vk::Result,
    },
    #[error("no memory type with {wanted:?} for {what}")]
    NoMemoryType {
        what: &'static str,
        wanted: vk::MemoryPropertyFlags,
    },
    #[error("invalid compositor spec: {0}")]
    InvalidSpec(String),
    #[error("invalid input frame: {0}")]
    BadInput(String),
    #[error("invalid output planes: {0}")]
    BadOutput(String),
    #[error("invalid display list: {0}")]
    BadDisplayList(String),
    #[error("the glyph masks of one frame need more than the largest atlas ({size}x{size})")]
    AtlasFull { size: u32 },
    #[error("ticket {0} is unknown (already collected, or from another compositor)")]
    UnknownTicket(u64),
}

impl GpuError {
    pub fn kind(&self) -> GpuErrorKind {
        match self {
            GpuError::OutOfDeviceMemory { .. } | GpuError::OutOfHostMemory { .. } => {
                GpuErrorKind::OutOfMemory
            }
            GpuError::DeviceLost { .. } => GpuErrorKind::DeviceLost,
            GpuError::InvalidSpec(_)
            | GpuError::BadInput(_)
            | GpuError::BadOutput(_)
            | GpuError::BadDisplayList(_)
            | GpuError::AtlasFull { .. }
            | GpuError::UnknownTicket(_) => GpuErrorKind::InvalidInput,
            GpuError::Vulkan { .. } | GpuError::NoMemoryType { .. } => GpuErrorKind::Internal,
        }
    }

    /// Classifies a failed Vulkan call.
    pub(crate) fn from_vk(op: &'static str, result: vk::Result) -> Self {
        match result {
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => GpuError::OutOfDeviceMemory { op },
            vk::Result::ERROR_OUT_OF_HOST_MEMORY => GpuError::OutOfHostMemory { op },
            vk::Result::ERROR_DEVICE_LOST => GpuError::DeviceLost { op },
            result => GpuError::Vulkan { op, result },
        }
    }
}

/// `map_err` helper: `.map_err(vk_err("vkCreateBuffer"))`.
pub(crate) fn vk_err(op: &'static str) -> impl Fn(vk::Result) -> GpuError {
    move |result| GpuError::from_vk(op, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vulkan_results_are_classified() {
        assert_eq!(
            GpuError::from_vk("x", vk::Result::ERROR_DEVICE_LOST).kind(),
            GpuErrorKind::DeviceLost
        );
        assert_eq!(
            GpuError::from_vk("x", vk::Result::ERROR_OUT_OF_DEVICE_MEMORY).kind(),
            GpuErrorKind::OutOfMemory
        );
        assert_eq!(
            GpuError::from_vk("x", vk::Result::ERROR_UNKNOWN).kind(),
            GpuErrorKind::Internal
        );
        assert_eq!(
            GpuError::UnknownTicket(3).kind(),
            GpuErrorKind::InvalidInput
        );
    }
}
