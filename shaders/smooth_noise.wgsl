// SmoothGrad's noisy copy of the input (Smooth Grad-CAM++; torch-cam `SmoothGradCAMpp`): the
// normalised input plus Gaussian noise of standard deviation `noise_std`, sample `sample` of the
// stream seeded by `seed`. The noise of an element depends on its channel-first index within
// its image (c H W + y W + x, the reference's tensor order), not on the image's place in the
// batch: an image gets the same noise in any batch.
//
// Kept in sync with src/gpu/params.rs (`SmoothNoiseParams`).
#import index
#import random

struct Params {
    batch: u32,
    size: u32,
    sample: u32,
    seed: u32,
    noise_std: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, size, size, 3]: the preprocessed input
@group(0) @binding(1) var<storage, read> pristine: array<f32>;
// [batch, size, size, 3]: the noisy copy the network runs on
@group(0) @binding(2) var<storage, read_write> input: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let s = params.size;
    let per_image = s * s * 3u;
    if id >= params.batch * per_image {
        return;
    }
    let c = id % 3u;
    let pixel = (id % per_image) / 3u;
    let index = c * s * s + pixel;
    input[id] = pristine[id] + params.noise_std * standard_normal(params.seed, params.sample, index);
}
