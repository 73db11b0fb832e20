// shaders/elementwise.wgsl with its input, scale and bias read through textures
// (shaders/lib/texel.wgsl), for lavapipe (see shaders/pointwise_conv_texture.wgsl): DenseNet's
// BatchNorm-ReLUs and the SiLUs and GELUs no conv absorbs. The engine copies each launch's input
// into a texture first (src/pipeline/texel.rs); the scale and bias are uploaded as textures once.
#import texel

// [values / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;
// [channels / 4], as texels
@group(0) @binding(2) var scale: texture_2d<f32>;
// [channels / 4], as texels
@group(0) @binding(3) var bias: texture_2d<f32>;

fn load_x(index: u32) -> vec4<f32> {
    return texel(input, index);
}

fn load_scale(channel4: u32) -> vec4<f32> {
    return texel(scale, channel4);
}

fn load_shift(channel4: u32) -> vec4<f32> {
    return texel(bias, channel4);
}

#import elementwise
