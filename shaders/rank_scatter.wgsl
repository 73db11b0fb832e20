// The deletion and insertion metrics' ranking, step 3 of 3: each position's rank (0: the highest
// CAM value) from the sorted pairs of shaders/rank_sort.wgsl.
//
// Parameters: shaders/lib/rank.wgsl.
#import index
#import rank

// [batch, padded]: sorted (bits of the value, position)
@group(0) @binding(1) var<storage, read> pairs: array<vec2<u32>>;
// [batch, positions]
@group(0) @binding(2) var<storage, read_write> ranks: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.positions {
        return;
    }
    let n = id / params.positions;
    let rank = id % params.positions;
    // The padding sorts last, so the first `positions` pairs are the image's own.
    let position = pairs[n * params.padded + rank].y;
    ranks[n * params.positions + position] = rank;
}
