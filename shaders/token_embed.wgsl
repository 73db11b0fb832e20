// A vision transformer's token sequence from its patch map, four channels per invocation:
// output[b, t] = table[t] + (t >= prefix ? input[b, t - prefix] : 0), the table holding the
// prefix tokens plus their position embedding, then the patch tokens' position embedding
// (src/graph/ops/token_embed.rs).
//
// Kept in sync with src/gpu/params.rs (`TokenEmbedParams`).
#import index

struct Params {
    batch: u32,
    // Tokens of the output, prefix included.
    tokens: u32,
    // Channels / 4.
    channels4: u32,
    // Prefix tokens.
    prefix: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, tokens - prefix, channels4]: the patch map, NHWC
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [tokens, channels4]
@group(0) @binding(2) var<storage, read> table: array<vec4<f32>>;
// [batch, tokens, channels4]
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let per_image = params.tokens * params.channels4;
    if id >= params.batch * per_image {
        return;
    }
    let b = id / per_image;
    let rest = id % per_image;
    let t = rest / params.channels4;
    var value = table[rest];
    if t >= params.prefix {
        let patches = params.tokens - params.prefix;
        value = input[b * patches * params.channels4 + rest - params.prefix * params.channels4]
            + value;
    }
    output[id] = value;
}
