// Self-attention's gradient at its keys and values, one invocation per (image, head, key token
// j): ∂v_j = Σ_i P_ij ∂y_i and ∂k_j = scale · Σ_i P_ij (∂y_i · v_j − D_i) q_i, with
// P_ij = exp(scale · q_i · k_j − lse_i) recomputed from the forward's softmax normaliser and
// D_i = ∂y_i · y_i (src/graph/ops/attention.rs).
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
    let j = item.z;
    var k: array<vec4<f32>, HEAD_DIM4>;
    var v: array<vec4<f32>, HEAD_DIM4>;
    var dk: array<vec4<f32>, HEAD_DIM4>;
    var dv: array<vec4<f32>, HEAD_DIM4>;
    let kj = qkv_index(b, j, 1u, h);
    let vj = qkv_index(b, j, 2u, h);
    for (var d = 0u; d < HEAD_DIM4; d++) {
        k[d] = qkv[kj + d];
        v[d] = qkv[vj + d];
        dk[d] = vec4<f32>(0.0);
        dv[d] = vec4<f32>(0.0);
    }
    for (var i = 0u; i < params.tokens; i++) {
        let qi = qkv_index(b, i, 0u, h);
        let oi = out_index(b, i, h);
        var s4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        var big_d4 = vec4<f32>(0.0);
        for (var d = 0u; d < HEAD_DIM4; d++) {
            let dy = grad_out[oi + d];
            s4 += qkv[qi + d] * k[d];
            dp4 += dy * v[d];
            big_d4 += dy * output[oi + d];
        }
        let p = exp(dot(s4, vec4<f32>(1.0)) * params.scale - stats[stats_index(b, i, h)]);
        let g = p * (dot(dp4, vec4<f32>(1.0)) - dot(big_d4, vec4<f32>(1.0)));
        for (var d = 0u; d < HEAD_DIM4; d++) {
            dv[d] += p * grad_out[oi + d];
            dk[d] += g * qkv[qi + d];
        }
    }
    for (var d = 0u; d < HEAD_DIM4; d++) {
        var dkv = dk[d] * params.scale;
        var dvv = dv[d];
        if params.add_extra != 0u {
            dkv += extra[kj + d];
            dvv += extra[vj + d];
        }
        grad_in[kj + d] = dkv;
        grad_in[vj + d] = dvv;
    }
}
