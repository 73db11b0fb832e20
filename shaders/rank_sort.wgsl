// The deletion and insertion metrics' ranking, step 2 of 3: one compare-exchange stage (k, j) of
// a bitonic sort of each image's (value, position) pairs into the order torch-cam's stable
// descending argsort gives: higher value first, equal values by position. One invocation per
// pair of elements j apart.
//
// Parameters: shaders/lib/rank.wgsl.
#import index
#import rank

// [batch, padded]: (bits of the value, position)
@group(0) @binding(1) var<storage, read_write> pairs: array<vec2<u32>>;

override WORKGROUP_SIZE: u32 = 64u;

// Whether `a` comes before `b` in the ranking.
fn before(a: vec2<u32>, b: vec2<u32>) -> bool {
    let va = bitcast<f32>(a.x);
    let vb = bitcast<f32>(b.x);
    return va > vb || (va == vb && a.y < b.y);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let half = params.padded / 2u;
    if id >= params.batch * half {
        return;
    }
    let n = id / half;
    let t = id % half;
    let j = params.j;
    // The lower element of this invocation's pair, and its partner j further.
    let i = 2u * j * (t / j) + t % j;
    let base = n * params.padded;
    let a = pairs[base + i];
    let b = pairs[base + i + j];
    // Runs of k elements alternate direction: the ranking's order in even runs, its reverse in odd
    // runs, so that each stage merges bitonic sequences.
    let forward = (i & params.k) == 0u;
    if before(b, a) == forward {
        pairs[base + i] = b;
        pairs[base + i + j] = a;
    }
}
