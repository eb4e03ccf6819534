//! RAII owners of Vulkan objects. Each holds an `Arc<Gpu>` so the device outlives it, and
//! destroys exactly its own handle(s) in Drop.

use std::ptr::NonNull;
use std::sync::Arc;

use ash::vk;

use super::context::Gpu;
use super::error::{vk_err, GpuError};

/// Where a buffer's memory lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemoryLocation {
    /// Written by the CPU every frame, read by the GPU (staging, instance data).
    Upload,
    /// Written by the GPU, read by the CPU (cached when the device offers it).
    Readback,
}

/// A persistently mapped host pointer. Only dereferenced through `&self`/`&mut self` of the
/// owning [`Buffer`], so Rust's borrow rules govern CPU access.
struct Mapped(NonNull<u8>);

// SAFETY: the pointer refers to device memory mapped for the lifetime of the owning Buffer;
// it carries no thread affinity, and access goes through the Buffer's borrows.
unsafe impl Send for Mapped {}
// SAFETY: as above; shared access only yields shared slices.
unsafe impl Sync for Mapped {}

/// A buffer with its own host-visible, host-coherent memory, persistently mapped.
pub(crate) struct HostBuffer {
    gpu: Arc<Gpu>,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    size: usize,
    mapped: Mapped,
}

impl HostBuffer {
    pub(crate) fn new(
        gpu: &Arc<Gpu>,
        size: usize,
        usage: vk::BufferUsageFlags,
        location: MemoryLocation,
        what: &'static str,
    ) -> Result<Self, GpuError> {
        let size = size.max(4);
        let device = gpu.device();
        let info = vk::BufferCreateInfo::default()
            .size(size as u64)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid create info; the handle is owned by the returned value (or destroyed below).
        let buffer =
            unsafe { device.create_buffer(&info, None) }.map_err(vk_err("vkCreateBuffer"))?;
        let guard = BufferGuard { gpu, buffer };
        // SAFETY: the buffer was just created on this device.
        let req = unsafe { device.get_buffer_memory_requirements(buffer) };
        let coherent =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let preferred = match location {
            MemoryLocation::Upload => coherent,
            MemoryLocation::Readback => coherent | vk::MemoryPropertyFlags::HOST_CACHED,
        };
        let type_index = gpu
            .memory_type(req.memory_type_bits, preferred)
            .or_else(|| gpu.memory_type(req.memory_type_bits, coherent))
            .ok_or(GpuError::NoMemoryType {
                what,
                wanted: coherent,
            })?;
        let memory = allocate(gpu, req, type_index)?;
        let memory_guard = MemoryGuard { gpu, memory };
        // SAFETY: memory is fresh, large enough (from the requirements) and of an allowed type.
        unsafe { device.bind_buffer_memory(buffer, memory, 0) }
            .map_err(vk_err("vkBindBufferMemory"))?;
        // SAFETY: the memory is host visible and not mapped yet; the whole range is mapped.
        let ptr =
            unsafe { device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
                .map_err(vk_err("vkMapMemory"))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(GpuError::Vulkan {
            op: "vkMapMemory",
            result: vk::Result::ERROR_MEMORY_MAP_FAILED,
        })?;
        std::mem::forget(guard);
        std::mem::forget(memory_guard);
        Ok(HostBuffer {
            gpu: gpu.clone(),
            buffer,
            memory,
            size,
            mapped: Mapped(ptr),
        })
    }

    /// Replaces the buffer by one of at least `needed` bytes (rounded up to a power of two, so
    /// growth is rare) when it is smaller. The old buffer must not be in use by the GPU.
    pub(crate) fn grow_to(
        &mut self,
        needed: usize,
        usage: vk::BufferUsageFlags,
        location: MemoryLocation,
        what: &'static str,
    ) -> Result<(), GpuError> {
        if needed > self.size {
            *self = HostBuffer::new(&self.gpu, needed.next_power_of_two(), usage, location, what)?;
        }
        Ok(())
    }

    pub(crate) fn handle(&self) -> vk::Buffer {
        self.buffer
    }

    /// The mapped bytes. Callers only touch them while no GPU work using this buffer is pending
    /// (their slot's fence has been waited on), and the memory is host-coherent.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping covers `size` bytes and lives as long as self; the shared borrow
        // of self prevents concurrent CPU writes through bytes_mut.
        unsafe { std::slice::from_raw_parts(self.mapped.0.as_ptr(), self.size) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the exclusive borrow of self makes this the only CPU view.
        unsafe { std::slice::from_raw_parts_mut(self.mapped.0.as_ptr(), self.size) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        let device = self.gpu.device();
        // SAFETY: owners drop buffers only when no pending GPU work uses them (fences waited);
        // the mapping is released with the memory.
        unsafe {
            device.destroy_buffer(self.buffer, None);
            device.unmap_memory(self.memory);
            device.free_memory(self.memory, None);
        }
    }
}

/// Destroys a buffer if construction fails half way.
struct BufferGuard<'a> {
    gpu: &'a Arc<Gpu>,
    buffer: vk::Buffer,
}

impl Drop for BufferGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the buffer was never used by the GPU.
        unsafe { self.gpu.device().destroy_buffer(self.buffer, None) };
    }
}

