// y = act(x · scale[c] + bias[c]) elementwise (the scale and bias only with `has_affine`): a
// BatchNorm, an activation, or both, where no conv or linear layer absorbs them
// (src/graph/fuse.rs). act is any of lib/unary.wgsl's.
//
// The body is shaders/lib/elementwise.wgsl, shared with shaders/elementwise_texture.wgsl.
// Its Params are kept in sync with src/gpu/params.rs (`ElementwiseParams`).
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;

fn load_x(index: u32) -> vec4<f32> {
    return input[index];
}

fn load_scale(channel4: u32) -> vec4<f32> {
    return scale[channel4];
}

fn load_shift(channel4: u32) -> vec4<f32> {
    return bias[channel4];
}

#import elementwise
