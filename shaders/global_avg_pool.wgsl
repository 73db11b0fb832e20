// Global average pool: the mean over all pixels of each channel, NHWC, four channels per invocation.
//
// The body is shaders/lib/global_avg_pool.wgsl, shared with
// shaders/global_avg_pool_texture.wgsl. Its Params are kept in sync with src/gpu/params.rs
// (`PoolParams`).
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;

fn load_x(index: u32) -> vec4<f32> {
    return input[index];
}

#import global_avg_pool
