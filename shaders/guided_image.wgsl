// pytorch-grad-cam's `deprocess_image` for the guided gradient (image 2b) and for Guided
// Grad-CAM (image 2b + 1): x = (v - mean) / (std + 1e-5) * 0.1 + 0.5, clipped to [0, 1], then
// uint8(255 x) (truncation), as RGBA8 packed in u32 (alpha 255), at the model's input size.
//
#import index
#import guided

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
    let s = stats[n];
    let r = channel(guided_value(b, n % 2u, p * 3u), s);
    let gr = channel(guided_value(b, n % 2u, p * 3u + 1u), s);
    let bl = channel(guided_value(b, n % 2u, p * 3u + 2u), s);
    images[id] = r | (gr << 8u) | (bl << 16u) | (255u << 24u);
}
