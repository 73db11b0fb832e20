// Second half of pytorch-grad-cam's show_cam_on_image at each image's own resolution:
// out = uint8(255 * blend / max(blend)) with truncation, written as RGBA8 (alpha 255), the
// images of the batch one after another (each at ImageMeta.out_offset pixels, its rows
// overlay_row_pitch(width) pixels apart; the pixels past the width are written as zero).
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.total_pixels {
        return;
    }
    // The image holding output pixel `id`: the last whose out_offset is <= id.
    var lo = 0u;
    var hi = params.batch;
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if metas[mid].out_offset <= id {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let image = metas[lo];
    let local = id - image.out_offset;
    let pitch = overlay_row_pitch(image.width);
    let x = local % pitch;
    if x >= image.width {
        overlay[id] = 0u;
        return;
    }
    // A zero maximum (an all-black image at image weight 1) would divide by zero: write black.
    let m = stats[lo].y;
    let b = select(vec3<f32>(0.0), blend(lo, image, x, local / pitch) / m, m > 0.0);
    let q = vec3<u32>(min(255.0 * b, vec3<f32>(255.0)));
    overlay[id] = q.x | (q.y << 8u) | (q.z << 16u) | (255u << 24u);
}
