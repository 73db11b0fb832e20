// The input gradient of shaders/layer_norm.wgsl, per pixel: with x̂ = (x − mean) / √(var + ε)
// recomputed from the kept input and g = γ ⊙ grad_out,
// grad_in = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(var + ε) (+ extra), the means over the
// channels. NHWC, one pixel per invocation.
//
// Kept in sync with src/gpu/params.rs (`LayerNormParams`).
#import index

struct Params {
    // Pixels of the batch.
    pixels: u32,
    channels: u32,
    eps: f32,
    // 1: add `extra` (another reader's gradient of the input).
    add_extra: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [pixels, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [pixels, channels / 4]: the op's input.
@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
// [channels / 4]
@group(0) @binding(3) var<storage, read> gamma: array<vec4<f32>>;
// [pixels, channels / 4]
@group(0) @binding(4) var<storage, read> extra: array<vec4<f32>>;
// [pixels, channels / 4]
@group(0) @binding(5) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = invocation_index(gid, nwg);
    if p >= params.pixels {
        return;
    }
    let c4 = params.channels / 4u;
    let n = f32(params.channels);
    let base = p * c4;
    var sum = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        sum += input[base + c];
    }
    let mean = dot(sum, vec4<f32>(1.0)) / n;
    var sq = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        let d = input[base + c] - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(dot(sq, vec4<f32>(1.0)) / n + params.eps);
    var g_sum = vec4<f32>(0.0);
    var gx_sum = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        let g = gamma[c] * grad_out[base + c];
        g_sum += g;
        gx_sum += g * (input[base + c] - mean) * inv;
    }
    let g_mean = dot(g_sum, vec4<f32>(1.0)) / n;
    let gx_mean = dot(gx_sum, vec4<f32>(1.0)) / n;
    for (var c = 0u; c < c4; c++) {
        let xhat = (input[base + c] - mean) * inv;
        var d = (gamma[c] * grad_out[base + c] - g_mean - xhat * gx_mean) * inv;
        if params.add_extra == 1u {
            d = d + extra[base + c];
        }
        grad_in[base + c] = d;
    }
}
