//! Vulkan instance, device choice, logical device and queue: [`Gpu`].

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use super::error::{GpuError, GpuInitError};

/// Which physical device to use.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum DevicePreference {
    /// Discrete > integrated > virtual > CPU.
    #[default]
    Auto,
    Discrete,
    Integrated,
    Cpu,
    /// A substring of the device name (case-insensitive).
    Name(String),
}

impl std::fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DevicePreference::Auto => f.write_str("auto"),
            DevicePreference::Discrete => f.write_str("discrete"),
            DevicePreference::Integrated => f.write_str("integrated"),
            DevicePreference::Cpu => f.write_str("cpu"),
            DevicePreference::Name(n) => write!(f, "name {n:?}"),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct GpuConfig {
    pub device: DevicePreference,
    /// Enable VK_LAYER_KHRONOS_validation when installed.
    pub validation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    Discrete,
    Integrated,
    Virtual,
    Cpu,
    Other,
}

impl DeviceType {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => DeviceType::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceType::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceType::Virtual,
            vk::PhysicalDeviceType::CPU => DeviceType::Cpu,
            _ => DeviceType::Other,
        }
    }

    /// Auto preference order: lower is better.
    fn rank(self) -> u32 {
        match self {
            DeviceType::Discrete => 0,
            DeviceType::Integrated => 1,
            DeviceType::Virtual => 2,
            DeviceType::Cpu => 3,
            DeviceType::Other => 4,
        }
    }
}

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Counts validation errors reported through the debug messenger.
struct DebugState {
    errors: AtomicU64,
}

/// Entry + instance + optional debug messenger; destroyed after every device built on it.
struct Instance {
    entry: ash::Entry,
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    // Boxed so the address handed to the messenger as user data stays put.
    debug_state: Box<DebugState>,
}

impl Instance {
    fn new(validation: bool) -> Result<Self, GpuInitError> {
        // SAFETY: loading libvulkan runs its initialisers; the loader is a well-behaved system
        // library and the returned Entry keeps it loaded for as long as it is used.
        let entry = unsafe { ash::Entry::load() }
            .map_err(|e| GpuInitError::LoaderMissing(e.to_string()))?;
        let debug_state = Box::new(DebugState {
            errors: AtomicU64::new(0),
        });
        let mut layers: Vec<*const std::ffi::c_char> = Vec::new();
        let mut extensions: Vec<*const std::ffi::c_char> = Vec::new();
        let mut use_debug = false;
        if validation {
            // SAFETY: plain query on a loaded entry.
            let available =
                unsafe { entry.enumerate_instance_layer_properties() }.map_err(|result| {
                    GpuInitError::Vulkan {
                        op: "vkEnumerateInstanceLayerProperties",
                        result,
                    }
                })?;
            if available
                .iter()
                .any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER))
            {
                layers.push(VALIDATION_LAYER.as_ptr());
                extensions.push(ash::ext::debug_utils::NAME.as_ptr());
                use_debug = true;
            } else {
                tracing::warn!(
                    "validation requested but VK_LAYER_KHRONOS_validation is not installed"
                );
            }
        }
        let app_name = c"renderd";
        let app = vk::ApplicationInfo::default()
            .application_name(app_name)
            .engine_name(app_name)
            .api_version(vk::API_VERSION_1_3);
        let enabled_validation = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut validation_features =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enabled_validation);
        let mut create_info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&extensions);
        if use_debug {
            create_info = create_info.push_next(&mut validation_features);
        }
        // SAFETY: create_info and everything it points to (names, app info) outlive the call.
        let instance = unsafe { entry.create_instance(&create_info, None) }.map_err(|result| {
            GpuInitError::Vulkan {
                op: "vkCreateInstance",
                result,
            }
        })?;
        let mut this = Instance {
            entry,
            instance,
            debug: None,
            debug_state,
        };
        if use_debug {
            let loader = ash::ext::debug_utils::Instance::new(&this.entry, &this.instance);
            let info = vk::DebugUtilsMessengerCreateInfoEXT::default()
                .message_severity(
                    vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                        | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
                )
                .message_type(
                    vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                        | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                        | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
                )
                .pfn_user_callback(Some(debug_callback))
                .user_data(std::ptr::from_ref::<DebugState>(&this.debug_state) as *mut c_void);
            // SAFETY: the user data points into a Box owned by `this`, which destroys the
            // messenger (in Drop) before the Box is freed.
            let messenger =
                unsafe { loader.create_debug_utils_messenger(&info, None) }.map_err(|result| {
                    GpuInitError::Vulkan {
                        op: "vkCreateDebugUtilsMessengerEXT",
                        result,
                    }
                })?;
            this.debug = Some((loader, messenger));
        }
        Ok(this)
    }

    fn physical_devices(&self) -> Result<Vec<PhysicalInfo>, GpuInitError> {
        // SAFETY: the instance is alive.
        let devices = unsafe { self.instance.enumerate_physical_devices() }.map_err(|result| {
            GpuInitError::Vulkan {
                op: "vkEnumeratePhysicalDevices",
                result,
            }
        })?;
        Ok(devices
            .into_iter()
            .map(|pd| {
                // SAFETY: pd was just enumerated from this live instance.
                let props = unsafe { self.instance.get_physical_device_properties(pd) };
                // SAFETY: as above.
                let families = unsafe {
                    self.instance
                        .get_physical_device_queue_family_properties(pd)
                };
                let wanted = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
                let queue_family = families
                    .iter()
                    .position(|f| f.queue_flags.contains(wanted) && f.queue_count > 0)
                    .and_then(|i| u32::try_from(i).ok());
                PhysicalInfo {
                    handle: pd,
                    name: props
                        .device_name_as_c_str()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| "<unnamed>".to_owned()),
                    device_type: DeviceType::from_vk(props.device_type),
                    api_version: props.api_version,
                    queue_family,
                }
            })
            .collect())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some((loader, messenger)) = self.debug.take() {
            // SAFETY: the messenger was created from this instance and is destroyed once.
            unsafe { loader.destroy_debug_utils_messenger(messenger, None) };
        }
        // SAFETY: every child (the device) is destroyed first: Gpu drops its device in its own
        // Drop before this field is dropped.
        unsafe { self.instance.destroy_instance(None) };
    }
}

unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data pointer (or null) for the duration of the call.
    let message = unsafe { data.as_ref() }
        // SAFETY: p_message, when non-null, is a NUL-terminated string valid during the call.
        .and_then(|d| unsafe { d.message_as_c_str() })
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        tracing::error!(target: "renderd::gpu::validation", "{message}");
        // SAFETY: user data is the DebugState boxed in Instance, alive while the messenger is.
        if let Some(state) = unsafe { (user as *const DebugState).as_ref() } {
            state.errors.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        tracing::warn!(target: "renderd::gpu::validation", "{message}");
    }
    vk::FALSE
}

struct PhysicalInfo {
    handle: vk::PhysicalDevice,
    name: String,
    device_type: DeviceType,
    api_version: u32,
    queue_family: Option<u32>,
}

/// Lists the Vulkan devices of this machine (name, type), for diagnostics.
pub fn list_devices() -> Result<Vec<(String, DeviceType)>, GpuInitError> {
    let instance = Instance::new(false)?;
    Ok(instance
        .physical_devices()?
        .into_iter()
        .map(|p| (p.name, p.device_type))
        .collect())
}

fn choose_device(devices: &[PhysicalInfo], pref: &DevicePreference) -> Result<usize, GpuInitError> {
    let seen: Vec<String> = devices
        .iter()
        .map(|d| format!("{} ({:?})", d.name, d.device_type))
        .collect();
    let usable = |d: &PhysicalInfo| d.api_version >= vk::API_VERSION_1_3;
    let candidates: Vec<usize> = (0..devices.len())
        .filter(|&i| usable(&devices[i]))
        .collect();
    if candidates.is_empty() {
        return Err(GpuInitError::NoDevice { seen });
    }
    let pick = match pref {
        DevicePreference::Auto => candidates.iter().copied().min_by_key(|&i| {
            (
                devices[i].queue_family.is_none(),
                devices[i].device_type.rank(),
            )
        }),
        DevicePreference::Discrete => candidates
            .iter()
            .copied()
            .find(|&i| devices[i].device_type == DeviceType::Discrete),
        DevicePreference::Integrated => candidates
            .iter()
            .copied()
            .find(|&i| devices[i].device_type == DeviceType::Integrated),
        DevicePreference::Cpu => candidates
            .iter()
            .copied()
            .find(|&i| devices[i].device_type == DeviceType::Cpu),
        DevicePreference::Name(wanted) => {
            let wanted = wanted.to_lowercase();
            candidates
                .iter()
                .copied()
                .find(|&i| devices[i].name.to_lowercase().contains(&wanted))
        }
    };
    let index = pick.ok_or_else(|| GpuInitError::DeviceNotFound {
        wanted: pref.to_string(),
        seen,
    })?;
    if devices[index].queue_family.is_none() {
        return Err(GpuInitError::NoSuitableQueue {
            device: devices[index].name.clone(),
        });
    }
    Ok(index)
}

