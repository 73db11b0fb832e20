// Gradient of a fully connected layer with respect to its input, one input value per invocation:
//   grad_in[n, k] (+)= sum_o act'(y[n, o]) grad_out[n, o] weight[o, k]
// over the rows out_offset..out_offset + out_features of a layer with out_total outputs (a layer
// split across bindings runs one dispatch per row range, the first writing, the others adding:
// `accumulate`). The activation's derivative is taken at the layer's forward output y, as in
// lib/activation.wgsl.
//
// Kept in sync with src/gpu/params.rs (`LinearGradParams`).
#import index
#import activation

struct Params {
    batch: u32,
    in_features: u32,
    // Rows in this dispatch.
    out_features: u32,
    out_offset: u32,
    out_total: u32,
    // 0: no mask, 1: ReLU6's derivative, 2: ReLU's derivative
    mask: u32,
    // 1: add to grad_in
    accumulate: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_total]
@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
// [batch, out_total]: the layer's forward output
@group(0) @binding(2) var<storage, read> forward_out: array<f32>;
// [out_features, in_features]
@group(0) @binding(3) var<storage, read> weight: array<f32>;
// [batch, in_features]
@group(0) @binding(4) var<storage, read_write> grad_in: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.in_features {
        return;
    }
    let n = id / params.in_features;
    let k = id % params.in_features;
    let row = n * params.out_total + params.out_offset;
    var acc = 0.0;
    for (var o = 0u; o < params.out_features; o++) {
        let g = activation_mask(vec4<f32>(grad_out[row + o]), vec4<f32>(forward_out[row + o]), params.mask).x;
        acc += g * weight[o * params.in_features + k];
    }
    if params.accumulate == 1u {
        acc += grad_in[id];
    }
    grad_in[id] = acc;
}
