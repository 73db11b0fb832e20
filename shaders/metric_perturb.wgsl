// A metric's perturbed input (src/metrics.rs `Perturbation`), from the preprocessed input kept
// aside and the final CAM at the input size:
//   mode 0 (CamMult): input = pristine * cam, every channel (pytorch-grad-cam's
//                     `multiply_tensor_with_cam`).
//
// Kept in sync with src/gpu/params.rs (`MetricPerturbParams`).
#import index

struct Params {
    batch: u32,
    size: u32,
    mode: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, size, size, 3]: the preprocessed input
@group(0) @binding(1) var<storage, read> pristine: array<f32>;
// [batch, size, size]: the final CAM
@group(0) @binding(2) var<storage, read> cam: array<f32>;
// [batch, size, size, 3]: the input the network runs on
@group(0) @binding(3) var<storage, read_write> input: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.size * params.size * 3u {
        return;
    }
    input[id] = pristine[id] * cam[id / 3u];
}
