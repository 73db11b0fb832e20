// The explained class's score for the metrics (src/metrics.rs `TargetScore`), one workgroup per
// image: its softmax probability over the logits (`softmax` 1; pytorch-grad-cam's
// `ClassifierOutputSoftmaxTarget`: exp(l_t - max) / sum_j exp(l_j - max)) or its logit
// (`softmax` 0; `ClassifierOutputTarget`), into column `slot` of `scores` [batch, slots].
//
// Kept in sync with src/gpu/params.rs (`TargetScoreParams`).

struct Params {
    batch: u32,
    classes: u32,
    slots: u32,
    slot: u32,
    softmax: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, classes]
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [batch]
@group(0) @binding(2) var<storage, read> targets: array<u32>;
// [batch, slots]
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

const LANES: u32 = 64u;
var<workgroup> partial: array<f32, LANES>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.batch {
        return;
    }
    let base = n * params.classes;
    let target_class = targets[n];
    if params.softmax == 0u {
        if lid == 0u {
            scores[n * params.slots + params.slot] = logits[base + target_class];
        }
        return;
    }
    var m = -3.4028235e38;
    for (var j = lid; j < params.classes; j += LANES) {
        m = max(m, logits[base + j]);
    }
    partial[lid] = m;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    let top = partial[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = lid; j < params.classes; j += LANES) {
        sum += exp(logits[base + j] - top);
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        scores[n * params.slots + params.slot] = exp(logits[base + target_class] - top) / partial[0];
    }
}
