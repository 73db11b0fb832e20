// Global average pool: the mean over all pixels of each channel, NHWC, four channels per invocation.
//
// Kept in sync with src/gpu/params.rs (`PoolParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * c4 {
        return;
    }
    let n = id / c4;
    let c = id % c4;
    var acc = vec4<f32>(0.0);
    for (var p = 0u; p < params.pixels; p++) {
        acc += input[(n * params.pixels + p) * c4 + c];
    }
    output[id] = acc / f32(params.pixels);
}
