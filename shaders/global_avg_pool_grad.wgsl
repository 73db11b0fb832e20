// The input gradient of shaders/global_avg_pool.wgsl: grad_in[n, p, c] = grad_out[n, c] / pixels
// at every pixel (+ extra), NHWC, four channels per invocation.
//
// Kept in sync with src/gpu/params.rs (`PoolGradParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    // 1: add `extra` (another reader's gradient of the input).
    add_extra: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, pixels, channels / 4]
@group(0) @binding(2) var<storage, read> extra: array<vec4<f32>>;
// [batch, pixels, channels / 4]
@group(0) @binding(3) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.pixels * c4 {
        return;
    }
    let n = id / (params.pixels * c4);
    var g = grad_out[n * c4 + id % c4] / f32(params.pixels);
    if params.add_extra == 1u {
        g = g + extra[id];
    }
    grad_in[id] = g;
}
