// The bindings of the two self-attention gradient kernels (attention_grad_query.wgsl writes
// the query parts of `grad_in`, attention_grad_key_value.wgsl the key and value parts).
//
// Kept in sync with src/gpu/kernels.rs (`AttentionGradQuery`, `AttentionGradKeyValue`).

@group(0) @binding(0) var<uniform> params: Params;
// [batch, tokens, heads, head_dim4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, tokens, 3, heads, head_dim4]
@group(0) @binding(2) var<storage, read> qkv: array<vec4<f32>>;
// [batch, tokens, heads, head_dim4]: the forward's output
@group(0) @binding(3) var<storage, read> output: array<vec4<f32>>;
// [batch, tokens, heads]
@group(0) @binding(4) var<storage, read> stats: array<f32>;
// Same as grad_in; read only when add_extra
@group(0) @binding(5) var<storage, read> extra: array<vec4<f32>>;
// [batch, tokens, 3, heads, head_dim4]
@group(0) @binding(6) var<storage, read_write> grad_in: array<vec4<f32>>;
