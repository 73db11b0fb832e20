// Squeeze-and-excitation, the reduction: squeezed[n, j] = bias[j] + Σ_c weight[j, c] · pooled[n, c]
// (the block's first 1×1 conv on the pooled vector, PyTorch's [out, in] weight). Its activation
// is applied where the value is read (se_excite.wgsl). One invocation per (image, j).
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, channels]
@group(0) @binding(1) var<storage, read> pooled: array<f32>;
// [squeeze, channels]
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// [squeeze]
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// [batch, squeeze]
@group(0) @binding(4) var<storage, read_write> squeezed: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.squeeze {
        return;
    }
    let n = id / params.squeeze;
    let j = id % params.squeeze;
    let c = params.channels;
    var acc = 0.0;
    for (var i = 0u; i < c; i++) {
        acc += weight[j * c + i] * pooled[n * c + i];
    }
    squeezed[id] = acc + bias[j];
}
