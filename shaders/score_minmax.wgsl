// Score-CAM: per image and channel, the minimum and maximum of the channel upsampled to the
// input size with align_corners=True (pytorch-grad-cam score_cam.py: `UpsamplingBilinear2d`,
// then `.max(dim=-1)` / `.min(dim=-1)` over the upsampled map). One workgroup per (image,
// channel); each invocation strides over the output positions, then a tree reduction.
//
// Kept in sync with src/gpu/params.rs (`ScoreMinMaxParams`).
#import align_corners

struct Params {
    items: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    size: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h * in_w, channels]
@group(0) @binding(1) var<storage, read> activations: array<f32>;
// [batch * channels]: (min, max)
@group(0) @binding(2) var<storage, read_write> stats: array<vec2<f32>>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> lo: array<f32, REDUCE_SIZE>;
var<workgroup> hi: array<f32, REDUCE_SIZE>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.items {
        return;
    }
    let c = params.channels;
    let b = n / c;
    let k = n % c;
    let base = b * params.in_h * params.in_w * c + k;
    var mn = 3.4028235e38;
    var mx = -3.4028235e38;
    let len = params.size * params.size;
    for (var i = lid; i < len; i += REDUCE_SIZE) {
        let y = aligned_axis(i / params.size, params.in_h, params.size);
        let x = aligned_axis(i % params.size, params.in_w, params.size);
        let r0 = base + y.i0 * params.in_w * c;
        let r1 = base + y.i1 * params.in_w * c;
        let v = aligned_blend(
            y, x,
            activations[r0 + x.i0 * c], activations[r0 + x.i1 * c],
            activations[r1 + x.i0 * c], activations[r1 + x.i1 * c],
        );
        mn = min(mn, v);
        mx = max(mx, v);
    }
    lo[lid] = mn;
    hi[lid] = mx;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            lo[lid] = min(lo[lid], lo[lid + s]);
            hi[lid] = max(hi[lid], hi[lid + s]);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        stats[n] = vec2<f32>(lo[0], hi[0]);
    }
}
