// One input of a channel concatenation copied into its slice of the output, NHWC, four channels
// per invocation: output[p, offset + c] = part[p, c]. A concatenation is one launch per input.
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
    // concat_grad only: 1 to add `extra`.
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [pixels, part_c4]
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
// [pixels, total_c4]
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.pixels * params.part_c4 {
        return;
    }
    let c = id % params.part_c4;
    let p = id / params.part_c4;
    output[p * params.total_c4 + params.offset_c4 + c] = part[id];
}
