// shaders/global_avg_pool.wgsl with its input read through a texture (shaders/lib/texel.wgsl),
// for lavapipe (see shaders/pointwise_conv_texture.wgsl): the squeeze of a squeeze-and-excitation
// block, whose gate reads the same copy (shaders/se_scale_texture.wgsl).
#import texel

// [batch, pixels, channels / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;

fn load_x(index: u32) -> vec4<f32> {
    return texel(input, index);
}

#import global_avg_pool
