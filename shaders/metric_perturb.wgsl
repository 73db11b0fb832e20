// A metric's perturbed input (src/metrics.rs `Perturbation`), from the preprocessed input kept
// aside, the final CAM at the input size and the positions' ranks by it:
//   mode 0 (CamMult):  input = pristine * cam, every channel (pytorch-grad-cam's
//                      `multiply_tensor_with_cam`);
//   mode 1 (Baseline): input = 0 (the baseline in the normalised input);
//   mode 2 (Ranked):   the `count` positions ranked highest from the input and the rest from the
//                      baseline (`input_inside` 1), or the other way round (0), every channel.
//
// Kept in sync with src/gpu/params.rs (`MetricPerturbParams`).
#import index

struct Params {
    batch: u32,
    size: u32,
    mode: u32,
    count: u32,
    input_inside: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, size, size, 3]: the preprocessed input
@group(0) @binding(1) var<storage, read> pristine: array<f32>;
// [batch, size, size]: the final CAM
@group(0) @binding(2) var<storage, read> cam: array<f32>;
// [batch, size, size]: each position's rank by the CAM (mode 2; any buffer otherwise)
@group(0) @binding(3) var<storage, read> ranks: array<u32>;
// [batch, size, size, 3]: the input the network runs on
@group(0) @binding(4) var<storage, read_write> input: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.size * params.size * 3u {
        return;
    }
    let position = id / 3u;
    switch params.mode {
        case 0u: {
            input[id] = pristine[id] * cam[position];
        }
        case 1u: {
            input[id] = 0.0;
        }
        default: {
            let inside = ranks[position] < params.count;
            input[id] = select(0.0, pristine[id], inside == (params.input_inside == 1u));
        }
    }
}
