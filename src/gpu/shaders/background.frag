#version 450
// Background colour everywhere, and the video (YUV -> RGB, bilinear) inside video_rect.
layout(set = 0, binding = 0) uniform sampler2D tex_y;
layout(set = 0, binding = 1) uniform sampler2D tex_u; // U, or interleaved UV (NV12) in .rg
layout(set = 0, binding = 2) uniform sampler2D tex_v;

layout(push_constant) uniform Push {
    vec4 video_rect;  // x, y, w, h in output pixels
    vec4 background;  // premultiplied over black, alpha 1
    vec4 yuv;         // kr, kb, full_range (0/1), flags (bit 0: has video, bit 1: NV12)
    vec4 target;      // width, height, unused, unused
} pc;

layout(location = 0) out vec4 out_color;

void main() {
    vec2 p = gl_FragCoord.xy;
    uint flags = uint(pc.yuv.w + 0.5);
    vec4 color = pc.background;
    bool inside = all(greaterThanEqual(p, pc.video_rect.xy)) &&
                  all(lessThan(p, pc.video_rect.xy + pc.video_rect.zw));
    if ((flags & 1u) != 0u && inside) {
        vec2 uv = (p - pc.video_rect.xy) / pc.video_rect.zw;
        float y = textureLod(tex_y, uv, 0.0).r;
        vec2 c;
        if ((flags & 2u) != 0u) {
            c = textureLod(tex_u, uv, 0.0).rg;
        } else {
            c = vec2(textureLod(tex_u, uv, 0.0).r, textureLod(tex_v, uv, 0.0).r);
        }
        float luma;
        vec2 chroma;
        if (pc.yuv.z > 0.5) {
            luma = y;
            chroma = (c * 255.0 - 128.0) / 255.0;
        } else {
            luma = (y * 255.0 - 16.0) / 219.0;
            chroma = (c * 255.0 - 128.0) / 224.0;
        }
        float kr = pc.yuv.x;
        float kb = pc.yuv.y;
        float kg = 1.0 - kr - kb;
        float r = luma + 2.0 * (1.0 - kr) * chroma.y;
        float b = luma + 2.0 * (1.0 - kb) * chroma.x;
        float g = luma - (2.0 * kb * (1.0 - kb) / kg) * chroma.x - (2.0 * kr * (1.0 - kr) / kg) * chroma.y;
        color = vec4(clamp(vec3(r, g, b), 0.0, 1.0), 1.0);
    }
    out_color = color;
}
