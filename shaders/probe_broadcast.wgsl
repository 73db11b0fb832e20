// For one chunk of a probe batch, each row's copy of a tensor of its image that the network
// after the probe's first op reads (a skip connection from before the ablated layer).
//
// Kept in sync with src/gpu/params.rs (`ProbeBroadcastParams`).
#import index
#import probe

struct Params {
    rows: u32,
    per_image: u32,
    images: u32,
    len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [1]: the chunk's first global row
@group(0) @binding(1) var<storage, read> cursor: array<u32>;
// [batch, len]
@group(0) @binding(2) var<storage, read> source: array<f32>;
// [rows, len]
@group(0) @binding(3) var<storage, read_write> copies: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.rows * params.len {
        return;
    }
    let r = id / params.len;
    let b = probe_image(cursor[0] + r, params.per_image, params.images);
    copies[id] = source[b * params.len + id % params.len];
}
