// The matrix whose first principal component Eigen-CAM projects on, centred per channel:
//   X = A (Eigen-CAM), G * A (EigenGradCAM), or what eigen-smooth projects (`source`:
//   shaders/lib/eigen_matrix.wgsl), [pixels, channels] per image;
//   centred[p, c] = X[p, c] - mean_p X[p, c]
// as pytorch-grad-cam 1.5.7's get_2d_projection (utils/svd_on_activations.py) before its SVD.
// One invocation per image and channel.
//
// Kept in sync with src/gpu/params.rs (`CamCenterParams`).
#import index
#import eigen_matrix

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    source: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]
@group(0) @binding(1) var<storage, read> activations: array<f32>;
// [batch, pixels, channels], or per-channel weights [batch, channels]: read for `source` > 0
@group(0) @binding(2) var<storage, read> gradient: array<f32>;
// [batch, pixels, channels]
@group(0) @binding(3) var<storage, read_write> centred: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

fn value(i: u32) -> f32 {
    return matrix_value(i);
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
