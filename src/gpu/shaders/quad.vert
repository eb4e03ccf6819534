#version 450
// Display-list quads: unit quad -> rect (expanded ~1 output px for antialiasing) -> transform -> clip.
// The transform is a homography (affine maps have g = h = 0, i = 1): the vertex is emitted in
// homogeneous coordinates (w = W) so v_local is interpolated perspective-correctly.
layout(location = 0) in vec4 i_rect;        // x, y, w, h (local space)
layout(location = 1) in vec4 i_abcd;        // transform a, b, c, d
layout(location = 2) in vec4 i_ef_kind_r;   // transform e, f; kind (0 mask, 1 box, 2 colour mask, 3 gradient, 4 layer); corner radius
layout(location = 3) in vec4 i_fill;        // straight sRGB colour (mask tint or box fill)
layout(location = 4) in vec4 i_border;      // straight sRGB border colour
layout(location = 5) in vec4 i_extra;       // mask: atlas uv rect (u0, v0, u1, v1); box: border width
layout(location = 6) in vec4 i_ghi;         // projective row g, h, i (0, 0, 1 for affine maps); unused

layout(push_constant) uniform Push {
    vec4 video_rect;
    vec4 background;
    vec4 yuv;
    vec4 target;      // width, height
} pc;

layout(location = 0) out vec2 v_local;             // position relative to the rect origin
layout(location = 1) flat out vec4 v_size_kind_r;  // w, h, kind, radius
layout(location = 2) flat out vec4 v_fill;
layout(location = 3) flat out vec4 v_border;
layout(location = 4) flat out vec4 v_extra;

// Points nearer than this W are behind the viewer (or too close to it): clipped by z = MIN_W <= w.
const float MIN_W = 1.0 / 1024.0;

vec3 project(vec2 p) {
    return vec3(i_abcd.x * p.x + i_abcd.z * p.y + i_ef_kind_r.x,
                i_abcd.y * p.x + i_abcd.w * p.y + i_ef_kind_r.y,
                i_ghi.x * p.x + i_ghi.y * p.y + i_ghi.z);
}

// Output pixels per local unit along the local x and y axes at p (Jacobian column lengths);
// -1 behind the viewer.
vec2 axis_scales(vec2 p) {
    vec3 q = project(p);
    if (q.z < MIN_W) {
        return vec2(-1.0);
    }
    vec2 u = q.xy / q.z;
    return vec2(length(vec2(i_abcd.x - i_ghi.x * u.x, i_abcd.y - i_ghi.x * u.y)),
                length(vec2(i_abcd.z - i_ghi.y * u.x, i_abcd.w - i_ghi.y * u.y))) / q.z;
}

void main() {
    vec2 corner = vec2(float(gl_VertexIndex & 1), float((gl_VertexIndex >> 1) & 1));
    // One output pixel of padding where the quad is magnified least (the same for all four
    // vertices, so the padded quad stays a rectangle in local space), capped for edge-on quads.
    vec2 s = vec2(1e30);
    for (int k = 0; k < 4; k++) {
        vec2 sk = axis_scales(i_rect.xy + vec2(float(k & 1), float(k >> 1)) * i_rect.zw);
        if (sk.x >= 0.0) {
            s = min(s, sk);
        }
    }
    float cap = max(i_rect.z, i_rect.w) + 1.0;
    vec2 pad = s.x < 1e29 ? min(1.0 / max(s, vec2(1e-6)), vec2(cap)) : vec2(1.0);
    vec2 local = -pad + corner * (i_rect.zw + 2.0 * pad);
    vec3 q = project(i_rect.xy + local);
    // NDC = (X/W) / target * 2 - 1, written before the divide by w = W.
    gl_Position = vec4(q.xy / pc.target.xy * 2.0 - q.z, MIN_W, q.z);
    v_local = local;
    v_size_kind_r = vec4(i_rect.zw, i_ef_kind_r.zw);
    v_fill = i_fill;
    v_border = i_border;
    v_extra = i_extra;
}
