// First half of pytorch-grad-cam's show_cam_on_image at each image's own resolution: the largest
// channel value of the blend (1 - w) * heat / 255 + w * img / 255 over the whole image, which the
// overlay kernel divides by. One workgroup per image.
//
// The blend (sampling the model-resolution CAM bilinearly at the image's size, OpenCV
// INTER_LINEAR semantics, then the colormap lookup) is the same code as in overlay.wgsl.
// Kept in sync with src/gpu/params.rs (`OverlayParams`, `ImageMeta`).

struct Params {
    batch: u32,
    cam_h: u32,
    cam_w: u32,
    total_pixels: u32,
    // f32(1 - w) and f32(w), both rounded from f64 as numpy does with a Python float weight.
    heat_weight: f32,
    image_weight: f32,
    _pad0: u32,
    _pad1: u32,
}

struct ImageMeta {
    offset: u32,
    width: u32,
    height: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, cam_h * cam_w]: the normalized CAM in [0, 1)
@group(0) @binding(1) var<storage, read> cam: array<f32>;
// [256]: RGB colormap entries packed as r | g << 8 | b << 16
@group(0) @binding(2) var<storage, read> lut: array<u32>;
// the uploaded RGB8 images
@group(0) @binding(3) var<storage, read> pixels: array<u32>;
@group(0) @binding(4) var<storage, read> metas: array<ImageMeta>;
// [batch]
@group(0) @binding(5) var<storage, read_write> maxima: array<f32>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> partial: array<f32, REDUCE_SIZE>;

fn byte_at(i: u32) -> f32 {
    return f32((pixels[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
}

fn source(o: u32, in_size: u32, out_size: u32) -> vec2<f32> {
    let scale = f32(in_size) / f32(out_size);
    let f = (f32(o) + 0.5) * scale - 0.5;
    var s = floor(f);
    var frac = f - s;
    if s < 0.0 {
        s = 0.0;
        frac = 0.0;
    }
    if s >= f32(in_size - 1u) {
        s = f32(in_size - 1u);
        frac = 0.0;
    }
    return vec2<f32>(s, frac);
}

fn blend(n: u32, image: ImageMeta, x: u32, y: u32) -> vec3<f32> {
    let sy = source(y, params.cam_h, image.height);
    let sx = source(x, params.cam_w, image.width);
    let y0 = u32(sy.x);
    let x0 = u32(sx.x);
    let y1 = min(y0 + 1u, params.cam_h - 1u);
    let x1 = min(x0 + 1u, params.cam_w - 1u);
    let base = n * params.cam_h * params.cam_w;
    let top = cam[base + y0 * params.cam_w + x0] * (1.0 - sx.y) + cam[base + y0 * params.cam_w + x1] * sx.y;
    let bottom = cam[base + y1 * params.cam_w + x0] * (1.0 - sx.y) + cam[base + y1 * params.cam_w + x1] * sx.y;
    let v = top * (1.0 - sy.y) + bottom * sy.y;
    // np.uint8(255 * mask): truncation.
    let index = min(u32(max(255.0 * v, 0.0)), 255u);
    let packed = lut[index];
    let heat = vec3<f32>(f32(packed & 0xffu), f32((packed >> 8u) & 0xffu), f32((packed >> 16u) & 0xffu)) / 255.0;
    let p = image.offset + (y * image.width + x) * 3u;
    let rgb = vec3<f32>(byte_at(p), byte_at(p + 1u), byte_at(p + 2u)) / 255.0;
    return params.heat_weight * heat + params.image_weight * rgb;
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = wid.x + wid.y * nwg.x;
    if n >= params.batch {
        return;
    }
    let image = metas[n];
    let count = image.width * image.height;
    var mx = 0.0;
    for (var i = lid; i < count; i += REDUCE_SIZE) {
        let b = blend(n, image, i % image.width, i / image.width);
        mx = max(mx, max(b.x, max(b.y, b.z)));
    }
    partial[lid] = mx;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        maxima[n] = partial[0];
    }
}
