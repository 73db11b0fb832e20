// Second half of pytorch-grad-cam's show_cam_on_image at each image's own resolution:
// out = uint8(255 * blend / max(blend)) with truncation, written as RGBA8 (alpha 255), the
// images of the batch one after another (each at ImageMeta.out_offset pixels, its rows
// overlay_row_pitch(width) pixels apart; the pixels past the width are written as zero).
// Each invocation writes PIXELS adjacent pixels of a row (a row's pitch is a multiple of 64, so
// they share their image and row): the search for the image, its metadata and its maximum are
// loaded once for them (src/gpu/kernels.rs `OVERLAY_PIXELS`).
//
// Kept in sync with src/gpu/params.rs (`OverlayParams`, `ImageMeta`).
#import overlay_blend
#import index

struct Params {
    batch: u32,
    cam_h: u32,
    cam_w: u32,
    total_pixels: u32,
    heat_weight: f32,
    image_weight: f32,
    // used by overlay_max.wgsl only
    chunks: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cam: array<f32>;
@group(0) @binding(2) var<storage, read> lut: array<u32>;
@group(0) @binding(3) var<storage, read> pixels: array<u32>;
@group(0) @binding(4) var<storage, read> metas: array<ImageMeta>;
// [batch]: (unused, maximum) of overlay_max.wgsl's partial maxima, reduced by cam_minmax.wgsl
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
// [total_pixels], rows padded: RGBA8 packed as r | g << 8 | b << 16 | a << 24
@group(0) @binding(6) var<storage, read_write> overlay: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;
const PIXELS: u32 = 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let first = invocation_index(gid, nwg) * PIXELS;
    if first >= params.total_pixels {
        return;
    }
    // The image holding output pixel `first`: the last whose out_offset is <= first.
    var lo = 0u;
    var hi = params.batch;
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if metas[mid].out_offset <= first {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let image = metas[lo];
    let local = first - image.out_offset;
    let pitch = overlay_row_pitch(image.width);
    let x0 = local % pitch;
    let y = local / pitch;
    // A zero maximum (an all-black image at image weight 1) would divide by zero: write black.
    let m = stats[lo].y;
    for (var j = 0u; j < PIXELS; j++) {
        let x = x0 + j;
        var packed = 0u;
        if x < image.width {
            let b = select(vec3<f32>(0.0), blend(lo, image, x, y) / m, m > 0.0);
            let q = vec3<u32>(min(255.0 * b, vec3<f32>(255.0)));
            packed = q.x | (q.y << 8u) | (q.z << 16u) | (255u << 24u);
        }
        overlay[first + j] = packed;
    }
}
