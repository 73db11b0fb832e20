// Squeeze-and-excitation, the gate: y[n, p, c] = x[n, p, c] · gate(excited[n, c]), NHWC, four
// channels per invocation.
// The body is shaders/lib/se_scale.wgsl, shared with shaders/se_scale_texture.wgsl.
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;

fn load_x(index: u32) -> vec4<f32> {
    return input[index];
}

#import se_scale
