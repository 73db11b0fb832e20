// The class each image is explained for: the one requested, the argmax of its logits (first
// maximum, as numpy's argmax), or its r-th most likely class (logits in descending order, ties
// by the lower index; rank 0 is the argmax). Runs on the GPU so the class choice needs no
// readback.
//
// Kept in sync with src/gpu/params.rs (`SelectTargetParams`).
#import index

struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

// Marks "use the argmax" in `requested`.
const ARGMAX: u32 = 0xffffffffu;
// Marks "use rank `requested & ~RANKED`" (src/pipeline/explain.rs `RANKED`).
const RANKED: u32 = 0x80000000u;

@group(0) @binding(0) var<uniform> params: Params;
// [batch, classes]
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [batch]: a class index, ARGMAX, or RANKED | rank
@group(0) @binding(2) var<storage, read> requested: array<u32>;
// [batch]
@group(0) @binding(3) var<storage, read_write> targets: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

// One invocation per (image, class): class c has rank #{j : z_j > z_c, or z_j == z_c and j < c},
// a strict order, so exactly one class holds each rank and writes it. A NaN logit has no rank.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.classes {
        return;
    }
    let n = id / params.classes;
    let c = id % params.classes;
    let want = requested[n];
    var rank = 0u;
    if want != ARGMAX {
        if (want & RANKED) == 0u {
            if c == 0u {
                targets[n] = want;
            }
            return;
        }
        rank = want & ~RANKED;
    }
    let base = n * params.classes;
    let v = logits[base + c];
    if v != v {
        return;
    }
    var ahead = 0u;
    for (var j = 0u; j < params.classes; j++) {
        let u = logits[base + j];
        if u > v || (u == v && j < c) {
            ahead++;
            if ahead > rank {
                return;
            }
        }
    }
    if ahead == rank {
        targets[n] = c;
    }
}
