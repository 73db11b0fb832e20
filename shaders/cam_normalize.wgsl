// The final per-image normalization, in place: x = (max(x, 0) - min) / (max - min + 1e-7) with
// the (min, max) of the ReLU'd map (pytorch-grad-cam's layer aggregation step).
//
// Kept in sync with src/gpu/params.rs (`CamNormalizeParams`).
#import index

struct Params {
    batch: u32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch]: (min, max) after ReLU
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
    map[id] = (max(map[id], 0.0) - st.x) / ((st.y - st.x) + 1e-7);
}
