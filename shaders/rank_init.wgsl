// The deletion and insertion metrics' ranking, step 1 of 3 (src/pipeline/metric_passes.rs): each
// image's CAM values paired with their positions, padded to a power of two with pairs that sort
// last, for shaders/rank_sort.wgsl. Values below -1 and NaN (which a CAM in [0, 1] does not
// have) rank as -1, ahead of the padding, so that the first `positions` sorted pairs are always
// the image's own.
//
// Parameters: shaders/lib/rank.wgsl.
#import index
#import rank

// [batch, positions]: the final CAM
@group(0) @binding(1) var<storage, read> cam: array<f32>;
// [batch, padded]: (bits of the value, position)
@group(0) @binding(2) var<storage, read_write> pairs: array<vec2<u32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.padded {
        return;
    }
    let n = id / params.padded;
    let p = id % params.padded;
    // The padding sorts after every CAM value (in [0, 1]); so does a NaN, mapped just above it.
    var value = -2.0;
    if p < params.positions {
        let v = cam[n * params.positions + p];
        value = select(max(v, -1.0), -1.0, v != v);
    }
    pairs[id] = vec2<u32>(bitcast<u32>(value), p);
}
