// The gradient of one input of a channel concatenation: its slice of the output's gradient
// (+ extra, another reader's gradient of the same input), NHWC, four channels per invocation.
//
// Kept in sync with src/gpu/params.rs (`ConcatParams`).
#import index

struct Params {
    // Pixels of the batch (images × height × width).
    pixels: u32,
    // The input's channels / 4.
    part_c4: u32,
    // The output's channels / 4.
    total_c4: u32,
    // The input's first channel in the output / 4.
    offset_c4: u32,
    // 1 to add `extra`.
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [pixels, total_c4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [pixels, part_c4]
@group(0) @binding(2) var<storage, read> extra: array<vec4<f32>>;
// [pixels, part_c4]
@group(0) @binding(3) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.pixels * params.part_c4 {
        return;
    }
    let c = id % params.part_c4;
    let p = id / params.part_c4;
    var g = grad_out[p * params.total_c4 + params.offset_c4 + c];
    if params.add_extra == 1u {
        g = g + extra[id];
    }
    grad_in[id] = g;
}