/// Frees memory if construction fails half way.
struct MemoryGuard<'a> {
    gpu: &'a Arc<Gpu>,
    memory: vk::DeviceMemory,
}

impl Drop for MemoryGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the memory was never used by the GPU.
        unsafe { self.gpu.device().free_memory(self.memory, None) };
    }
}

struct ImageGuard<'a> {
    gpu: &'a Arc<Gpu>,
    image: vk::Image,
}

impl Drop for ImageGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the image was never used by the GPU.
        unsafe { self.gpu.device().destroy_image(self.image, None) };
    }
}

fn allocate(
    gpu: &Arc<Gpu>,
    req: vk::MemoryRequirements,
    type_index: u32,
) -> Result<vk::DeviceMemory, GpuError> {
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(type_index);
    // SAFETY: valid allocate info with a memory type index of this device.
    unsafe { gpu.device().allocate_memory(&info, None) }.map_err(vk_err("vkAllocateMemory"))
}

/// A 2-D device-local image with its own memory and a colour view.
pub(crate) struct Image {
    gpu: Arc<Gpu>,
    image: vk::Image,
    memory: vk::DeviceMemory,
    view: vk::ImageView,
}

impl Image {
    pub(crate) fn new(
        gpu: &Arc<Gpu>,
        width: u32,
        height: u32,
        format: vk::Format,
        usage: vk::ImageUsageFlags,
        what: &'static str,
    ) -> Result<Self, GpuError> {
        let device = gpu.device();
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(format)
            .extent(vk::Extent3D {
                width,
                height,
                depth: 1,
            })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        // SAFETY: valid create info; sizes were checked against device limits by the caller.
        let image = unsafe { device.create_image(&info, None) }.map_err(vk_err("vkCreateImage"))?;
        let guard = ImageGuard { gpu, image };
        // SAFETY: the image was just created on this device.
        let req = unsafe { device.get_image_memory_requirements(image) };
        let type_index = gpu
            .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL)
            .or_else(|| gpu.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
            .ok_or(GpuError::NoMemoryType {
                what,
                wanted: vk::MemoryPropertyFlags::DEVICE_LOCAL,
            })?;
        let memory = allocate(gpu, req, type_index)?;
        let memory_guard = MemoryGuard { gpu, memory };
        // SAFETY: fresh memory of an allowed type, large enough for the image.
        unsafe { device.bind_image_memory(image, memory, 0) }
            .map_err(vk_err("vkBindImageMemory"))?;
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(format)
            .subresource_range(COLOR_RANGE);
        // SAFETY: the image is bound to memory and the view matches its format and range.
        let view = unsafe { device.create_image_view(&view_info, None) }
            .map_err(vk_err("vkCreateImageView"))?;
        std::mem::forget(guard);
        std::mem::forget(memory_guard);
        Ok(Image {
            gpu: gpu.clone(),
            image,
            memory,
            view,
        })
    }

    pub(crate) fn handle(&self) -> vk::Image {
        self.image
    }

