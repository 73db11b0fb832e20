// First half of pytorch-grad-cam's show_cam_on_image at each image's own resolution: the largest
// channel value of the blend (1 - w) * heat / 255 + w * img / 255 over the whole image, which the
// overlay kernel divides by. `chunks` workgroups per image, each writing the maximum of its share
// of the pixels; cam_minmax.wgsl takes the maximum of those for overlay.wgsl.
//
// The blend (sampling the model-resolution CAM bilinearly at the image's size, OpenCV
// INTER_LINEAR semantics, then the colormap lookup) is the same code as in overlay.wgsl.
// Kept in sync with src/gpu/params.rs (`OverlayParams`, `ImageMeta`).
#import overlay_blend

struct Params {
    batch: u32,
    cam_h: u32,
    cam_w: u32,
    total_pixels: u32,
    // f32(1 - w) and f32(w), both rounded from f64 as numpy does with a Python float weight.
    heat_weight: f32,
    image_weight: f32,
    // workgroups (partial maxima) per image of overlay_max.wgsl
    chunks: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, cam_h * cam_w]: the normalized CAM in [0, 1)
@group(0) @binding(1) var<storage, read> cam: array<f32>;
// [256]: RGB colormap entries packed as r | g << 8 | b << 16
@group(0) @binding(2) var<storage, read> lut: array<u32>;
// the uploaded RGB8 images
@group(0) @binding(3) var<storage, read> pixels: array<u32>;
@group(0) @binding(4) var<storage, read> metas: array<ImageMeta>;
// [batch, chunks]
@group(0) @binding(5) var<storage, read_write> maxima: array<f32>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> partial: array<f32, REDUCE_SIZE>;

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.x + wid.y * nwg.x;
    let n = group / params.chunks;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.batch {
        return;
    }
    let image = metas[n];
    let count = image.width * image.height;
    let stride = params.chunks * REDUCE_SIZE;
    var mx = 0.0;
    for (var i = (group % params.chunks) * REDUCE_SIZE + lid; i < count; i += stride) {
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
        maxima[group] = partial[0];
    }
}
