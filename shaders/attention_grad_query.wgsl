// Self-attention's gradient at its queries, one invocation per (image, head, query token i):
// ∂q_i = scale · Σ_j P_ij (∂y_i · v_j − D_i) k_j, with P_ij = exp(scale · q_i · k_j − lse_i)
// recomputed from the forward's softmax normaliser and D_i = ∂y_i · y_i
// (src/graph/ops/attention.rs).
//
// Kept in sync with src/gpu/params.rs (`AttentionParams`).
#import index
#import attention
#import attention_grad

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
    var dy: array<vec4<f32>, HEAD_DIM4>;
    var acc: array<vec4<f32>, HEAD_DIM4>;
    let qi = qkv_index(b, i, 0u, h);
    let oi = out_index(b, i, h);
    var big_d4 = vec4<f32>(0.0);
    for (var d = 0u; d < HEAD_DIM4; d++) {
        q[d] = qkv[qi + d];
        dy[d] = grad_out[oi + d];
        big_d4 += dy[d] * output[oi + d];
        acc[d] = vec4<f32>(0.0);
    }
    let big_d = dot(big_d4, vec4<f32>(1.0));
    let lse = stats[stats_index(b, i, h)];
    for (var j = 0u; j < params.tokens; j++) {
        let kj = qkv_index(b, j, 1u, h);
        let vj = qkv_index(b, j, 2u, h);
        var s4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var d = 0u; d < HEAD_DIM4; d++) {
            s4 += q[d] * qkv[kj + d];
            dp4 += dy[d] * qkv[vj + d];
        }
        let p = exp(dot(s4, vec4<f32>(1.0)) * params.scale - lse);
        let g = p * (dot(dp4, vec4<f32>(1.0)) - big_d);
        for (var d = 0u; d < HEAD_DIM4; d++) {
            acc[d] += g * qkv[kj + d];
        }
    }
    for (var d = 0u; d < HEAD_DIM4; d++) {
        var value = acc[d] * params.scale;
        if params.add_extra != 0u {
            value += extra[qi + d];
        }
        grad_in[qi + d] = value;
    }
}
