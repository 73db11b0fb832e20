// Second half of pytorch-grad-cam's show_cam_on_image at each image's own resolution:
// out = uint8(255 * blend / max(blend)) with truncation, written as RGBA8 (alpha 255), the
// images of the batch one after another (each at ImageMeta.out_offset pixels).
//
// The blend is the same code as in overlay_max.wgsl.
// Kept in sync with src/gpu/params.rs (`OverlayParams`, `ImageMeta`).

struct Params {
    batch: u32,
    cam_h: u32,
    cam_w: u32,
    total_pixels: u32,
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
@group(0) @binding(1) var<storage, read> cam: array<f32>;
@group(0) @binding(2) var<storage, read> lut: array<u32>;
@group(0) @binding(3) var<storage, read> pixels: array<u32>;
@group(0) @binding(4) var<storage, read> metas: array<ImageMeta>;
// [batch]: from overlay_max.wgsl
@group(0) @binding(5) var<storage, read> maxima: array<f32>;
// [total_pixels]: RGBA8 packed as r | g << 8 | b << 16 | a << 24
@group(0) @binding(6) var<storage, read_write> overlay: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

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
    let index = min(u32(max(255.0 * v, 0.0)), 255u);
    let packed = lut[index];
    let heat = vec3<f32>(f32(packed & 0xffu), f32((packed >> 8u) & 0xffu), f32((packed >> 16u) & 0xffu)) / 255.0;
    let p = image.offset + (y * image.width + x) * 3u;
    let rgb = vec3<f32>(byte_at(p), byte_at(p + 1u), byte_at(p + 2u)) / 255.0;
    return params.heat_weight * heat + params.image_weight * rgb;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
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
    // A zero maximum (an all-black image at image weight 1) would divide by zero: write black.
    let m = maxima[lo];
    let b = select(vec3<f32>(0.0), blend(lo, image, local % image.width, local / image.width) / m, m > 0.0);
    let q = vec3<u32>(min(255.0 * b, vec3<f32>(255.0)));
    overlay[id] = q.x | (q.y << 8u) | (q.z << 16u) | (255u << 24u);
}
