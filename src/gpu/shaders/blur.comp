#version 450
// One pass of a separable Gaussian blur over one layer region (premultiplied RGBA): pass 0
// blurs image a horizontally into b, pass 1 blurs b vertically back into a. Texels outside the
// region count as transparent (the region already includes the blur's reach).
layout(local_size_x = 16, local_size_y = 16) in;

layout(set = 0, binding = 0, rgba8) uniform image2D image_a;
layout(set = 0, binding = 1, rgba8) uniform image2D image_b;

layout(push_constant) uniform Push {
    ivec4 rect;    // x, y, width, height of the region in the layer images
    vec4 params;   // sigma (px), kernel radius (px), pass (0 horizontal a->b, 1 vertical b->a), unused
} pc;

void main() {
    ivec2 local = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(local, pc.rect.zw))) {
        return;
    }
    bool vertical = pc.params.z > 0.5;
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
            ivec2 at = pc.rect.xy + q;
            sum += w * (vertical ? imageLoad(image_b, at) : imageLoad(image_a, at));
        }
    }
    vec4 v = sum / weights;
    if (vertical) {
        imageStore(image_a, pc.rect.xy + local, v);
    } else {
        imageStore(image_b, pc.rect.xy + local, v);
    }
}
