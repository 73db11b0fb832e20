// Channel weights from a probe batch's scores, one workgroup per image:
//   mode 0 (Score-CAM, score_cam.py): softmax of the scores over the channels;
//   mode 1 (Ablation-CAM, ablation_cam.py): (s0 - s_k) / s0, s0 the image's own target logit,
//          in float32 with no epsilon, as the reference divides.
//
// Kept in sync with src/gpu/params.rs (`ProbeWeightsParams`).

struct Params {
    batch: u32,
    channels: u32,
    classes: u32,
    mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, channels]
@group(0) @binding(1) var<storage, read> scores: array<f32>;
// [batch, classes]: the images' own logits
@group(0) @binding(2) var<storage, read> logits: array<f32>;
// [batch]
@group(0) @binding(3) var<storage, read> targets: array<u32>;
// [batch, channels]
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> partial: array<f32, REDUCE_SIZE>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.batch {
        return;
    }
    let c = params.channels;
    let base = n * c;
    if params.mode == 1u {
        let s0 = logits[n * params.classes + targets[n]];
        for (var k = lid; k < c; k += REDUCE_SIZE) {
            weights[base + k] = (s0 - scores[base + k]) / s0;
        }
        return;
    }
    var mx = -3.4028235e38;
    for (var k = lid; k < c; k += REDUCE_SIZE) {
        mx = max(mx, scores[base + k]);
    }
    partial[lid] = mx;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    mx = partial[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var k = lid; k < c; k += REDUCE_SIZE) {
        sum += exp(scores[base + k] - mx);
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    for (var k = lid; k < c; k += REDUCE_SIZE) {
        weights[base + k] = exp(scores[base + k] - mx) / total;
    }
}
