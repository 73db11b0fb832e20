// Depthwise 2-D convolution (one filter per channel) with folded bias and an optional ReLU6, NHWC,
// four channels per invocation. TF "SAME" padding is given as pad_top/pad_left, the remainder
// (bottom/right) is implied by the output size.
//
// Two paths in one kernel:
// - KERNEL = 0 (the default pipeline): any kernel size and stride from the parameters, one output
//   pixel per invocation.
// - KERNEL, STRIDE overridden (the specialized pipelines for 3x3 and 5x5 at strides 1 and 2, 7x7
//   at stride 1, ConvNeXt's): each
//   invocation computes a block of OX × OY output pixels, loading each filter tap once and each
//   input pixel the block needs once, so loads per output drop several times (on lavapipe every
//   storage load is one scalar load per invocation, so loads, not multiply-adds, set the time).
//
// The body is shaders/lib/depthwise_conv.wgsl, shared with shaders/depthwise_conv_texture.wgsl.
// Its Params are kept in sync with src/gpu/params.rs (`DepthwiseParams`).
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [kernel, kernel, channels / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;

fn load_in(index: u32) -> vec4<f32> {
    return input[index];
}

fn load_dw(index: u32) -> vec4<f32> {
    return weight[index];
}

#import depthwise_conv
