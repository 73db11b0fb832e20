// The first half of pytorch-grad-cam's show_cam_on_image at one pixel of an image's own
// resolution: the model-resolution CAM resized with OpenCV's INTER_LINEAR, colormapped through
// the LUT with truncation, blended with the image. Shared by overlay_max.wgsl (the per-image
// maximum) and overlay.wgsl (the final pixels), so both see the same values.
// Uses the importer's `params` (cam_h, cam_w, heat_weight, image_weight), `cam`, `lut` and
// `pixels` bindings.
#import image
#import resize

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
