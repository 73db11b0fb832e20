// Squeeze-and-excitation backward, the expansion: grad_squeezed[n, j] = act'(squeezed[n, j]) ·
// Σ_c weight[c, j] · grad_excited[n, c]. One invocation per (image, j).
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, channels]
@group(0) @binding(1) var<storage, read> grad_excited: array<f32>;
// [batch, squeeze]
@group(0) @binding(2) var<storage, read> squeezed: array<f32>;
// [channels, squeeze]
@group(0) @binding(3) var<storage, read> weight: array<f32>;
// [batch, squeeze]
@group(0) @binding(4) var<storage, read_write> grad_squeezed: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.squeeze {
        return;
    }
    let n = id / params.squeeze;
    let j = id % params.squeeze;
    let s = params.squeeze;
    let c = params.channels;
    var acc = 0.0;
    for (var i = 0u; i < c; i++) {
        acc += weight[i * s + j] * grad_excited[n * c + i];
    }
    grad_squeezed[id] = se_unary_backward(acc, squeezed[id], params.activation);
}
