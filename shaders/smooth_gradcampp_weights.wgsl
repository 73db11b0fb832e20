// Smooth Grad-CAM++'s channel weights (torch-cam 0.5 `SmoothGradCAMpp._get_weights`), one
// invocation per image and channel, in float32 term by term as the reference:
//   D2 = squares / n, D3 = cubes / n (the gradient's powers averaged over the n noisy samples),
//   alpha = D2 / (2 D2 + sum_q D3[q] A0[q] + 1e-8), A0 the clean input's activations,
//   w_c = sum_p alpha * relu(G), G the gradient of the last noisy sample.
//
// Kept in sync with src/gpu/params.rs (`SmoothGradCamPlusPlusParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    samples: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]: the clean input's activations
@group(0) @binding(1) var<storage, read> clean: array<f32>;
// [batch, pixels, channels]: sums over the samples of G^2 and G^3
@group(0) @binding(2) var<storage, read> squares: array<f32>;
@group(0) @binding(3) var<storage, read> cubes: array<f32>;
// [batch, pixels, channels]: the last sample's gradient
@group(0) @binding(4) var<storage, read> gradient: array<f32>;
// [batch, channels]
@group(0) @binding(5) var<storage, read_write> weights: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c = params.channels;
    if id >= params.batch * c {
        return;
    }
    let n = id / c;
    let k = id % c;
    let base = n * params.pixels * c + k;
    let samples = f32(params.samples);
    var s = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        s += cubes[base + p * c] / samples * clean[base + p * c];
    }
    var w = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        let i = base + p * c;
        let d2 = squares[i] / samples;
        let alpha = d2 / (2.0 * d2 + s + 1e-8);
        w += alpha * max(gradient[i], 0.0);
    }
    weights[id] = w;
}
