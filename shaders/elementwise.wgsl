// y = act(x · scale[c] + bias[c]) elementwise (the scale and bias only with `has_affine`): a
// BatchNorm, an activation, or both, where no conv or linear layer absorbs them
// (src/graph/fuse.rs). act is any of lib/unary.wgsl's.
//
// Kept in sync with src/gpu/params.rs (`ElementwiseParams`).
#import index
#import unary

struct Params {
    // Values / 4.
    len4: u32,
    // Channels / 4: the innermost axis (NHWC).
    channels4: u32,
    activation: u32,
    has_affine: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.len4 {
        return;
    }
    var z = input[id];
    if params.has_affine == 1u {
        let c = id % params.channels4;
        z = z * scale[c] + bias[c];
    }
    output[id] = unary(z, params.activation, params.slope);
}
