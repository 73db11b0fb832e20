// Multi-head self-attention's core, one invocation per (image, head, query token): the query's
// scores against every key, softmax'd online (running maximum and sum), the values' weighted
// sum; also the softmax normaliser max + log Σ exp, from which the gradient kernels recompute
// the probabilities (src/graph/ops/attention.rs).
//
// Kept in sync with src/gpu/params.rs (`AttentionParams`).
#import index
#import attention

@group(0) @binding(0) var<uniform> params: Params;
// [batch, tokens, 3, heads, head_dim4]
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
// [batch, tokens, heads, head_dim4]
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;
// [batch, tokens, heads]
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = attention_item(workgroup_index(wid, nwg), lid);
    if item.x >= params.batch || item.z >= params.tokens {
        return;
    }
    let b = item.x;
    let h = item.y;
    let i = item.z;
    var q: array<vec4<f32>, HEAD_DIM4>;
    var acc: array<vec4<f32>, HEAD_DIM4>;
    let qi = qkv_index(b, i, 0u, h);
    for (var d = 0u; d < HEAD_DIM4; d++) {
        q[d] = qkv[qi + d];
        acc[d] = vec4<f32>(0.0);
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var j = 0u; j < params.tokens; j++) {
        let kj = qkv_index(b, j, 1u, h);
        var s4 = vec4<f32>(0.0);
        for (var d = 0u; d < HEAD_DIM4; d++) {
            s4 += q[d] * qkv[kj + d];
        }
        let s = dot(s4, vec4<f32>(1.0)) * params.scale;
        let vj = qkv_index(b, j, 2u, h);
        if s > m {
            // A new maximum: what was summed so far is rescaled.
            let r = exp(m - s);
            l = l * r + 1.0;
            for (var d = 0u; d < HEAD_DIM4; d++) {
                acc[d] = acc[d] * r + qkv[vj + d];
            }
            m = s;
        } else {
            let p = exp(s - m);
            l += p;
            for (var d = 0u; d < HEAD_DIM4; d++) {
                acc[d] += p * qkv[vj + d];
            }
        }
    }
    let o = out_index(b, i, h);
    let inv = 1.0 / l;
    for (var d = 0u; d < HEAD_DIM4; d++) {
        output[o + d] = acc[d] * inv;
    }
    stats[stats_index(b, i, h)] = m + log(l);
}

// For GPUs, the key-tiled variant (entry point `main_workgroup_tiled`): the workgroup's 64
// queries (of one image and head) take the keys and values KEY_TILE at a time, staged in
// workgroup memory by all 64 invocations together (coalesced loads, each key and value read from
// memory once per workgroup instead of once per query); per tile each query's scores, one
// rescaling of its running sum for the tile's maximum, then the tile's weighted values. The same
// sums as `main` in another order of rescaling: equal to float32 rounding.
const KEY_TILE: u32 = 16u;

var<workgroup> tile_keys: array<vec4<f32>, 256>;
var<workgroup> tile_values: array<vec4<f32>, 256>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_workgroup_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // The image and head from the workgroup alone (uniform across it, as the barriers need);
    // every invocation stages its share of each tile, padding ones included, and a workgroup
    // past the batch (a rounded-up grid) stages and computes nothing.
    let group = workgroup_index(wid, nwg);
    let tiles = (params.tokens + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
    let b = group / (tiles * params.heads);
    if b >= params.batch {
        return;
    }
    let h = (group / tiles) % params.heads;
    let i = (group % tiles) * WORKGROUP_SIZE + lid;
    let query = i < params.tokens;
    var q: array<vec4<f32>, HEAD_DIM4>;
    var acc: array<vec4<f32>, HEAD_DIM4>;
    let qi = qkv_index(b, min(i, params.tokens - 1u), 0u, h);
    for (var d = 0u; d < HEAD_DIM4; d++) {
        q[d] = qkv[qi + d];
        acc[d] = vec4<f32>(0.0);
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var start = 0u; start < params.tokens; start += KEY_TILE) {
        // 64 invocations stage KEY_TILE keys and values of HEAD_DIM4 vec4s each.
        for (var e = lid; e < KEY_TILE * HEAD_DIM4; e += WORKGROUP_SIZE) {
            let j = start + e / HEAD_DIM4;
            var k = vec4<f32>(0.0);
            var v = vec4<f32>(0.0);
            if j < params.tokens {
                k = qkv[qkv_index(b, j, 1u, h) + e % HEAD_DIM4];
                v = qkv[qkv_index(b, j, 2u, h) + e % HEAD_DIM4];
            }
            tile_keys[e] = k;
            tile_values[e] = v;
        }
        workgroupBarrier();
        let count = min(KEY_TILE, params.tokens - start);
        var s: array<f32, KEY_TILE>;
        var tile_max = -3.0e38;
        for (var t = 0u; t < count; t++) {
            var s4 = vec4<f32>(0.0);
            for (var d = 0u; d < HEAD_DIM4; d++) {
                s4 += q[d] * tile_keys[t * HEAD_DIM4 + d];
            }
            s[t] = dot(s4, vec4<f32>(1.0)) * params.scale;
            tile_max = max(tile_max, s[t]);
        }
        let new_m = max(m, tile_max);
        let r = exp(m - new_m);
        l *= r;
        for (var d = 0u; d < HEAD_DIM4; d++) {
            acc[d] *= r;
        }
        for (var t = 0u; t < count; t++) {
            let p = exp(s[t] - new_m);
            l += p;
            for (var d = 0u; d < HEAD_DIM4; d++) {
                acc[d] += p * tile_values[t * HEAD_DIM4 + d];
            }
        }
        m = new_m;
        workgroupBarrier();
    }
    if !query {
        return;
    }
    let o = out_index(b, i, h);
    let inv = 1.0 / l;
    for (var d = 0u; d < HEAD_DIM4; d++) {
        output[o + d] = acc[d] * inv;
    }
    stats[stats_index(b, i, h)] = m + log(l);
}
