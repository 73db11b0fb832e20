// The saliency map: per image and input pixel, the largest |d logit / d x| over the pixel's
// channels (the gradient with respect to the normalised input). One invocation per image and
// pixel.
//
// Kept in sync with src/gpu/params.rs (`CamSaliencyParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
// [batch, pixels]
@group(0) @binding(2) var<storage, read_write> grid: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.pixels {
        return;
    }
    var m = 0.0;
    for (var c = 0u; c < params.channels; c++) {
        m = max(m, abs(gradient[id * params.channels + c]));
    }
    grid[id] = m;
}
