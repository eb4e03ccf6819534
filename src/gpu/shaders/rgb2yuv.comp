#version 450
// RGBA8 colour target -> yuv420p, three tightly packed planes in one buffer of 32-bit words.
// Invocations [0, y_words) each write 4 luma bytes; the next c_words each write 4 U and 4 V bytes
// (chroma = the 2x2 block average).
layout(local_size_x = 256) in;

layout(set = 0, binding = 0, rgba8) uniform readonly image2D src;
layout(set = 0, binding = 1, std430) writeonly buffer Dst { uint words[]; } dst;

layout(push_constant) uniform Push {
    uvec4 dims;    // width, height, u plane offset (words), v plane offset (words)
    uvec4 counts;  // y_words, c_words, groups_x, full_range
    vec4 coeffs;   // kr, kg, kb, unused
} pc;

float luma_of(vec3 rgb) {
    return dot(rgb, pc.coeffs.xyz);
}

uint to_byte(float v) {
    return uint(clamp(floor(v + 0.5), 0.0, 255.0));
}

uint luma_byte(vec3 rgb) {
    float y = luma_of(rgb);
    return pc.counts.w != 0u ? to_byte(y * 255.0) : to_byte(16.0 + 219.0 * y);
}

uvec2 chroma_bytes(vec3 rgb) {
    float y = luma_of(rgb);
    float cb = (rgb.b - y) / (2.0 * (1.0 - pc.coeffs.z));
    float cr = (rgb.r - y) / (2.0 * (1.0 - pc.coeffs.x));
    float scale = pc.counts.w != 0u ? 255.0 : 224.0;
    return uvec2(to_byte(128.0 + scale * cb), to_byte(128.0 + scale * cr));
}

void main() {
    uint index = (gl_WorkGroupID.y * pc.counts.z + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    uint width = pc.dims.x;
    uint y_words = pc.counts.x;
    uint c_words = pc.counts.y;
    if (index < y_words) {
        uint word = 0u;
        for (uint k = 0u; k < 4u; k++) {
            uint i = index * 4u + k;
            ivec2 xy = ivec2(int(i % width), int(i / width));
            word |= luma_byte(imageLoad(src, xy).rgb) << (8u * k);
        }
        dst.words[index] = word;
    } else if (index < y_words + c_words) {
        uint j = index - y_words;
        uint cw = width / 2u;
        uint chroma_count = cw * (pc.dims.y / 2u);
        uint u_word = 0u;
        uint v_word = 0u;
        for (uint k = 0u; k < 4u; k++) {
            uint i = j * 4u + k;
            if (i < chroma_count) {
                ivec2 base = ivec2(int(i % cw), int(i / cw)) * 2;
                vec3 rgb = (imageLoad(src, base).rgb + imageLoad(src, base + ivec2(1, 0)).rgb +
                            imageLoad(src, base + ivec2(0, 1)).rgb + imageLoad(src, base + ivec2(1, 1)).rgb) * 0.25;
                uvec2 c = chroma_bytes(rgb);
                u_word |= c.x << (8u * k);
                v_word |= c.y << (8u * k);
            }
        }
        dst.words[pc.dims.z + j] = u_word;
        dst.words[pc.dims.w + j] = v_word;
    }
}
