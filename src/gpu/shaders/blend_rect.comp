#version 450
// Pass-through captions: blends the caption layer (premultiplied R'G'B'A, drawn over transparent
// black) "over" the yuv420p frame already in the output buffer, only inside a rectangle of the
// output (even coordinates, so chroma covers whole 2x2 blocks). The buffer holds a copy of the
// input frame (three tightly packed planes of 32-bit words); bytes outside the rectangle are kept.
//
// Y'CbCr is affine in R'G'B', so "over" in R'G'B' is "over" in Y'CbCr: with the layer's
// premultiplied colour P and alpha a, and (black, scale) = (16, 219) for limited-range luma,
// (128, 224) for limited-range chroma, (0, 255) and (128, 255) for full range,
//   Y' = (Y - black) * (1 - a) + black + scale * L(P),   L = Kr R + Kg G + Kb B
//   C' = (C - 128) * (1 - mean a) + 128 + scale * mean C(P)   over the 2x2 block
// (C is linear in P, so the mean of C(P_i) is C of the mean P). The video is never converted.
//
// Invocation (i, r): row r of the Y plane (r < rect height) or of the chroma planes (after that),
// word i of that row's span. Each invocation reads its word, replaces the bytes whose pixels lie
// inside the rectangle and writes it back. A word touching two rows' spans (rows not a multiple
// of 4 bytes long) belongs to the first of them, so no two invocations write the same word.
layout(local_size_x = 64) in;

layout(set = 0, binding = 0, rgba8) uniform readonly image2D layer;
layout(set = 0, binding = 1, std430) buffer Dst { uint words[]; } dst;

layout(push_constant) uniform Push {
    uvec4 rect;    // x0, y0, x1, y1 in luma pixels, all even
    uvec4 dims;    // width, u plane offset (words), v plane offset (words), full_range
    vec4 coeffs;   // kr, kg, kb, unused
} pc;

const uint NONE = 0xFFFFFFFFu;

uint to_byte(float v) {
    return uint(clamp(floor(v + 0.5), 0.0, 255.0));
}

uint byte_of(uint word, uint k) {
    return (word >> (8u * k)) & 0xFFu;
}

uint blend_luma(uint y, vec4 p) {
    bool full = pc.dims.w != 0u;
    float black = full ? 0.0 : 16.0;
    float scale = full ? 255.0 : 219.0;
    return to_byte((float(y) - black) * (1.0 - p.a) + black + scale * dot(p.rgb, pc.coeffs.xyz));
}

// `p`: the mean premultiplied colour and alpha of the 2x2 block.
uvec2 blend_chroma(uvec2 c, vec4 p) {
    float scale = pc.dims.w != 0u ? 255.0 : 224.0;
    float l = dot(p.rgb, pc.coeffs.xyz);
    vec2 layer_c = vec2((p.b - l) / (2.0 * (1.0 - pc.coeffs.z)), (p.r - l) / (2.0 * (1.0 - pc.coeffs.x)));
    vec2 v = (vec2(c) - 128.0) * (1.0 - p.a) + 128.0 + scale * layer_c;
    return uvec2(to_byte(v.x), to_byte(v.y));
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
                word = replace_byte(word, k, blend_luma(byte_of(word, k), imageLoad(layer, ivec2(p))));
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
                vec4 mean = (imageLoad(layer, base) + imageLoad(layer, base + ivec2(1, 0)) +
                             imageLoad(layer, base + ivec2(0, 1)) + imageLoad(layer, base + ivec2(1, 1))) * 0.25;
                uvec2 c = blend_chroma(uvec2(byte_of(u_word, k), byte_of(v_word, k)), mean);
                u_word = replace_byte(u_word, k, c.x);
                v_word = replace_byte(v_word, k, c.y);
            }
        }
        dst.words[pc.dims.y + w] = u_word;
        dst.words[pc.dims.z + w] = v_word;
    }
}
