// Squeeze-and-excitation backward, the gate: grad_excited[n, c] = gate'(excited[n, c]) ·
// Σ_p x[n, p, c] · grad_out[n, p, c], four channels per invocation.
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, pixels, channels / 4]: the block's input x.
@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(3) var<storage, read> excited: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(4) var<storage, read_write> grad_excited: array<vec4<f32>>;

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
        let at = (n * params.pixels + p) * c4 + c;
        acc += input[at] * grad_out[at];
    }
    grad_excited[id] = unary_backward(acc, excited[id], params.gate, 0.0);
}
