// The gradient of the target logit with respect to the pooled feature map (the head's output):
// logit_c = fc_bias[c] + sum_k fc_weight[c, k] * mean_p A[p, k], so
// d logit_c / d A[p, k] = fc_weight[c, k] / pixels, the same at every pixel.
// This is the linear layer's and the global average pool's backward in one step.
//
// Kept in sync with src/gpu/params.rs (`LogitGradParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch]: the class explained for each image
@group(0) @binding(1) var<storage, read> targets: array<u32>;
// [classes, channels / 4]
@group(0) @binding(2) var<storage, read> fc_weight: array<vec4<f32>>;
// [batch, pixels, channels / 4]
@group(0) @binding(3) var<storage, read_write> grad: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.pixels * c4 {
        return;
    }
    let n = id / (params.pixels * c4);
    let c = id % c4;
    grad[id] = fc_weight[targets[n] * c4 + c] / f32(params.pixels);
}
