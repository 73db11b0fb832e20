// Squeeze-and-excitation backward, the block's input gradient: grad_in[n, p, c] =
// grad_out[n, p, c] · gate(excited[n, c]) + grad_pooled[n, c] (the direct path and the path
// through the pooled vector) (+ extra), NHWC, four channels per invocation.
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(2) var<storage, read> excited: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(3) var<storage, read> grad_pooled: array<vec4<f32>>;
// [batch, pixels, channels / 4]: another reader's gradient of x, added with `add_extra`.
@group(0) @binding(4) var<storage, read> extra: array<vec4<f32>>;
// [batch, pixels, channels / 4]
@group(0) @binding(5) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.pixels * c4 {
        return;
    }
    let n = id / (params.pixels * c4);
    let at = n * c4 + id % c4;
    var g = grad_out[id] * unary(excited[at], params.gate, 0.0) + grad_pooled[at];
    if params.add_extra == 1u {
        g = g + extra[id];
    }
    grad_in[id] = g;
}
