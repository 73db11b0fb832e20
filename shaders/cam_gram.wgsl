// The Gram matrix of the centred matrix X [pixels, channels] on its smaller side n:
//   mode 0 (pixels <= channels): gram[i, j] = sum_c X[i, c] X[j, c]   (n = pixels)
//   mode 1 (channels < pixels):  gram[i, j] = sum_p X[p, i] X[p, j]   (n = channels)
// whose top eigenvector gives Eigen-CAM's projection (shaders/cam_eigen.wgsl). One invocation
// per image and entry.
//
// Kept in sync with src/gpu/params.rs (`CamGramParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]
@group(0) @binding(1) var<storage, read> centred: array<f32>;
// [batch, n, n]
@group(0) @binding(2) var<storage, read_write> gram: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let p = params.pixels;
    let c = params.channels;
    let n = select(c, p, params.mode == 0u);
    if id >= params.batch * n * n {
        return;
    }
    let b = id / (n * n);
    let i = (id / n) % n;
    let j = id % n;
    let base = b * p * c;
    var s = 0.0;
    if params.mode == 0u {
        for (var k = 0u; k < c; k++) {
            s += centred[base + i * c + k] * centred[base + j * c + k];
        }
    } else {
        for (var k = 0u; k < p; k++) {
            s += centred[base + k * c + i] * centred[base + k * c + j];
        }
    }
    gram[id] = s;
}
