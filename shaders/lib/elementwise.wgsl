// The elementwise op of shaders/elementwise.wgsl (storage buffers) and
// shaders/elementwise_texture.wgsl (the input, scale and bias read through textures): everything
// but the bindings of `input`, `scale` and `bias`, which the importer declares with
// `load_x(index)`, `load_scale(channel4)` and `load_shift(channel4)`.
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
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.len4 {
        return;
    }
    var z = load_x(id);
    if params.has_affine == 1u {
        let c = id % params.channels4;
        z = z * load_scale(c) + load_shift(c);
    }
    output[id] = unary(z, params.activation, params.slope);
}
