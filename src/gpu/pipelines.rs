//! Descriptor layouts, pipeline layouts and the pipelines of the compositor: background (video +
//! colour), display-list quads, RGBA → yuv420p compute (whole frame), and the pass-through
//! compute that blends the caption layer onto yuv420p inside one rectangle.

use std::sync::Arc;

use ash::vk;

use super::context::Gpu;
use super::error::GpuError;
use super::resources::{DescriptorSetLayout, Pipeline, PipelineLayout, ShaderModule};

const BACKGROUND_VERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/background.vert.spv"));
const BACKGROUND_FRAG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/background.frag.spv"));
const QUAD_VERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quad.vert.spv"));
const QUAD_FRAG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quad.frag.spv"));
const RGB2YUV_COMP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rgb2yuv.comp.spv"));
const BLEND_RECT_COMP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/blend_rect.comp.spv"));
// fx: offscreen layers.
const LAYER_FRAG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/layer.frag.spv"));
const BLUR_COMP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/blur.comp.spv"));

/// Workgroup size of `blur.comp` along each axis.
pub(crate) const BLUR_GROUP_SIZE: u32 = 16;

/// Push constants of `blur.comp`: the region in the layer images and (σ, radius, pass).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlurPush {
    pub rect: [i32; 4],
    pub params: [f32; 4],
}

pub(crate) const BLUR_PUSH_SIZE: u32 = 32;

impl BlurPush {
    pub(crate) fn to_bytes(self) -> [u8; BLUR_PUSH_SIZE as usize] {
        let mut out = [0u8; BLUR_PUSH_SIZE as usize];
        let words = self
            .rect
            .iter()
            .map(|v| v.to_ne_bytes())
            .chain(self.params.iter().map(|v| v.to_ne_bytes()));
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w);
        }
        out
    }
}

/// How a graphics pipeline blends into its (premultiplied) colour attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blend {
    /// No blending (the background pass writes every pixel).
    Replace,
    /// Premultiplied "over": ONE, ONE_MINUS_SRC_ALPHA.
    Over,
    /// Premultiplied screen, `src + dst − src·dst`: ONE_MINUS_DST_COLOR, ONE (alpha alike).
    Screen,
}

/// Workgroup width of `blend_rect.comp` (`local_size_x`).
pub(crate) const RECT_BLEND_GROUP_SIZE: u32 = 64;

pub(crate) const COLOR_FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;

/// Push constants shared by the background and quad shaders (`Push` in the GLSL).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DrawPush {
    pub video_rect: [f32; 4],
    pub background: [f32; 4],
    pub yuv: [f32; 4],
    pub target: [f32; 4],
}

pub(crate) const DRAW_PUSH_SIZE: u32 = 64;

impl DrawPush {
    pub(crate) fn to_bytes(self) -> [u8; DRAW_PUSH_SIZE as usize] {
        let mut out = [0u8; DRAW_PUSH_SIZE as usize];
        let values = [self.video_rect, self.background, self.yuv, self.target];
        for (chunk, v) in out.chunks_exact_mut(4).zip(values.iter().flatten()) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        out
    }
}

/// Push constants of the RGB → YUV compute shader.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConvertPush {
    pub dims: [u32; 4],
    pub counts: [u32; 4],
    pub coeffs: [f32; 4],
}

pub(crate) const CONVERT_PUSH_SIZE: u32 = 48;

impl ConvertPush {
    pub(crate) fn to_bytes(self) -> [u8; CONVERT_PUSH_SIZE as usize] {
        let mut out = [0u8; CONVERT_PUSH_SIZE as usize];
        let words = self
            .dims
            .iter()
            .chain(self.counts.iter())
            .map(|v| v.to_ne_bytes())
            .chain(self.coeffs.iter().map(|v| v.to_ne_bytes()));
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w);
        }
        out
    }
}

/// Push constants of the rectangle blend compute shader (same size as [`ConvertPush`], so both
/// share one pipeline layout).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RectBlendPush {
    /// x0, y0, x1, y1 in luma pixels, all even.
    pub rect: [u32; 4],
    /// width, U plane offset (words), V plane offset (words), full_range.
    pub dims: [u32; 4],
    pub coeffs: [f32; 4],
}

impl RectBlendPush {
    pub(crate) fn to_bytes(self) -> [u8; CONVERT_PUSH_SIZE as usize] {
        ConvertPush {
            dims: self.rect,
            counts: self.dims,
            coeffs: self.coeffs,
        }
        .to_bytes()
    }
}

