#version 450
// Display-list quads: unit quad -> rect (expanded ~1 output px for antialiasing) -> affine -> clip.
layout(location = 0) in vec4 i_rect;        // x, y, w, h (local space)
layout(location = 1) in vec4 i_abcd;        // affine a, b, c, d
layout(location = 2) in vec4 i_ef_kind_r;   // affine e, f; kind (0 mask, 1 box, 2 colour mask, 3 gradient, 4 layer); corner radius
layout(location = 3) in vec4 i_fill;        // straight sRGB colour (mask tint or box fill)
layout(location = 4) in vec4 i_border;      // straight sRGB border colour
layout(location = 5) in vec4 i_extra;       // mask: atlas uv rect (u0, v0, u1, v1); box: border width

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

void main() {
    vec2 corner = vec2(float(gl_VertexIndex & 1), float((gl_VertexIndex >> 1) & 1));
    float sx = length(i_abcd.xy);
    float sy = length(i_abcd.zw);
    vec2 pad = vec2(1.0 / max(sx, 1e-6), 1.0 / max(sy, 1e-6));
    vec2 local = -pad + corner * (i_rect.zw + 2.0 * pad);
    vec2 p = i_rect.xy + local;
    vec2 px = vec2(i_abcd.x * p.x + i_abcd.z * p.y + i_ef_kind_r.x,
                   i_abcd.y * p.x + i_abcd.w * p.y + i_ef_kind_r.y);
    gl_Position = vec4(px / pc.target.xy * 2.0 - 1.0, 0.0, 1.0);
    v_local = local;
    v_size_kind_r = vec4(i_rect.zw, i_ef_kind_r.zw);
    v_fill = i_fill;
    v_border = i_border;
    v_extra = i_extra;
}
