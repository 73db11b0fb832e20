// A run of tokens copied between token sequences, four channels per invocation, the other
// output tokens zero: output[b, out_first + i] = input[b, in_first + i] for i < count (plus
// extra[b, ·] when add_extra). It selects a head's prefix tokens, routes their gradient back,
// routes a token embedding's gradient to its patch map, and lays a token layer's patch tokens
// on their grid for a CAM.
//
// Kept in sync with src/gpu/params.rs (`TokenRowsParams`).
#import index

struct Params {
    batch: u32,
    // Channels / 4.
    channels4: u32,
    // Tokens per image of the input and of the output.
    in_tokens: u32,
    out_tokens: u32,
    // The first token copied, in the input and in the output.
    in_first: u32,
    out_first: u32,
    // Tokens copied.
    count: u32,
    // 1 to add `extra` (same shape as the output).
    add_extra: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_tokens, channels4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [batch, out_tokens, channels4]; read only when add_extra
@group(0) @binding(2) var<storage, read> extra: array<vec4<f32>>;
// [batch, out_tokens, channels4]
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels4;
    let per_image = params.out_tokens * c4;
    if id >= params.batch * per_image {
        return;
    }
    let b = id / per_image;
    let t = (id % per_image) / c4;
    let c = id % c4;
    var value = vec4<f32>(0.0);
    if t >= params.out_first && t - params.out_first < params.count {
        let s = params.in_first + t - params.out_first;
        value = input[(b * params.in_tokens + s) * c4 + c];
    }
    if params.add_extra != 0u {
        value += extra[id];
    }
    output[id] = value;
}
