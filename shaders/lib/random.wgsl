// Counter-based random numbers: a value is a pure function of its key (seed, stream, index), so
// any invocation draws its own without state and any host reproduces it
// (tools/make_torchcam_fixtures.py `noise` computes the same values in numpy).

// Chris Wellons' `lowbias32` integer hash.
fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// A uniform value in (0, 1) from the top 23 bits of hash32(seed + hash32(stream +
// hash32(counter))): (m + 0.5) / 2^23, exact in float32, at most 1 - 2^-24.
fn uniform01(seed: u32, stream: u32, counter: u32) -> f32 {
    let h = hash32(seed + hash32(stream + hash32(counter)));
    return (f32(h >> 9u) + 0.5) / 8388608.0;
}

// A standard normal value (Box-Muller, cosine branch) for `index` of `stream`: the uniforms are
// counters 2 index and 2 index + 1. The radius is clamped at 0 (a `log` within its error bound
// may come out above 0 next to 1), and the angle kept in [-pi, pi), where `cos` is specified:
// cos(2 pi u2) = -cos(2 pi u2 - pi).
fn standard_normal(seed: u32, stream: u32, index: u32) -> f32 {
    let u1 = uniform01(seed, stream, 2u * index);
    let u2 = uniform01(seed, stream, 2u * index + 1u);
    return -sqrt(max(-2.0 * log(u1), 0.0)) * cos(6.283185307179586 * u2 - 3.141592653589793);
}
