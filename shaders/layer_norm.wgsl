// LayerNorm over the channels of each pixel: y = (x − mean) / √(var + ε) · γ + β, the mean and
// the biased variance over the channels (two passes, as PyTorch's), NHWC, one pixel per
// invocation.
//
// Kept in sync with src/gpu/params.rs (`LayerNormParams`).
#import index

struct Params {
    // Pixels of the batch.
    pixels: u32,
    channels: u32,
    eps: f32,
    // layer_norm_grad: 1 to add `extra`.
    add_extra: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [pixels, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [channels / 4]
@group(0) @binding(2) var<storage, read> gamma: array<vec4<f32>>;
// [channels / 4]
@group(0) @binding(3) var<storage, read> beta: array<vec4<f32>>;
// [pixels, channels / 4]
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = invocation_index(gid, nwg);
    if p >= params.pixels {
        return;
    }
    let c4 = params.channels / 4u;
    let base = p * c4;
    var sum = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        sum += input[base + c];
    }
    let mean = dot(sum, vec4<f32>(1.0)) / f32(params.channels);
    var sq = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        let d = input[base + c] - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(dot(sq, vec4<f32>(1.0)) / f32(params.channels) + params.eps);
    for (var c = 0u; c < c4; c++) {
        output[base + c] = (input[base + c] - mean) * inv * gamma[c] + beta[c];
    }
}
