// Fully connected layer: out[n, o] = act(bias[o] + sum_k weight[o, k] * input[n, k]), the
// activation none, ReLU6 or ReLU. A layer whose weights exceed one binding runs as several
// dispatches over row ranges: this one computes rows out_offset.. of a layer with out_total
// outputs, with `weight` and `bias` holding only those rows.
//
// With SPLIT 1 (the variant for few images: the classifier at batch 1) a workgroup of 64 computes
// one output, its invocations reading the weight row side by side (coalesced) and summing in
// workgroup memory; else one invocation computes one output over the whole row.
//
// Kept in sync with src/gpu/params.rs (`LinearParams`).
#import index
#import activation

struct Params {
    batch: u32,
    in_features: u32,
    // Rows in this dispatch.
    out_features: u32,
    // 0: none, 1: ReLU6, 2: ReLU
    activation: u32,
    // First row, and the layer's rows (the output's row stride).
    out_offset: u32,
    out_total: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_features / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [out_features, in_features / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [out_features]
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// [batch, out_total]
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;
override SPLIT: u32 = 0u;
const SPLIT_SIZE: u32 = 64u;

var<workgroup> partial: array<vec4<f32>, SPLIT_SIZE>;

fn store(n: u32, o: u32, acc: vec4<f32>) {
    let v = bias[o] + (acc.x + acc.y) + (acc.z + acc.w);
    output[n * params.out_total + params.out_offset + o] = activate(vec4<f32>(v), params.activation).x;
}

// Output `group` (image-major) by the 64 invocations of a workgroup.
fn split(group: u32, lid: u32) {
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if group >= params.batch * params.out_features {
        return;
    }
    let n = group / params.out_features;
    let o = group % params.out_features;
    let k4 = params.in_features / 4u;
    var acc = vec4<f32>(0.0);
    for (var k = lid; k < k4; k += SPLIT_SIZE) {
        acc += input[n * k4 + k] * weight[o * k4 + k];
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = SPLIT_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        store(n, o, partial[0]);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if SPLIT > 0u {
        split(workgroup_index(wid, nwg), lid);
        return;
    }
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.out_features {
        return;
    }
    let n = id / params.out_features;
    let o = id % params.out_features;
    let k4 = params.in_features / 4u;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        acc += input[n * k4 + k] * weight[o * k4 + k];
    }
    store(n, o, acc);
}

// The subgroup variant (src/gpu/kernels.rs `LINEAR_SUBGROUP`): a subgroup's 8 lanes take 8
// consecutive outputs for the same 8 images; each lane loads its own weight vec4 and one image's
// input vec4 per step, and the 8 input vec4s reach every lane by `subgroupBroadcast`: 2 loads
// per 8 multiply-adds instead of 2 per 1. Only in the copy of this file build.rs writes for
// devices with subgroups; subgroups of 8 consecutive invocations, lane = local index % 8.
#subgroups
fn subgroup_outputs(sg: u32, lane: u32) {
    let groups = (params.out_features + 7u) / 8u;
    // The same for the subgroup's lanes, so they all return or none.
    if sg >= (params.batch + 7u) / 8u * groups {
        return;
    }
    let o = min((sg % groups) * 8u + lane, params.out_features - 1u);
    let n0 = (sg / groups) * 8u;
    let k4 = params.in_features / 4u;
    let mine = min(n0 + lane, params.batch - 1u) * k4;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let w = weight[o * k4 + k];
        let x = input[mine + k];
        a0 += subgroupBroadcast(x, 0u) * w;
        a1 += subgroupBroadcast(x, 1u) * w;
        a2 += subgroupBroadcast(x, 2u) * w;
        a3 += subgroupBroadcast(x, 3u) * w;
        a4 += subgroupBroadcast(x, 4u) * w;
        a5 += subgroupBroadcast(x, 5u) * w;
        a6 += subgroupBroadcast(x, 6u) * w;
        a7 += subgroupBroadcast(x, 7u) * w;
    }
    if (sg % groups) * 8u + lane >= params.out_features {
        return;
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    for (var i = 0u; i < 8u; i++) {
        if n0 + i < params.batch {
            store(n0 + i, o, acc[i]);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_subgroups(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    subgroup_outputs(subgroup_index(wid, nwg, lid), lane);
}
#end subgroups
