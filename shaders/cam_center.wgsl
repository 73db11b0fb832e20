// The matrix whose first principal component Eigen-CAM projects on, centred per channel:
//   X = A (Eigen-CAM) or G * A (EigenGradCAM, `use_gradient` 1), [pixels, channels] per image;
//   centred[p, c] = X[p, c] - mean_p X[p, c]
// as pytorch-grad-cam 1.5.7's get_2d_projection (utils/svd_on_activations.py) before its SVD.
// One invocation per image and channel.
//
// Kept in sync with src/gpu/params.rs (`CamCenterParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    use_gradient: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]
@group(0) @binding(1) var<storage, read> activations: array<f32>;
// [batch, pixels, channels]: read when `use_gradient` is 1
@group(0) @binding(2) var<storage, read> gradient: array<f32>;
// [batch, pixels, channels]
@group(0) @binding(3) var<storage, read_write> centred: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

fn value(i: u32) -> f32 {
    if params.use_gradient == 1u {
        return gradient[i] * activations[i];
    }
    return activations[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c = params.channels;
    if id >= params.batch * c {
        return;
    }
    let base = (id / c) * params.pixels * c + id % c;
    var s = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        s += value(base + p * c);
    }
    let mean = s / f32(params.pixels);
    for (var p = 0u; p < params.pixels; p++) {
        centred[base + p * c] = value(base + p * c) - mean;
    }
}