    pub(crate) fn view(&self) -> vk::ImageView {
        self.view
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let device = self.gpu.device();
        // SAFETY: owners drop images only after the GPU work using them completed.
        unsafe {
            device.destroy_image_view(self.view, None);
            device.destroy_image(self.image, None);
            device.free_memory(self.memory, None);
        }
    }
}

pub(crate) const COLOR_RANGE: vk::ImageSubresourceRange = vk::ImageSubresourceRange {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    base_mip_level: 0,
    level_count: 1,
    base_array_layer: 0,
    layer_count: 1,
};

pub(crate) const COLOR_LAYER: vk::ImageSubresourceLayers = vk::ImageSubresourceLayers {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    mip_level: 0,
    base_array_layer: 0,
    layer_count: 1,
};

/// Defines an RAII wrapper for a handle destroyed by one `ash::Device` method.
macro_rules! device_object {
    ($name:ident, $handle:ty, $destroy:ident) => {
        pub(crate) struct $name {
            gpu: Arc<Gpu>,
            handle: $handle,
        }

        impl $name {
            #[allow(dead_code)] // not every owner needs its raw handle back
            pub(crate) fn handle(&self) -> $handle {
                self.handle
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: the handle was created on this device, is owned only by self, and
                // owners drop it only after the GPU work that uses it has completed.
                unsafe { self.gpu.device().$destroy(self.handle, None) };
            }
        }
    };
}

device_object!(Sampler, vk::Sampler, destroy_sampler);
device_object!(
    DescriptorSetLayout,
    vk::DescriptorSetLayout,
    destroy_descriptor_set_layout
);
device_object!(DescriptorPool, vk::DescriptorPool, destroy_descriptor_pool);
device_object!(PipelineLayout, vk::PipelineLayout, destroy_pipeline_layout);
device_object!(Pipeline, vk::Pipeline, destroy_pipeline);
device_object!(ShaderModule, vk::ShaderModule, destroy_shader_module);
device_object!(CommandPool, vk::CommandPool, destroy_command_pool);
device_object!(Fence, vk::Fence, destroy_fence);

impl Sampler {
    /// Bilinear, clamp to edge, no mipmaps.
    pub(crate) fn linear(gpu: &Arc<Gpu>) -> Result<Self, GpuError> {
        let info = vk::SamplerCreateInfo::default()
            .mag_filter(vk::Filter::LINEAR)
            .min_filter(vk::Filter::LINEAR)
            .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
            .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .max_lod(0.0);
        // SAFETY: valid create info.
        let handle = unsafe { gpu.device().create_sampler(&info, None) }
            .map_err(vk_err("vkCreateSampler"))?;
        Ok(Sampler {
            gpu: gpu.clone(),
            handle,
        })
    }
}

impl DescriptorSetLayout {
    pub(crate) fn new(
        gpu: &Arc<Gpu>,
        bindings: &[vk::DescriptorSetLayoutBinding<'_>],
    ) -> Result<Self, GpuError> {
        let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(bindings);
        // SAFETY: valid create info.
        let handle = unsafe { gpu.device().create_descriptor_set_layout(&info, None) }
            .map_err(vk_err("vkCreateDescriptorSetLayout"))?;
        Ok(DescriptorSetLayout {
            gpu: gpu.clone(),
            handle,
        })
    }
}

impl DescriptorPool {
    pub(crate) fn new(
        gpu: &Arc<Gpu>,
        max_sets: u32,
        sizes: &[vk::DescriptorPoolSize],
    ) -> Result<Self, GpuError> {
        let info = vk::DescriptorPoolCreateInfo::default()
            .max_sets(max_sets)
            .pool_sizes(sizes);
        // SAFETY: valid create info.
        let handle = unsafe { gpu.device().create_descriptor_pool(&info, None) }
            .map_err(vk_err("vkCreateDescriptorPool"))?;
        Ok(DescriptorPool {
            gpu: gpu.clone(),
            handle,
        })
    }

