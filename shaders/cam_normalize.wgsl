// A per-image min-max normalization, in place: x = (r(x) - min) / (max - min + eps) with the
// (min, max) of the map, r the ReLU when `relu` (pytorch-grad-cam's layer aggregation step, eps
// 1e-7) or the identity (torch-cam's `_normalize` of a CAM, eps 1e-8).
//
// Kept in sync with src/gpu/params.rs (`CamNormalizeParams`).
#import index

struct Params {
    batch: u32,
    len: u32,
    // 1: ReLU before scaling (stats of the ReLU'd map).
    relu: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch]: (min, max), after ReLU when `relu`
@group(0) @binding(1) var<storage, read> stats: array<vec2<f32>>;
// [batch, len]
@group(0) @binding(2) var<storage, read_write> map: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.len {
        return;
    }
    let st = stats[id / params.len];
    var x = map[id];
    if params.relu != 0u {
        x = max(x, 0.0);
    }
    map[id] = (x - st.x) / ((st.y - st.x) + params.eps);
}