/// Per-instance vertex data of one display-list quad (`quad.vert` inputs), 7 × vec4.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct QuadInstance {
    pub rect: [f32; 4],
    pub abcd: [f32; 4],
    pub ef_kind_radius: [f32; 4],
    pub fill: [f32; 4],
    pub border: [f32; 4],
    pub extra: [f32; 4],
    /// The transform's projective row `g, h, i` and 0 (`0, 0, 1, 0` for affine maps).
    pub ghi: [f32; 4],
}

impl Default for QuadInstance {
    /// All zero but the projective row, which is the affine one.
    fn default() -> Self {
        QuadInstance {
            rect: [0.0; 4],
            abcd: [0.0; 4],
            ef_kind_radius: [0.0; 4],
            fill: [0.0; 4],
            border: [0.0; 4],
            extra: [0.0; 4],
            ghi: [0.0, 0.0, 1.0, 0.0],
        }
    }
}

/// Number of vec4 attributes of a [`QuadInstance`].
const QUAD_INSTANCE_VEC4S: u32 = 7;
pub(crate) const QUAD_INSTANCE_SIZE: usize = QUAD_INSTANCE_VEC4S as usize * 16;

impl QuadInstance {
    pub(crate) fn write_to(&self, out: &mut [u8]) {
        let values = [
            self.rect,
            self.abcd,
            self.ef_kind_radius,
            self.fill,
            self.border,
            self.extra,
            self.ghi,
        ];
        for (chunk, v) in out.chunks_exact_mut(4).zip(values.iter().flatten()) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

pub(crate) struct Pipelines {
    pub draw_set_layout: DescriptorSetLayout,
    pub convert_set_layout: DescriptorSetLayout,
    pub draw_layout: PipelineLayout,
    pub convert_layout: PipelineLayout,
    pub background: Pipeline,
    pub quads: Pipeline,
    pub convert: Pipeline,
    pub blend_rect: Pipeline,
    // fx: layers (quads with screen blend, layer composite, Gaussian blur).
    pub quads_screen: Pipeline,
    pub layer_composite: Pipeline,
    pub blur_set_layout: DescriptorSetLayout,
    pub blur_layout: PipelineLayout,
    pub blur: Pipeline,
}

impl Pipelines {
    pub(crate) fn new(gpu: &Arc<Gpu>) -> Result<Self, GpuError> {
        let sampled = |binding: u32| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(binding)
                .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::FRAGMENT)
        };
        let draw_set_layout =
            // Binding 4: the slot's layer image, sampled by the layer composite.
            DescriptorSetLayout::new(
                gpu,
                &[sampled(0), sampled(1), sampled(2), sampled(3), sampled(4)],
            )?;
        let convert_set_layout = DescriptorSetLayout::new(
            gpu,
            &[
                vk::DescriptorSetLayoutBinding::default()
                    .binding(0)
                    .descriptor_type(vk::DescriptorType::STORAGE_IMAGE)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE),
                vk::DescriptorSetLayoutBinding::default()
                    .binding(1)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE),
            ],
        )?;
        let draw_layout = PipelineLayout::new(
            gpu,
            &[draw_set_layout.handle()],
            &[vk::PushConstantRange {
                stage_flags: vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                offset: 0,
                size: DRAW_PUSH_SIZE,
            }],
        )?;
        let convert_layout = PipelineLayout::new(
            gpu,
            &[convert_set_layout.handle()],
            &[vk::PushConstantRange {
                stage_flags: vk::ShaderStageFlags::COMPUTE,
                offset: 0,
                size: CONVERT_PUSH_SIZE,
            }],
        )?;
        let background = graphics_pipeline(
            gpu,
            &draw_layout,
            BACKGROUND_VERT,
            BACKGROUND_FRAG,
            false,
            Blend::Replace,
            vk::PrimitiveTopology::TRIANGLE_LIST,
        )?;
        let quads = graphics_pipeline(
            gpu,
            &draw_layout,
            QUAD_VERT,
            QUAD_FRAG,
            true,
            Blend::Over,
            vk::PrimitiveTopology::TRIANGLE_STRIP,
        )?;
        let quads_screen = graphics_pipeline(
            gpu,
            &draw_layout,
            QUAD_VERT,
            QUAD_FRAG,
            true,
            Blend::Screen,
            vk::PrimitiveTopology::TRIANGLE_STRIP,
        )?;
        let layer_composite = graphics_pipeline(
            gpu,
            &draw_layout,
            QUAD_VERT,
            LAYER_FRAG,
            true,
            Blend::Over,
            vk::PrimitiveTopology::TRIANGLE_STRIP,
        )?;
        let storage = |binding: u32| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(binding)
                .descriptor_type(vk::DescriptorType::STORAGE_IMAGE)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        };
        let blur_set_layout = DescriptorSetLayout::new(gpu, &[storage(0), storage(1)])?;
        let blur_layout = PipelineLayout::new(
            gpu,
            &[blur_set_layout.handle()],
            &[vk::PushConstantRange {
                stage_flags: vk::ShaderStageFlags::COMPUTE,
                offset: 0,
                size: BLUR_PUSH_SIZE,
            }],
        )?;
        let blur = compute_pipeline(gpu, &blur_layout, BLUR_COMP)?;
        let convert = compute_pipeline(gpu, &convert_layout, RGB2YUV_COMP)?;
        let blend_rect = compute_pipeline(gpu, &convert_layout, BLEND_RECT_COMP)?;
        Ok(Pipelines {
            draw_set_layout,
            convert_set_layout,
            draw_layout,
            convert_layout,
            background,
            quads,
            convert,
            blend_rect,
            quads_screen,
            layer_composite,
            blur_set_layout,
            blur_layout,
            blur,
        })
    }
}