    /// Allocates one set per layout; the sets are freed with the pool.
    pub(crate) fn allocate(
        &self,
        layouts: &[vk::DescriptorSetLayout],
    ) -> Result<Vec<vk::DescriptorSet>, GpuError> {
        let info = vk::DescriptorSetAllocateInfo::default()
            .descriptor_pool(self.handle)
            .set_layouts(layouts);
        // SAFETY: the pool was sized by the caller for these layouts; pools are used from one
        // thread (the owning Compositor is not Sync).
        unsafe { self.gpu.device().allocate_descriptor_sets(&info) }
            .map_err(vk_err("vkAllocateDescriptorSets"))
    }
}

impl PipelineLayout {
    pub(crate) fn new(
        gpu: &Arc<Gpu>,
        set_layouts: &[vk::DescriptorSetLayout],
        push_constants: &[vk::PushConstantRange],
    ) -> Result<Self, GpuError> {
        let info = vk::PipelineLayoutCreateInfo::default()
            .set_layouts(set_layouts)
            .push_constant_ranges(push_constants);
        // SAFETY: valid create info with live set layouts.
        let handle = unsafe { gpu.device().create_pipeline_layout(&info, None) }
            .map_err(vk_err("vkCreatePipelineLayout"))?;
        Ok(PipelineLayout {
            gpu: gpu.clone(),
            handle,
        })
    }
}

impl Pipeline {
    pub(crate) fn from_handle(gpu: &Arc<Gpu>, handle: vk::Pipeline) -> Self {
        Pipeline {
            gpu: gpu.clone(),
            handle,
        }
    }
}

impl ShaderModule {
    /// Builds a module from SPIR-V bytes (as produced by glslangValidator).
    pub(crate) fn new(gpu: &Arc<Gpu>, spirv: &[u8]) -> Result<Self, GpuError> {
        let words = ash::util::read_spv(&mut std::io::Cursor::new(spirv))
            .map_err(|e| GpuError::InvalidSpec(format!("embedded SPIR-V is malformed: {e}")))?;
        let info = vk::ShaderModuleCreateInfo::default().code(&words);
        // SAFETY: the code is valid SPIR-V compiled at build time.
        let handle = unsafe { gpu.device().create_shader_module(&info, None) }
            .map_err(vk_err("vkCreateShaderModule"))?;
        Ok(ShaderModule {
            gpu: gpu.clone(),
            handle,
        })
    }
}

impl CommandPool {
    pub(crate) fn new(gpu: &Arc<Gpu>) -> Result<Self, GpuError> {
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(gpu.queue_family())
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid create info for this device's queue family.
        let handle = unsafe { gpu.device().create_command_pool(&info, None) }
            .map_err(vk_err("vkCreateCommandPool"))?;
        Ok(CommandPool {
            gpu: gpu.clone(),
            handle,
        })
    }

    /// Primary command buffers, freed with the pool.
    pub(crate) fn allocate(&self, count: u32) -> Result<Vec<vk::CommandBuffer>, GpuError> {
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.handle)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(count);
        // SAFETY: the pool is used by its single owner only.
        unsafe { self.gpu.device().allocate_command_buffers(&info) }
            .map_err(vk_err("vkAllocateCommandBuffers"))
    }
}

impl Fence {
    pub(crate) fn new(gpu: &Arc<Gpu>, signaled: bool) -> Result<Self, GpuError> {
        let flags = if signaled {
            vk::FenceCreateFlags::SIGNALED
        } else {
            vk::FenceCreateFlags::empty()
        };
        let info = vk::FenceCreateInfo::default().flags(flags);
        // SAFETY: valid create info.
        let handle =
            unsafe { gpu.device().create_fence(&info, None) }.map_err(vk_err("vkCreateFence"))?;
        Ok(Fence {
            gpu: gpu.clone(),
            handle,
        })
    }

    /// Blocks until the fence is signalled.
    pub(crate) fn wait(&self) -> Result<(), GpuError> {
        // SAFETY: the fence is alive; waiting has no other precondition.
        unsafe {
            self.gpu
                .device()
                .wait_for_fences(&[self.handle], true, u64::MAX)
        }
        .map_err(vk_err("vkWaitForFences"))
    }

    pub(crate) fn reset(&self) -> Result<(), GpuError> {
        // SAFETY: callers reset only fences that are not part of a pending submission.
        unsafe { self.gpu.device().reset_fences(&[self.handle]) }.map_err(vk_err("vkResetFences"))
    }
}
