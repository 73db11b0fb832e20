// After one chunk of a probe batch: each row's target logit goes to its (image, channel) score,
// then the cursor moves to the next chunk. One workgroup: every invocation reads the cursor
// before the barrier, the first writes it after.
//
// Kept in sync with src/gpu/params.rs (`ProbeGatherParams`).
#import probe

struct Params {
    rows: u32,
    per_image: u32,
    images: u32,
    classes: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, classes]: the probe batch's logits
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [batch]: the class each image is explained for
@group(0) @binding(2) var<storage, read> targets: array<u32>;
// [1]: the chunk's first global row
@group(0) @binding(3) var<storage, read_write> cursor: array<u32>;
// [batch, per_image]
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

const GATHER_SIZE: u32 = 64u;

@compute @workgroup_size(GATHER_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
    let start = cursor[0];
    let total = params.images * params.per_image;
    for (var r = lid; r < params.rows; r += GATHER_SIZE) {
        let g = start + r;
        if g < total {
            let b = probe_image(g, params.per_image, params.images);
            scores[g] = logits[r * params.classes + targets[b]];
        }
    }
    storageBarrier();
    workgroupBarrier();
    if lid == 0u {
        cursor[0] = start + params.rows;
    }
}
