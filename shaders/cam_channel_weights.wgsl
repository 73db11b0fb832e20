// Per-channel weights of the gradient-weighted CAM methods whose weight is not the gradient's
// plain spatial mean, one invocation per image and channel, with S_c = sum_p A[p, c]:
//   mode 1 (Grad-CAM++): w_c = sum_p relu(G) * alpha,
//                        alpha = G^2 / (2 G^2 + S_c G^3 + 1e-6), 0 where G == 0
//   mode 2 (XGrad-CAM):  w_c = sum_p G * A / (S_c + 1e-7)
//   mode 3 (FEM, no gradient): w_c = the fraction of positions where A > mu_c + 2 sigma_c, mu_c
//                        and sigma_c (population) the channel's mean and standard deviation
// in float32, term by term as pytorch-grad-cam 1.5.7 (grad_cam_plusplus.py, xgrad_cam.py,
// fem.py).
//
// Kept in sync with src/gpu/params.rs (`CamChannelWeightsParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    // 1: Grad-CAM++, 2: XGrad-CAM, 3: FEM
    mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]
@group(0) @binding(1) var<storage, read> activations: array<f32>;
// [batch, pixels, channels]: d target / d activations (not read by FEM)
@group(0) @binding(2) var<storage, read> gradient: array<f32>;
// [batch, channels]
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

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
    var s = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        s += activations[base + p * c];
    }
    let count = f32(params.pixels);
    if params.mode == 3u {
        let mean = s / count;
        var v = 0.0;
        for (var p = 0u; p < params.pixels; p++) {
            let d = activations[base + p * c] - mean;
            v += d * d;
        }
        let threshold = mean + 2.0 * sqrt(v / count);
        var above = 0u;
        for (var p = 0u; p < params.pixels; p++) {
            above += select(0u, 1u, activations[base + p * c] > threshold);
        }
        weights[id] = f32(above) / count;
        return;
    }
    var w = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        let g = gradient[base + p * c];
        if params.mode == 1u {
            let g2 = g * g;
            let g3 = g2 * g;
            let alpha = select(0.0, g2 / (2.0 * g2 + s * g3 + 1e-6), g != 0.0);
            w += max(g, 0.0) * alpha;
        } else {
            w += g * activations[base + p * c] / (s + 1e-7);
        }
    }
    weights[id] = w;
}
