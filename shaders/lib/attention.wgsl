// Shared by the self-attention kernels (src/graph/ops/attention.rs): the parameters and the
// layout of the QKV projection's output, token t of image b holding [q | k | v], each `heads`
// heads of HEAD_DIM4 vec4s. One invocation per (image, head, token), a workgroup taking
// WORKGROUP_SIZE tokens of one image and head (`attention_item`).
//
// Kept in sync with src/gpu/params.rs (`AttentionParams`).

struct Params {
    batch: u32,
    tokens: u32,
    heads: u32,
    // Channels per head / 4 (HEAD_DIM4).
    head_dim4: u32,
    // The scores' factor.
    scale: f32,
    // Gradient kernels: 1 to add `extra`.
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
}

// Channels per head / 4: src/graph/ops/attention.rs `HEAD_DIM` / 4. A constant, so that a head's
// vectors stay in registers.
const HEAD_DIM4: u32 = 16u;

// The (image, head, token) of invocation `lid` of workgroup `group` (shaders/lib/index.wgsl
// `workgroup_index`): each workgroup takes WORKGROUP_SIZE consecutive tokens of one image and
// head, so the keys and values its invocations read in step are at the same addresses for all
// of them (addresses from the workgroup's index alone, which a CPU adapter computes once per
// workgroup). `z` is tokens or more for the padding invocations.
fn attention_item(group: u32, lid: u32) -> vec3<u32> {
    let tiles = (params.tokens + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
    let t = (group % tiles) * WORKGROUP_SIZE + lid;
    let h = (group / tiles) % params.heads;
    let b = group / (tiles * params.heads);
    return vec3<u32>(b, h, t);
}

// The first vec4 of part `part` (0 query, 1 key, 2 value) of head `h` of token `t` of image `b`
// in the QKV tensor.
fn qkv_index(b: u32, t: u32, part: u32, h: u32) -> u32 {
    let width4 = params.heads * params.head_dim4;
    return ((b * params.tokens + t) * 3u + part) * width4 + h * params.head_dim4;
}

// The first vec4 of head `h` of token `t` of image `b` in the attention's output (or its
// gradient).
fn out_index(b: u32, t: u32, h: u32) -> u32 {
    return (b * params.tokens + t) * params.heads * params.head_dim4 + h * params.head_dim4;
}

// The softmax normaliser of query `t` of head `h` of image `b` in `stats`.
fn stats_index(b: u32, t: u32, h: u32) -> u32 {
    return (b * params.tokens + t) * params.heads + h;
}
