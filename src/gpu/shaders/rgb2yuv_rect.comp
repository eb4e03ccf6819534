#version 450
// RGBA8 colour target -> yuv420p, only inside a rectangle of the output (even coordinates, so
// chroma covers whole 2x2 blocks). The output buffer already holds a copy of the input frame
// (three tightly packed planes of 32-bit words); bytes outside the rectangle are kept.
//
// Invocation (i, r): row r of the Y plane (r < rect height) or of the chroma planes (after that),
// word i of that row's span. Each invocation reads its word, replaces the bytes whose pixels lie
// inside the rectangle and writes it back. A word touching two rows' spans (rows not a multiple
// of 4 bytes long) belongs to the first of them, so no two invocations write the same word.
layout(local_size_x = 64) in;

layout(set = 0, binding = 0, rgba8) uniform readonly image2D src;
layout(set = 0, binding = 1, std430) buffer Dst { uint words[]; } dst;

layout(push_constant) uniform Push {
    uvec4 rect;    // x0, y0, x1, y1 in luma pixels, all even
    uvec4 dims;    // width, u plane offset (words), v plane offset (words), full_range
    vec4 coeffs;   // kr, kg, kb, unused
} pc;

const uint NONE = 0xFFFFFFFFu;

float luma_of(vec3 rgb) {
    return dot(rgb, pc.coeffs.xyz);
}

uint to_byte(float v) {
    return uint(clamp(floor(v + 0.5), 0.0, 255.0));
}

uint luma_byte(vec3 rgb) {
    float y = luma_of(rgb);
    return pc.dims.w != 0u ? to_byte(y * 255.0) : to_byte(16.0 + 219.0 * y);
}

uvec2 chroma_bytes(vec3 rgb) {
    float y = luma_of(rgb);
    float cb = (rgb.b - y) / (2.0 * (1.0 - pc.coeffs.z));
    float cr = (rgb.r - y) / (2.0 * (1.0 - pc.coeffs.x));
    float scale = pc.dims.w != 0u ? 255.0 : 224.0;
    return uvec2(to_byte(128.0 + scale * cb), to_byte(128.0 + scale * cr));
}

// The word (index from the plane start) that invocation `i` of plane row `row` owns, or NONE.
// `r` is the rectangle in this plane's pixels, `pitch` its row length in bytes.
uint owned_word(uint pitch, uvec4 r, uint row, uint i) {
    uint start = row * pitch + r.x;
    uint end = row * pitch + r.z;
    uint w = start / 4u + i;
    if (w * 4u >= end) {
        return NONE;
    }
    // Also touches the previous row's span [start - pitch, end - pitch): that row owns it.
    if (row > r.y && w * 4u < end - pitch) {
        return NONE;
    }
    return w;
}

uint replace_byte(uint word, uint k, uint value) {
    uint shift = 8u * k;
    return (word & ~(0xFFu << shift)) | (value << shift);
}

bool inside(uvec2 p, uvec4 r) {
    return p.x >= r.x && p.x < r.z && p.y >= r.y && p.y < r.w;
}

void main() {
    uint i = gl_GlobalInvocationID.x;
    uint r = gl_GlobalInvocationID.y;
    uint width = pc.dims.x;
    uint luma_rows = pc.rect.w - pc.rect.y;
    if (r < luma_rows) {
        uint w = owned_word(width, pc.rect, pc.rect.y + r, i);
        if (w == NONE) {
            return;
        }
        uint word = dst.words[w];
        for (uint k = 0u; k < 4u; k++) {
            uint b = w * 4u + k;
            uvec2 p = uvec2(b % width, b / width);
            if (inside(p, pc.rect)) {
                word = replace_byte(word, k, luma_byte(imageLoad(src, ivec2(p)).rgb));
            }
        }
        dst.words[w] = word;
    } else {
        uint cw = width / 2u;
        uvec4 cr = pc.rect / 2u;
        uint row = cr.y + (r - luma_rows);
        if (row >= cr.w) {
            return;
        }
        uint w = owned_word(cw, cr, row, i);
        if (w == NONE) {
            return;
        }
        uint u_word = dst.words[pc.dims.y + w];
        uint v_word = dst.words[pc.dims.z + w];
        for (uint k = 0u; k < 4u; k++) {
            uint b = w * 4u + k;
            uvec2 p = uvec2(b % cw, b / cw);
            if (inside(p, cr)) {
                ivec2 base = ivec2(p) * 2;
                vec3 rgb = (imageLoad(src, base).rgb + imageLoad(src, base + ivec2(1, 0)).rgb +
                            imageLoad(src, base + ivec2(0, 1)).rgb + imageLoad(src, base + ivec2(1, 1)).rgb) * 0.25;
                uvec2 c = chroma_bytes(rgb);
                u_word = replace_byte(u_word, k, c.x);
                v_word = replace_byte(v_word, k, c.y);
            }
        }
        dst.words[pc.dims.y + w] = u_word;
        dst.words[pc.dims.z + w] = v_word;
    }
}
