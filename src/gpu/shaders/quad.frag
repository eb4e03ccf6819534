#version 450
// Mask quads sample the premultiplied RGBA glyph atlas (coverage masks tinted with the fill
// colour, colour glyphs as they are, faded by the fill's alpha); box quads are an analytic rounded rectangle with an
// inner border; kind 3 is an analytic radial gradient. Output is premultiplied (blend: ONE, ONE_MINUS_SRC_ALPHA).
layout(set = 0, binding = 3) uniform sampler2D atlas;

layout(location = 0) in vec2 v_local;
layout(location = 1) flat in vec4 v_size_kind_r;
layout(location = 2) flat in vec4 v_fill;
layout(location = 3) flat in vec4 v_border;
layout(location = 4) flat in vec4 v_extra;

layout(location = 0) out vec4 out_color;

float rounded_box_sdf(vec2 p, vec2 half_size, float r) {
    vec2 q = abs(p) - half_size + r;
    return length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - r;
}

vec4 premultiply(vec4 c) {
    return vec4(c.rgb * c.a, c.a);
}

void main() {
    vec2 size = v_size_kind_r.xy;
    int kind = int(v_size_kind_r.z + 0.5);
    if (kind == 3) {
        // Radial gradient (glow halo): the fill colour up to v_extra.x of the radius (half the
        // diagonal), linear to transparent at v_extra.y, clipped to the rectangle.
        vec2 half_size = size * 0.5;
        vec2 p = v_local - half_size;
        float radius = max(length(half_size), 1e-6);
        float t = length(p) / radius;
        float ramp = 1.0 - clamp((t - v_extra.x) / max(v_extra.y - v_extra.x, 1e-6), 0.0, 1.0);
        float d = rounded_box_sdf(p, half_size, 0.0);
        float px = max(length(vec2(dFdx(d), dFdy(d))), 1e-5);
        float cover = clamp(0.5 - d / px, 0.0, 1.0);
        out_color = premultiply(v_fill) * (ramp * cover);
    } else if (kind == 0) {
        vec2 t = v_local / max(size, vec2(1e-6));
        vec2 half_texel = 0.5 / vec2(textureSize(atlas, 0));
        vec2 uv = clamp(mix(v_extra.xy, v_extra.zw, t), v_extra.xy - half_texel, v_extra.zw + half_texel);
        // The atlas is premultiplied RGBA: coverage masks are (a, a, a, a).
        vec4 texel = textureLod(atlas, uv, 0.0);
        out_color = premultiply(v_fill) * texel.a;
    } else if (kind == 2) {
        // Colour glyph: its own premultiplied colours, faded by the colour's alpha (opacity).
        vec2 t = v_local / max(size, vec2(1e-6));
        vec2 half_texel = 0.5 / vec2(textureSize(atlas, 0));
        vec2 uv = clamp(mix(v_extra.xy, v_extra.zw, t), v_extra.xy - half_texel, v_extra.zw + half_texel);
        out_color = textureLod(atlas, uv, 0.0) * v_fill.a;
    } else {
        vec2 half_size = size * 0.5;
        vec2 p = v_local - half_size;
        float r = clamp(v_size_kind_r.w, 0.0, min(half_size.x, half_size.y));
        float d = rounded_box_sdf(p, half_size, r);
        // Length of one output pixel in local units, along the gradient of the distance.
        float px = max(length(vec2(dFdx(d), dFdy(d))), 1e-5);
        float outer = clamp(0.5 - d / px, 0.0, 1.0);
        vec4 color = premultiply(v_fill);
        float bw = v_extra.x;
        if (bw > 0.0) {
            vec2 inner_half = max(half_size - bw, vec2(0.0));
            float inner_r = max(r - bw, 0.0);
            float di = (inner_half.x > 0.0 && inner_half.y > 0.0)
                ? rounded_box_sdf(p, inner_half, inner_r) : 1e6;
            float inner = clamp(0.5 - di / px, 0.0, 1.0);
            color = mix(premultiply(v_border), color, inner);
        }
        out_color = color * outer;
    }
}
