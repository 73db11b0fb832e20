// FullGrad's map of one bias layer (or of the input) at its own resolution: per image and
// position, the sum over channels (`first_channel`, `channel_count` of them) of shaders/lib/full_grad.wgsl's value min-max scaled per
// channel, (v - min) / ((max - min) + 1e-7) as scale_cam_image, in channel order in float32 as
// numpy's sum over the channel axis. Resizing is linear, so the sum of the resized channels the
// reference takes is this sum resized. Written to `map`, or added to it with `accumulate`.
#import index
#import full_grad

// [batch, channels]: (min, max) from shaders/full_grad_stats.wgsl
@group(0) @binding(4) var<storage, read> stats: array<vec2<f32>>;
// [batch, pixels]
@group(0) @binding(5) var<storage, read_write> map: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.pixels {
        return;
    }
    let n = id / params.pixels;
    var sum = 0.0;
    for (var c = params.first_channel; c < params.first_channel + params.channel_count; c++) {
        let st = stats[n * params.channels + c];
        sum += (full_grad_value(id * params.channels + c, c) - st.x) / ((st.y - st.x) + 1e-7);
    }
    if params.accumulate == 1u {
        sum = map[id] + sum;
    }
    map[id] = sum;
}
