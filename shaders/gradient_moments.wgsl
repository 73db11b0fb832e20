// Smooth Grad-CAM++'s running sums of the layer gradient's powers over the noisy samples
// (torch-cam `SmoothGradCAMpp`): squares += G^2, cubes += G^3, or = with `first` (the first
// sample).
//
// Kept in sync with src/gpu/params.rs (`GradientMomentsParams`).
#import index

struct Params {
    len: u32,
    first: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [len]: d target / d activations of this sample
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
// [len]
@group(0) @binding(2) var<storage, read_write> squares: array<f32>;
// [len]
@group(0) @binding(3) var<storage, read_write> cubes: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.len {
        return;
    }
    let g = gradient[id];
    let g2 = g * g;
    let g3 = g2 * g;
    if params.first == 1u {
        squares[id] = g2;
        cubes[id] = g3;
    } else {
        squares[id] += g2;
        cubes[id] += g3;
    }
}
