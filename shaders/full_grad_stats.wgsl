// FullGrad's per-channel statistics: the (min, max) over the positions of each image's channel
// of shaders/lib/full_grad.wgsl's value, for scale_accross_batch_and_channels's min-max scaling
// of each channel's map. One invocation per image and channel (adjacent invocations read
// adjacent channels).
#import index
#import full_grad

// [batch, channels]: (min, max)
@group(0) @binding(4) var<storage, read_write> stats: array<vec2<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.channels {
        return;
    }
    let n = id / params.channels;
    let c = id % params.channels;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var p = 0u; p < params.pixels; p++) {
        let v = full_grad_value((n * params.pixels + p) * params.channels + c, c);
        lo = min(lo, v);
        hi = max(hi, v);
    }
    stats[id] = vec2<f32>(lo, hi);
}
