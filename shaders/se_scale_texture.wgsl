// shaders/se_scale.wgsl with its input read through a texture (shaders/lib/texel.wgsl), for
// lavapipe (see shaders/pointwise_conv_texture.wgsl): the copy the engine makes before the block's
// global average pool serves both (src/pipeline/forward.rs, `Op::SqueezeExcite`).
#import texel

// [batch, pixels, channels / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;

fn load_x(index: u32) -> vec4<f32> {
    return texel(input, index);
}

#import se_scale
