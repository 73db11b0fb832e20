// Squeeze-and-excitation backward, the reduction and the pool: grad_pooled[n, c] =
// Σ_j weight[j, c] · grad_squeezed[n, j] / pixels, the gradient every pixel of x receives through
// the pooled vector. One invocation per (image, channel).
#import index
#import squeeze_excite

@group(0) @binding(0) var<uniform> params: Params;
// [batch, squeeze]
@group(0) @binding(1) var<storage, read> grad_squeezed: array<f32>;
// [squeeze, channels]
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// [batch, channels]
@group(0) @binding(3) var<storage, read_write> grad_pooled: array<f32>;

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
    let channels = params.channels;
    var acc = 0.0;
    for (var j = 0u; j < s; j++) {
        acc += weight[j * channels + c] * grad_squeezed[n * s + j];
    }
    grad_pooled[id] = acc / f32(params.pixels);
}
