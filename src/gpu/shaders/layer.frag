#version 450
// Composites an offscreen layer (premultiplied, blurred or not) into the caption target: the
// quad covers the layer's region 1:1 in output pixels and samples its texels from the layer
// image (uv rect in v_extra), scaled by the layer opacity (v_fill.a). Blend: premultiplied over.
layout(set = 0, binding = 4) uniform sampler2D layer_image;

layout(location = 0) in vec2 v_local;
layout(location = 1) flat in vec4 v_size_kind_r;
layout(location = 2) flat in vec4 v_fill;
layout(location = 3) flat in vec4 v_border;
layout(location = 4) flat in vec4 v_extra;

layout(location = 0) out vec4 out_color;

void main() {
    vec2 size = v_size_kind_r.xy;
    // quad.vert pads the rect for antialiasing; the region is pixel-aligned, nothing lies outside.
    if (any(lessThan(v_local, vec2(0.0))) || any(greaterThan(v_local, size))) {
        out_color = vec4(0.0);
        return;
    }
    vec2 t = v_local / max(size, vec2(1e-6));
    vec2 half_texel = 0.5 / vec2(textureSize(layer_image, 0));
    vec2 uv = clamp(mix(v_extra.xy, v_extra.zw, t), v_extra.xy + half_texel, v_extra.zw - half_texel);
    out_color = textureLod(layer_image, uv, 0.0) * v_fill.a;
}
