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