/// A Vulkan device with one graphics+compute queue. Shared (`Arc`) by every object built on it.
pub struct Gpu {
    device: ash::Device,
    queue: Mutex<vk::Queue>,
    queue_family: u32,
    physical: vk::PhysicalDevice,
    memory_properties: vk::PhysicalDeviceMemoryProperties,
    limits: vk::PhysicalDeviceLimits,
    name: String,
    device_type: DeviceType,
    api_version: u32,
    // Dropped after `device` is destroyed in Drop.
    instance: Instance,
}

impl Gpu {
    pub fn new(cfg: &GpuConfig) -> Result<Arc<Gpu>, GpuInitError> {
        let instance = Instance::new(cfg.validation)?;
        let devices = instance.physical_devices()?;
        let index = choose_device(&devices, &cfg.device)?;
        let chosen = &devices[index];
        let queue_family = chosen
            .queue_family
            .ok_or_else(|| GpuInitError::NoSuitableQueue {
                device: chosen.name.clone(),
            })?;
        let priorities = [1.0f32];
        let queue_info = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(queue_family)
            .queue_priorities(&priorities)];
        let mut features13 = vk::PhysicalDeviceVulkan13Features::default().dynamic_rendering(true);
        let create_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_info)
            .push_next(&mut features13);
        // SAFETY: the physical device belongs to this instance; create_info outlives the call and
        // dynamicRendering is core (and required) in Vulkan 1.3, which the device reports.
        let device = unsafe {
            instance
                .instance
                .create_device(chosen.handle, &create_info, None)
        }
        .map_err(|result| GpuInitError::Vulkan {
            op: "vkCreateDevice",
            result,
        })?;
        // SAFETY: the family/index pair was requested in create_info.
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        // SAFETY: plain queries on a live physical device.
        let memory_properties = unsafe {
            instance
                .instance
                .get_physical_device_memory_properties(chosen.handle)
        };
        // SAFETY: as above.
        let limits = unsafe {
            instance
                .instance
                .get_physical_device_properties(chosen.handle)
        }
        .limits;
        tracing::info!(
            device = %chosen.name,
            device_type = ?chosen.device_type,
            api = %format!(
                "{}.{}.{}",
                vk::api_version_major(chosen.api_version),
                vk::api_version_minor(chosen.api_version),
                vk::api_version_patch(chosen.api_version)
            ),
            validation = instance.debug.is_some(),
            "Vulkan device chosen"
        );
        Ok(Arc::new(Gpu {
            device,
            queue: Mutex::new(queue),
            queue_family,
            physical: chosen.handle,
            memory_properties,
            limits,
            name: chosen.name.clone(),
            device_type: chosen.device_type,
            api_version: chosen.api_version,
            instance,
        }))
    }

    pub fn device_name(&self) -> &str {
        &self.name
    }

    pub fn device_type(&self) -> DeviceType {
        self.device_type
    }

    pub fn api_version(&self) -> (u32, u32, u32) {
        (
            vk::api_version_major(self.api_version),
            vk::api_version_minor(self.api_version),
            vk::api_version_patch(self.api_version),
        )
    }

    /// Validation-layer errors seen so far (tests assert 0). Warnings are logged, not counted.
    pub fn validation_errors(&self) -> u64 {
        self.instance.debug_state.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn device(&self) -> &ash::Device {
        &self.device
    }

    pub(crate) fn queue_family(&self) -> u32 {
        self.queue_family
    }

    pub(crate) fn limits(&self) -> &vk::PhysicalDeviceLimits {
        &self.limits
    }

    /// Whether `format` supports `features` with optimal tiling.
    pub(crate) fn supports_format(
        &self,
        format: vk::Format,
        features: vk::FormatFeatureFlags,
    ) -> bool {
        // SAFETY: plain query on a live physical device.
        let props = unsafe {
            self.instance
                .instance
                .get_physical_device_format_properties(self.physical, format)
        };
        props.optimal_tiling_features.contains(features)
    }

    /// The first memory type allowed by `type_bits` with all of `flags`.
    pub(crate) fn memory_type(
        &self,
        type_bits: u32,
        flags: vk::MemoryPropertyFlags,
    ) -> Option<u32> {
        let props = &self.memory_properties;
        (0..props.memory_type_count).find(|&i| {
            type_bits & (1 << i) != 0
                && props.memory_types[i as usize]
                    .property_flags
                    .contains(flags)
        })
    }

    /// Submits one batch to the queue, signalling `fence` on completion.
    pub(crate) fn submit(
        &self,
        command_buffer: vk::CommandBuffer,
        fence: vk::Fence,
    ) -> Result<(), GpuError> {
        let buffers = [command_buffer];
        let submit = [vk::SubmitInfo::default().command_buffers(&buffers)];
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: the queue is externally synchronised by the mutex; the command buffer is fully
        // recorded and not pending (its slot's fence was waited on), the fence is unsignalled.
        unsafe { self.device.queue_submit(*queue, &submit, fence) }
            .map_err(super::error::vk_err("vkQueueSubmit"))
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every object created from this device holds an Arc<Gpu>, so they are all gone
        // by now; waiting for idle makes sure no queued work still uses the device.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_device(None);
        }
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .field("device_type", &self.device_type)
            .field("api_version", &self.api_version())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Wrapper {
        device: DevicePreference,
    }

    #[test]
    fn preference_deserialises_from_words_and_name_tables() {
        let w: Wrapper = serde_json::from_str(r#"{"device":"discrete"}"#).expect("discrete");
        assert_eq!(w.device, DevicePreference::Discrete);
        let w: Wrapper = serde_json::from_str(r#"{"device":"cpu"}"#).expect("cpu");
        assert_eq!(w.device, DevicePreference::Cpu);
        let w: Wrapper = serde_json::from_str(r#"{"device":{"name":"H100"}}"#).expect("name");
        assert_eq!(w.device, DevicePreference::Name("H100".into()));
        assert!(serde_json::from_str::<Wrapper>(r#"{"device":"fastest"}"#).is_err());
    }

    fn info(name: &str, device_type: DeviceType) -> PhysicalInfo {
        PhysicalInfo {
            handle: vk::PhysicalDevice::null(),
            name: name.into(),
            device_type,
            api_version: vk::API_VERSION_1_3,
            queue_family: Some(0),
        }
    }

    #[test]
    fn auto_prefers_discrete_then_integrated() {
        let devices = [
            info("llvmpipe", DeviceType::Cpu),
            info("iGPU", DeviceType::Integrated),
            info("H100", DeviceType::Discrete),
        ];
        assert_eq!(
            choose_device(&devices, &DevicePreference::Auto).ok(),
            Some(2)
        );
        assert_eq!(
            choose_device(&devices[..2], &DevicePreference::Auto).ok(),
            Some(1)
        );
        assert_eq!(
            choose_device(&devices, &DevicePreference::Cpu).ok(),
            Some(0)
        );
        assert_eq!(
            choose_device(&devices, &DevicePreference::Name("h100".into())).ok(),
            Some(2)
        );
    }

    #[test]
    fn missing_named_device_lists_what_was_seen() {
        let devices = [info("llvmpipe", DeviceType::Cpu)];
        match choose_device(&devices, &DevicePreference::Name("A100".into())) {
            Err(GpuInitError::DeviceNotFound { seen, .. }) => {
                assert_eq!(seen, vec!["llvmpipe (Cpu)".to_owned()]);
            }
            other => panic!("expected DeviceNotFound, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn old_api_devices_are_not_usable() {
        let mut old = info("old", DeviceType::Discrete);
        old.api_version = vk::API_VERSION_1_1;
        assert!(matches!(
            choose_device(&[old], &DevicePreference::Auto),
            Err(GpuInitError::NoDevice { .. })
        ));
    }
}
