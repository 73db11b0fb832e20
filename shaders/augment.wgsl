// pytorch-grad-cam's aug_smooth test-time variants (ttach HorizontalFlip, then Multiply): the
// normalised input, flipped left-right when `flip` is 1, times `factor`.
//
// Kept in sync with src/gpu/params.rs (`AugmentParams`).
#import index

struct Params {
    batch: u32,
    size: u32,
    flip: u32,
    factor: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, size, size, 3]: the preprocessed input
@group(0) @binding(1) var<storage, read> pristine: array<f32>;
// [batch, size, size, 3]: the variant the network runs on
@group(0) @binding(2) var<storage, read_write> input: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let s = params.size;
    if id >= params.batch * s * s * 3u {
        return;
    }
    let c = id % 3u;
    let x = (id / 3u) % s;
    let row = id / (3u * s);
    var from_x = x;
    if params.flip == 1u {
        from_x = s - 1u - x;
    }
    input[id] = pristine[(row * s + from_x) * 3u + c] * params.factor;
}
