// The class each image is explained for: the one requested, or the argmax of its logits
// (first maximum, as numpy's argmax). Runs on the GPU so the class choice needs no readback.
//
// Kept in sync with src/gpu/params.rs (`SelectTargetParams`).

struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

// Marks "use the argmax" in `requested`.
const ARGMAX: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
// [batch, classes]
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [batch]: a class index or ARGMAX
@group(0) @binding(2) var<storage, read> requested: array<u32>;
// [batch]
@group(0) @binding(3) var<storage, read_write> targets: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if n >= params.batch {
        return;
    }
    let want = requested[n];
    if want != ARGMAX {
        targets[n] = want;
        return;
    }
    let base = n * params.classes;
    var best = 0u;
    var best_value = logits[base];
    for (var c = 1u; c < params.classes; c++) {
        let v = logits[base + c];
        // `!(v <= best)` would pick a NaN; a NaN logit never wins here.
        if v > best_value {
            best = c;
            best_value = v;
        }
    }
    targets[n] = best;
}
