// Resize each uploaded RGB8 image, whole, to the model's input size with antialiased bilinear
// filtering, then normalize with the model's statistics: x/255, then (x - mean) / std per channel.
//
// The filter reproduces torch.nn.functional.interpolate(mode='bilinear', antialias=True,
// align_corners=False) on 0..255 floats: per axis, a triangle filter stretched by the scale
// when downscaling (support = scale), weights normalized to sum to one, taps clipped to the image.
// Images in one batch may have different sizes: each has its own entry in `metas`.
//
// Kept in sync with src/gpu/params.rs (`PreprocessParams`, `ImageMeta`).
#import image
#import index

struct Params {
    batch: u32,
    out_h: u32,
    out_w: u32,
    _pad: u32,
    // RGB in .xyz.
    mean: vec4<f32>,
    deviation: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> metas: array<ImageMeta>;
// [batch, out_h, out_w, 3]
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

// The taps of one output coordinate along one axis.
struct Taps {
    first: u32,
    count: u32,
    center: f32,
    inv_scale: f32,
    inv_total: f32,
}

fn triangle(x: f32) -> f32 {
    return max(1.0 - abs(x), 0.0);
}

fn taps(i: u32, in_size: u32, out_size: u32) -> Taps {
    let scale = f32(in_size) / f32(out_size);
    let downscaling = scale >= 1.0;
    let support = select(1.0, scale, downscaling);
    let inv_scale = select(1.0, 1.0 / scale, downscaling);
    let center = scale * (f32(i) + 0.5);
    // i32() truncates toward zero, as the C++ reference's int64 cast does.
    let lo = max(i32(center - support + 0.5), 0);
    let hi = min(i32(center + support + 0.5), i32(in_size));
    var t: Taps;
    t.first = u32(lo);
    t.count = u32(max(hi - lo, 0));
    t.center = center;
    t.inv_scale = inv_scale;
    var total = 0.0;
    for (var j = 0u; j < t.count; j++) {
        total += triangle((f32(t.first + j) - center + 0.5) * inv_scale);
    }
    t.inv_total = select(0.0, 1.0 / total, total != 0.0);
    return t;
}

fn tap_weight(t: Taps, j: u32) -> f32 {
    return triangle((f32(t.first + j) - t.center + 0.5) * t.inv_scale) * t.inv_total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let per_image = params.out_h * params.out_w;
    if id >= params.batch * per_image {
        return;
    }
    let n = id / per_image;
    let y = (id % per_image) / params.out_w;
    let x = id % params.out_w;
    let image = metas[n];

    var acc = vec3<f32>(0.0);
    if image.width == params.out_w && image.height == params.out_h {
        // Already at the model's size: the filter's taps are this pixel with weight 1 and its
        // neighbour with weight 0, so reading the pixel gives the same floats.
        let p = image.offset + id % per_image * 3u;
        let v = (vec3<f32>(byte_at(p), byte_at(p + 1u), byte_at(p + 2u)) / 255.0 - params.mean.xyz)
            / params.deviation.xyz;
        output[id * 3u] = v.x;
        output[id * 3u + 1u] = v.y;
        output[id * 3u + 2u] = v.z;
        return;
    }
    let ty = taps(y, image.height, params.out_h);
    let tx = taps(x, image.width, params.out_w);
    for (var j = 0u; j < ty.count; j++) {
        let wy = tap_weight(ty, j);
        let row = image.offset + (ty.first + j) * image.width * 3u;
        var row_acc = vec3<f32>(0.0);
        for (var i = 0u; i < tx.count; i++) {
            let p = row + (tx.first + i) * 3u;
            row_acc += tap_weight(tx, i) * vec3<f32>(byte_at(p), byte_at(p + 1u), byte_at(p + 2u));
        }
        acc += wy * row_acc;
    }
    let v = (acc / 255.0 - params.mean.xyz) / params.deviation.xyz;
    let o = id * 3u;
    output[o] = v.x;
    output[o + 1u] = v.y;
    output[o + 2u] = v.z;
}
