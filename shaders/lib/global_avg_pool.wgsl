// The pool of shaders/global_avg_pool.wgsl (storage buffers) and
// shaders/global_avg_pool_texture.wgsl (the input read through a texture): everything but the
// binding of `input`, which the importer declares with `load_x(index)` reading its vec4 `index`.
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
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
        acc += load_x((n * params.pixels + p) * c4 + c);
    }
    output[id] = acc / f32(params.pixels);
}
