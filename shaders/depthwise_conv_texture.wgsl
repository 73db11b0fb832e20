// shaders/depthwise_conv.wgsl with its input and weights read through textures
// (shaders/lib/texel.wgsl), for lavapipe: the same paths and order of additions, whose loads are
// texel fetches instead of storage-buffer loads (see shaders/pointwise_conv_texture.wgsl). The
// engine copies each launch's input into a texture first (src/pipeline/texel.rs); the weights
// are uploaded as textures once.
#import texel

// [batch, in_h, in_w, channels / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;
// [kernel, kernel, channels / 4], as texels
@group(0) @binding(2) var weight: texture_2d<f32>;

fn load_in(index: u32) -> vec4<f32> {
    return texel(input, index);
}

fn load_dw(index: u32) -> vec4<f32> {
    return texel(weight, index);
}

#import depthwise_conv
