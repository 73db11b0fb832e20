// Per-image minimum and maximum of a map (after a ReLU when `relu` is 1), `chunks` workgroups
// per image: each invocation strides over its workgroup's share, then a tree reduction in
// workgroup memory, one (min, max) per workgroup. With several chunks, a second pass (`relu` 2,
// one chunk) reduces those pairs to one per image.
// pytorch-grad-cam normalizes each map as (x - min) / (max - min + 1e-7) with these.
//
// Kept in sync with src/gpu/params.rs (`CamMinMaxParams`).

struct Params {
    batch: u32,
    len: u32,
    // 0: values as they are; 1: after a ReLU; 2: (min, max) pairs of an earlier pass
    relu: u32,
    chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, len], or [batch, len, 2] pairs
@group(0) @binding(1) var<storage, read> map: array<f32>;
// [batch, chunks]: (min, max)
@group(0) @binding(2) var<storage, read_write> stats: array<vec2<f32>>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> lo: array<f32, REDUCE_SIZE>;
var<workgroup> hi: array<f32, REDUCE_SIZE>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.x + wid.y * nwg.x;
    let chunks = max(params.chunks, 1u);
    let n = group / chunks;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.batch {
        return;
    }
    var mn = 3.4028235e38;
    var mx = -3.4028235e38;
    let stride = chunks * REDUCE_SIZE;
    if params.relu == 2u {
        let base = n * params.len * 2u;
        for (var i = (group % chunks) * REDUCE_SIZE + lid; i < params.len; i += stride) {
            mn = min(mn, map[base + 2u * i]);
            mx = max(mx, map[base + 2u * i + 1u]);
        }
    } else {
        let base = n * params.len;
        for (var i = (group % chunks) * REDUCE_SIZE + lid; i < params.len; i += stride) {
            var v = map[base + i];
            if params.relu == 1u {
                v = max(v, 0.0);
            }
            mn = min(mn, v);
            mx = max(mx, v);
        }
    }
    lo[lid] = mn;
    hi[lid] = mx;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            lo[lid] = min(lo[lid], lo[lid + s]);
            hi[lid] = max(hi[lid], hi[lid + s]);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        stats[group] = vec2<f32>(lo[0], hi[0]);
    }
}
