// shaders/pointwise_conv.wgsl with its input and weights read through textures (shaders/lib/texel.wgsl),
// for lavapipe: the same tiles, products and order of additions, whose loads are texel fetches
// instead of storage-buffer loads. Measured on a 2-core AMD EPYC, a 12544 × 96 × 384 product
// (ConvNeXt-T's first pointwise conv at batch 4) took 2.5 to 3 times less time in the subgroup
// tile. The engine copies each launch's input into a texture first (src/pipeline/texel.rs); the
// weights are uploaded as textures once (src/pipeline/forward.rs `GpuModel`).
#import texel

// [rows, in_channels / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;
// [in_channels, out_channels / 4], as texels
@group(0) @binding(2) var weight: texture_2d<f32>;

fn load_a(index: u32) -> vec4<f32> {
    return texel(input, index);
}

fn load_w(index: u32) -> vec4<f32> {
    return texel(weight, index);
}

#import pointwise_conv
