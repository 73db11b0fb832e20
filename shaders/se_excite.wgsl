// Squeeze-and-excitation, the expansion: excited[n, c] = bias[c] + Σ_j weight[c, j] ·
// act(squeezed[n, j]) (the block's second 1×1 conv, PyTorch's [out, in] weight). Its gate is
// applied where the value is read (se_scale.wgsl). One invocation per (image, channel).
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, squeeze]
@group(0) @binding(1) var<storage, read> squeezed: array<f32>;
// [channels, squeeze]
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// [channels]
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// [batch, channels]
@group(0) @binding(4) var<storage, read_write> excited: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.channels {
        return;
    }
    let n = id / params.channels;
    let c = id % params.channels;
    let s = params.squeeze;
    var acc = 0.0;
    for (var j = 0u; j < s; j++) {
        acc += weight[c * s + j] * se_unary(squeezed[n * s + j], params.activation);
    }
    excited[id] = acc + bias[c];
}
