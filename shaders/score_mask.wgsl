// Score-CAM's masked inputs for one chunk of a probe batch: row r (image b, channel k) is the
// normalised input image b times channel k of the layer upsampled with align_corners=True and
// scaled to [0, 1] by its own extremes, (u - min) / (max - min + 1e-8) (pytorch-grad-cam
// score_cam.py).
//
// Kept in sync with src/gpu/params.rs (`ScoreMaskParams`).
#import index
#import align_corners
#import probe

struct Params {
    rows: u32,
    channels: u32,
    images: u32,
    in_h: u32,
    in_w: u32,
    size: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [1]: the chunk's first global row
@group(0) @binding(1) var<storage, read> cursor: array<u32>;
// [batch, in_h * in_w, channels]
@group(0) @binding(2) var<storage, read> activations: array<f32>;
// [batch * channels]: (min, max) of each upsampled channel (shaders/score_minmax.wgsl)
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
// [batch, size, size, 3]: the normalised input
@group(0) @binding(4) var<storage, read> input: array<f32>;
// [rows, size, size, 3]: the probe batch's input
@group(0) @binding(5) var<storage, read_write> masked: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let area = params.size * params.size;
    if id >= params.rows * area {
        return;
    }
    let r = id / area;
    let p = id % area;
    let c = params.channels;
    let g = cursor[0] + r;
    let b = probe_image(g, c, params.images);
    let k = g % c;
    let y = aligned_axis(p / params.size, params.in_h, params.size);
    let x = aligned_axis(p % params.size, params.in_w, params.size);
    let base = b * params.in_h * params.in_w * c + k;
    let r0 = base + y.i0 * params.in_w * c;
    let r1 = base + y.i1 * params.in_w * c;
    let u = aligned_blend(
        y, x,
        activations[r0 + x.i0 * c], activations[r0 + x.i1 * c],
        activations[r1 + x.i0 * c], activations[r1 + x.i1 * c],
    );
    let s = stats[b * c + k];
    let m = (u - s.x) / (s.y - s.x + 1e-8);
    let src = (b * area + p) * 3u;
    let dst = id * 3u;
    masked[dst] = input[src] * m;
    masked[dst + 1u] = input[src + 1u] * m;
    masked[dst + 2u] = input[src + 2u] * m;
}
