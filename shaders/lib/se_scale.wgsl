// The gate of shaders/se_scale.wgsl (storage buffers) and shaders/se_scale_texture.wgsl (the
// input read through a texture): everything but the binding of `input`, which the importer
// declares with `load_x(index)` reading its vec4 `index`.
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, channels / 4]
@group(0) @binding(2) var<storage, read> excited: array<vec4<f32>>;
// [batch, pixels, channels / 4]
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.pixels * c4 {
        return;
    }
    let n = id / (params.pixels * c4);
    let s = unary(excited[n * c4 + id % c4], params.gate, 0.0);
    output[id] = load_x(id) * s;
}