fn graphics_pipeline(
    gpu: &Arc<Gpu>,
    layout: &PipelineLayout,
    vert: &[u8],
    frag: &[u8],
    instanced_quads: bool,
    blend: Blend,
    topology: vk::PrimitiveTopology,
) -> Result<Pipeline, GpuError> {
    let vert = ShaderModule::new(gpu, vert)?;
    let frag = ShaderModule::new(gpu, frag)?;
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(vert.handle())
            .name(c"main"),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(frag.handle())
            .name(c"main"),
    ];
    let bindings = [vk::VertexInputBindingDescription {
        binding: 0,
        stride: QUAD_INSTANCE_SIZE as u32,
        input_rate: vk::VertexInputRate::INSTANCE,
    }];
    let attributes: Vec<vk::VertexInputAttributeDescription> = (0..QUAD_INSTANCE_VEC4S)
        .map(|location| vk::VertexInputAttributeDescription {
            location,
            binding: 0,
            format: vk::Format::R32G32B32A32_SFLOAT,
            offset: location * 16,
        })
        .collect();
    let vertex_input = if instanced_quads {
        vk::PipelineVertexInputStateCreateInfo::default()
            .vertex_binding_descriptions(&bindings)
            .vertex_attribute_descriptions(&attributes)
    } else {
        vk::PipelineVertexInputStateCreateInfo::default()
    };
    let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default().topology(topology);
    let viewport = vk::PipelineViewportStateCreateInfo::default()
        .viewport_count(1)
        .scissor_count(1);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .front_face(vk::FrontFace::COUNTER_CLOCKWISE)
        .line_width(1.0);
    let multisample = vk::PipelineMultisampleStateCreateInfo::default()
        .rasterization_samples(vk::SampleCountFlags::TYPE_1);
    // Premultiplied-alpha "over" (or screen), in non-linear sRGB values (the target is UNORM).
    let (src, dst) = match blend {
        Blend::Screen => (vk::BlendFactor::ONE_MINUS_DST_COLOR, vk::BlendFactor::ONE),
        Blend::Over | Blend::Replace => {
            (vk::BlendFactor::ONE, vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        }
    };
    let (src_alpha, dst_alpha) = match blend {
        // ONE_MINUS_DST_COLOR on the alpha channel reads the destination alpha.
        Blend::Screen => (vk::BlendFactor::ONE_MINUS_DST_ALPHA, vk::BlendFactor::ONE),
        Blend::Over | Blend::Replace => {
            (vk::BlendFactor::ONE, vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        }
    };
    let blend_attachment = [vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(blend != Blend::Replace)
        .src_color_blend_factor(src)
        .dst_color_blend_factor(dst)
        .color_blend_op(vk::BlendOp::ADD)
        .src_alpha_blend_factor(src_alpha)
        .dst_alpha_blend_factor(dst_alpha)
        .alpha_blend_op(vk::BlendOp::ADD)
        .color_write_mask(vk::ColorComponentFlags::RGBA)];
    let blend = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend_attachment);
    let dynamic_states = [vk::DynamicState::VIEWPORT, vk::DynamicState::SCISSOR];
    let dynamic = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dynamic_states);
    let color_formats = [COLOR_FORMAT];
    let mut rendering =
        vk::PipelineRenderingCreateInfo::default().color_attachment_formats(&color_formats);
    let info = vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .vertex_input_state(&vertex_input)
        .input_assembly_state(&input_assembly)
        .viewport_state(&viewport)
        .rasterization_state(&raster)
        .multisample_state(&multisample)
        .color_blend_state(&blend)
        .dynamic_state(&dynamic)
        .layout(layout.handle())
        .push_next(&mut rendering);
    // SAFETY: all referenced state lives until the call returns; dynamic rendering is enabled on
    // the device, so a null render pass with PipelineRenderingCreateInfo is valid.
    let pipelines = unsafe {
        gpu.device()
            .create_graphics_pipelines(vk::PipelineCache::null(), &[info], None)
    }
    .map_err(|(_, result)| GpuError::from_vk("vkCreateGraphicsPipelines", result))?;
    let handle = pipelines.into_iter().next().ok_or(GpuError::Vulkan {
        op: "vkCreateGraphicsPipelines",
        result: vk::Result::ERROR_UNKNOWN,
    })?;
    Ok(Pipeline::from_handle(gpu, handle))
}

