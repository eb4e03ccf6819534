#version 450
// One pass of a layer blur over one layer region (premultiplied RGBA) placed at rect.xy in both
// layer images. Texels outside the region count as transparent (the region already includes the
// blur's reach). Operations (params.z):
//   0: Gaussian, horizontal, a -> b        1: Gaussian, vertical, b -> a
//   2: Gaussian, horizontal, b -> a        3: Gaussian, vertical, a -> b
//   4: downsample a -> b: each texel of the reduced region (ceil(size / f)) is the mean of the
//      f x f block of full-size texels it covers (a box filter of width f)
//   5: upsample b -> a: each full-size texel interpolates the reduced region bilinearly
// rect.zw is the size the operation iterates over: the reduced size for 0-3 on a reduced
// region, the full size for 4 and 5 (the reduced size being ceil(full / f)).
layout(local_size_x = 16, local_size_y = 16) in;

layout(set = 0, binding = 0, rgba8) uniform image2D image_a;
layout(set = 0, binding = 1, rgba8) uniform image2D image_b;

layout(push_constant) uniform Push {
    ivec4 rect;    // x, y, width, height of the region in the layer images
    vec4 params;   // sigma (px), kernel radius (px), operation, reduction factor f
} pc;

vec4 load_from(bool from_b, ivec2 at) {
    return from_b ? imageLoad(image_b, at) : imageLoad(image_a, at);
}

void store_to(bool to_b, ivec2 at, vec4 v) {
    if (to_b) {
        imageStore(image_b, at, v);
    } else {
        imageStore(image_a, at, v);
    }
}

void gaussian(ivec2 local, int op) {
    bool vertical = op == 1 || op == 3;
    bool from_b = op == 1 || op == 2;
    ivec2 dir = vertical ? ivec2(0, 1) : ivec2(1, 0);
    int radius = int(pc.params.y);
    float k = -0.5 / max(pc.params.x * pc.params.x, 1e-6);
    vec4 sum = vec4(0.0);
    float weights = 0.0;
    for (int i = -radius; i <= radius; i++) {
        float w = exp(float(i * i) * k);
        weights += w;
        ivec2 q = local + dir * i;
        if (all(greaterThanEqual(q, ivec2(0))) && all(lessThan(q, pc.rect.zw))) {
            sum += w * load_from(from_b, pc.rect.xy + q);
        }
    }
    store_to(!from_b, pc.rect.xy + local, sum / weights);
}

void downsample(ivec2 local, int f) {
    vec4 sum = vec4(0.0);
    ivec2 base = local * f;
    for (int y = 0; y < f; y++) {
        for (int x = 0; x < f; x++) {
            ivec2 q = base + ivec2(x, y);
            if (all(lessThan(q, pc.rect.zw))) {
                sum += imageLoad(image_a, pc.rect.xy + q);
            }
        }
    }
    imageStore(image_b, pc.rect.xy + local, sum / float(f * f));
}

vec4 reduced_texel(ivec2 q, ivec2 reduced) {
    if (any(lessThan(q, ivec2(0))) || any(greaterThanEqual(q, reduced))) {
        return vec4(0.0);
    }
    return imageLoad(image_b, pc.rect.xy + q);
}

void upsample(ivec2 local, int f) {
    ivec2 reduced = (pc.rect.zw + f - 1) / f;
    // Texel centres: full-size x + 0.5 lies at reduced (x + 0.5) / f, i.e. texel index - 0.5.
    vec2 u = (vec2(local) + 0.5) / float(f) - 0.5;
    vec2 lo = floor(u);
    vec2 t = u - lo;
    ivec2 i = ivec2(lo);
    vec4 top = mix(reduced_texel(i, reduced), reduced_texel(i + ivec2(1, 0), reduced), t.x);
    vec4 bottom = mix(reduced_texel(i + ivec2(0, 1), reduced),
                      reduced_texel(i + ivec2(1, 1), reduced), t.x);
    imageStore(image_a, pc.rect.xy + local, mix(top, bottom, t.y));
}

void main() {
    int op = int(pc.params.z + 0.5);
    int f = max(int(pc.params.w + 0.5), 1);
    ivec2 local = ivec2(gl_GlobalInvocationID.xy);
    ivec2 extent = op == 4 ? (pc.rect.zw + f - 1) / f : pc.rect.zw;
    if (any(greaterThanEqual(local, extent))) {
        return;
    }
    if (op == 4) {
        downsample(local, f);
    } else if (op == 5) {
        upsample(local, f);
    } else {
        gaussian(local, op);
    }
}
