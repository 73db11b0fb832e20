// pytorch-grad-cam's aug_smooth: each variant's final CAM, flipped back (`flip`), kept in its
// slot (`finish` 0); then (`finish` 1) their mean in the reference's order, summed left to right
// in float32 and divided by the count, with no renormalisation (np.mean(np.float32(cams), 0)).
//
// Kept in sync with src/gpu/params.rs (`AugMeanParams`).
#import index

struct Params {
    batch: u32,
    size: u32,
    variant: u32,
    variants: u32,
    flip: u32,
    finish: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, size, size]: the CAM of the variant just run; the mean, when finishing
@group(0) @binding(1) var<storage, read_write> cam: array<f32>;
// [variants, batch, size, size]
@group(0) @binding(2) var<storage, read_write> slots: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let s = params.size;
    let len = params.batch * s * s;
    if id >= len {
        return;
    }
    if params.finish == 1u {
        var sum = 0.0;
        for (var v = 0u; v < params.variants; v++) {
            sum += slots[v * len + id];
        }
        cam[id] = sum / f32(params.variants);
        return;
    }
    let x = id % s;
    var source = id;
    if params.flip == 1u {
        source = id - x + (s - 1u - x);
    }
    slots[params.variant * len + id] = cam[source];
}