fn compute_pipeline(
    gpu: &Arc<Gpu>,
    layout: &PipelineLayout,
    code: &[u8],
) -> Result<Pipeline, GpuError> {
    let module = ShaderModule::new(gpu, code)?;
    let stage = vk::PipelineShaderStageCreateInfo::default()
        .stage(vk::ShaderStageFlags::COMPUTE)
        .module(module.handle())
        .name(c"main");
    let info = vk::ComputePipelineCreateInfo::default()
        .stage(stage)
        .layout(layout.handle());
    // SAFETY: valid create info; the module lives until the call returns.
    let pipelines = unsafe {
        gpu.device()
            .create_compute_pipelines(vk::PipelineCache::null(), &[info], None)
    }
    .map_err(|(_, result)| GpuError::from_vk("vkCreateComputePipelines", result))?;
    let handle = pipelines.into_iter().next().ok_or(GpuError::Vulkan {
        op: "vkCreateComputePipelines",
        result: vk::Result::ERROR_UNKNOWN,
    })?;
    Ok(Pipeline::from_handle(gpu, handle))
}

/// Checks that the pipelines' formats are usable on this device.
pub(crate) fn check_formats(gpu: &Gpu) -> Result<(), GpuError> {
    let needed = [
        (
            COLOR_FORMAT,
            vk::FormatFeatureFlags::COLOR_ATTACHMENT_BLEND | vk::FormatFeatureFlags::STORAGE_IMAGE,
        ),
        (
            vk::Format::R8_UNORM,
            vk::FormatFeatureFlags::SAMPLED_IMAGE_FILTER_LINEAR,
        ),
        (
            vk::Format::R8G8_UNORM,
            vk::FormatFeatureFlags::SAMPLED_IMAGE_FILTER_LINEAR,
        ),
    ];
    for (format, features) in needed {
        if !gpu.supports_format(format, features) {
            return Err(GpuError::InvalidSpec(format!(
                "device {} lacks {features:?} for {format:?}",
                gpu.device_name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_bytes_follow_shader_layout() {
        let inst = QuadInstance {
            rect: [1.0, 2.0, 3.0, 4.0],
            extra: [0.0, 0.0, 0.0, 9.5],
            ..Default::default()
        };
        let mut bytes = [0u8; QUAD_INSTANCE_SIZE];
        inst.write_to(&mut bytes);
        assert_eq!(&bytes[4..8], &2.0f32.to_ne_bytes());
        assert_eq!(&bytes[92..96], &9.5f32.to_ne_bytes());
        // The projective row last: affine by default.
        assert_eq!(&bytes[104..108], &1.0f32.to_ne_bytes());
        assert_eq!(QUAD_INSTANCE_SIZE, 112);
    }

    #[test]
    fn push_constants_pack_in_order() {
        let push = ConvertPush {
            dims: [10, 20, 30, 40],
            counts: [1, 2, 3, 4],
            coeffs: [0.5, 0.25, 0.125, 0.0],
        };
        let bytes = push.to_bytes();
        assert_eq!(&bytes[12..16], &40u32.to_ne_bytes());
        assert_eq!(&bytes[16..20], &1u32.to_ne_bytes());
        assert_eq!(&bytes[36..40], &0.25f32.to_ne_bytes());
        let rect = RectBlendPush {
            rect: [2, 4, 6, 8],
            dims: [1920, 7, 9, 1],
            coeffs: [0.5, 0.25, 0.125, 0.0],
        }
        .to_bytes();
        assert_eq!(&rect[8..12], &6u32.to_ne_bytes());
        assert_eq!(&rect[16..20], &1920u32.to_ne_bytes());
        assert_eq!(&rect[32..36], &0.5f32.to_ne_bytes());
    }
}
