// pytorch-grad-cam's `deprocess_image` for the guided gradient (image 2b) and for Guided
// Grad-CAM (image 2b + 1): x = (v - mean) / (std + 1e-5) * 0.1 + 0.5, clipped to [0, 1], then
// uint8(255 x) (truncation), as RGBA8 packed in u32 (alpha 255), at the model's input size.
//
// Kept in sync with src/gpu/params.rs (`GuidedStatsParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, 3]
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
// [batch, pixels]
@group(0) @binding(2) var<storage, read> cam: array<f32>;
// [batch, 2]: (mean, std) from shaders/guided_stats.wgsl
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
// [batch, 2, pixels]
@group(0) @binding(4) var<storage, read_write> images: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

fn channel(v: f32, s: vec2<f32>) -> u32 {
    var x = v - s.x;
    x = x / (s.y + 1e-5);
    x = x * 0.1;
    x = x + 0.5;
    return u32(clamp(x, 0.0, 1.0) * 255.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * 2u * params.pixels {
        return;
    }
    let n = id / params.pixels;
    let p = id % params.pixels;
    let b = n / 2u;
    var scale = 1.0;
    if n % 2u == 1u {
        scale = cam[b * params.pixels + p];
    }
    let s = stats[n];
    let g = (b * params.pixels + p) * 3u;
    let r = channel(gradient[g] * scale, s);
    let gr = channel(gradient[g + 1u] * scale, s);
    let bl = channel(gradient[g + 2u] * scale, s);
    images[id] = r | (gr << 8u) | (bl << 16u) | (255u << 24u);
}
