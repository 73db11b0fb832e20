// The class activation map at the target layer's resolution:
//   grid[n, p] = max(sum_k weights[n, k] * activations[n, p, k], 0)
// (the ReLU left out when `relu` is 0: CAM) where weights are per channel and image (Grad-CAM:
// the spatial means of the gradient; CAM: the classifier's weights of the target class).
//
// Kept in sync with src/gpu/params.rs (`CamCombineParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    // 1: ReLU of the sum.
    relu: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> activations: array<vec4<f32>>;
// [batch, channels / 4]
@group(0) @binding(2) var<storage, read> weights: array<vec4<f32>>;
// [batch, pixels]
@group(0) @binding(3) var<storage, read_write> grid: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.pixels {
        return;
    }
    let n = id / params.pixels;
    let c4 = params.channels / 4u;
    let a = id * c4;
    let w = n * c4;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) {
        acc += weights[w + k] * activations[a + k];
    }
    let sum = (acc.x + acc.y) + (acc.z + acc.w);
    if params.relu != 0u {
        grid[id] = max(sum, 0.0);
    } else {
        grid[id] = sum;
    }
}
