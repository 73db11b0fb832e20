// Gradient of a fully connected layer with respect to its input, one input value per invocation:
//   grad_in[n, k] (+)= sum_o act'(y[n, o]) grad_out[n, o] weight[o, k]
// over the rows out_offset..out_offset + out_features of a layer with out_total outputs (a layer
// split across bindings runs one dispatch per row range, the first writing, the others adding:
// `accumulate`). The activation's derivative is taken at the layer's forward output y, as in
// lib/activation.wgsl.
//
// On devices with 8-lane subgroups (lavapipe) the subgroup variant at the end (entry point
// `main_subgroups`) computes 4 input features × 8 images per lane, sharing each output's masked
// gradient of the 8 images among the lanes by broadcast.
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

// The subgroup variant (src/gpu/kernels.rs `LINEAR_GRAD_SUBGROUP`): a subgroup's 8 lanes take
// 32 consecutive input features, 4 each, of the same 8 images. For each output, lane l loads
// and masks image l's gradient and the 8 reach every lane by `subgroupBroadcast`; each lane loads
// its 4 weights once for the 8 images. Sums over the outputs in order, as `main` does.
#subgroups
@compute @workgroup_size(WORKGROUP_SIZE)
fn main_subgroups(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wid, nwg, lid);
    let k_groups = (params.in_features + 31u) / 32u;
    let image_groups = (params.batch + 7u) / 8u;
    // The same for the subgroup's lanes, so they all return or none.
    if sg >= k_groups * image_groups {
        return;
    }
    let k0 = (sg % k_groups) * 32u + lane * 4u;
    let n0 = (sg / k_groups) * 8u;
    let last_k = params.in_features - 1u;
    let k1 = min(k0 + 1u, last_k);
    let k2 = min(k0 + 2u, last_k);
    let k3 = min(k0 + 3u, last_k);
    let k0c = min(k0, last_k);
    let mine_row = min(n0 + lane, params.batch - 1u) * params.out_total + params.out_offset;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    for (var o = 0u; o < params.out_features; o++) {
        let at = mine_row + o;
        let mine = activation_mask(vec4<f32>(grad_out[at]), vec4<f32>(forward_out[at]), params.mask).x;
        let w = o * params.in_features;
        let wv = vec4<f32>(weight[w + k0c], weight[w + k1], weight[w + k2], weight[w + k3]);
        a0 += subgroupBroadcast(mine, 0u) * wv;
        a1 += subgroupBroadcast(mine, 1u) * wv;
        a2 += subgroupBroadcast(mine, 2u) * wv;
        a3 += subgroupBroadcast(mine, 3u) * wv;
        a4 += subgroupBroadcast(mine, 4u) * wv;
        a5 += subgroupBroadcast(mine, 5u) * wv;
        a6 += subgroupBroadcast(mine, 6u) * wv;
        a7 += subgroupBroadcast(mine, 7u) * wv;
    }
    store_grad(n0, k0, a0);
    store_grad(n0 + 1u, k0, a1);
    store_grad(n0 + 2u, k0, a2);
    store_grad(n0 + 3u, k0, a3);
    store_grad(n0 + 4u, k0, a4);
    store_grad(n0 + 5u, k0, a5);
    store_grad(n0 + 6u, k0, a6);
    store_grad(n0 + 7u, k0, a7);
}

// Input features k0..k0 + 3 of image n, where they exist.
fn store_grad(n: u32, k0: u32, v: vec4<f32>) {
    if n >= params.batch {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let k = k0 + j;
        if k < params.in_features {
            let id = n * params.in_features + k;
            var acc = v[j];
            if params.accumulate == 1u {
                acc += grad_in[id];
            }
            grad_in[id] = acc;
        }
    }
}
#end subgroups
