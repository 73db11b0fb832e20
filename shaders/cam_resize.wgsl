// Normalizes each map with its (min, max) — (x - min) / (max - min + 1e-7), as pytorch-grad-cam's
// scale_cam_image — unless `normalise` is 0, and resizes it bilinearly with OpenCV's
// INTER_LINEAR semantics (half-pixel centres, source coordinates clamped to the edge):
// cv2.resize(cam, (out_w, out_h)).
// With several target layers, the maps are averaged as pytorch-grad-cam's aggregate_multi_layers
// does in float32: layer 0 writes, the next ones add in order, the last divides by the count.
//
// Kept in sync with src/gpu/params.rs (`CamResizeParams`).
#import index
#import resize

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    // This map's index among `layers` target layers.
    layer: u32,
    layers: u32,
    // 1: min-max scale the map with `stats` first; 0: resize it as it is (FullGrad's sum,
    // scaled only once, at the end).
    normalise: u32,
    // `dst` holds `dst_channels` maps interleaved per position, this one at `dst_channel`
    // (FullGrad's eigen-smooth matrix); 1 and 0 for a plain map.
    dst_channels: u32,
    dst_channel: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h * in_w]
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [batch]: (min, max) of each source map
@group(0) @binding(2) var<storage, read> stats: array<vec2<f32>>;
// [batch, out_h * out_w, dst_channels]
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let per_image = params.out_h * params.out_w;
    if id >= params.batch * per_image {
        return;
    }
    let n = id / per_image;
    let oy = (id % per_image) / params.out_w;
    let ox = id % params.out_w;
    let sy = source(oy, params.in_h, params.out_h);
    let sx = source(ox, params.in_w, params.out_w);
    let y0 = u32(sy.x);
    let x0 = u32(sx.x);
    let y1 = min(y0 + 1u, params.in_h - 1u);
    let x1 = min(x0 + 1u, params.in_w - 1u);
    // (x - 0) / 1 is x exactly when the map is not scaled.
    var lo = 0.0;
    var scale = 1.0;
    if params.normalise == 1u {
        let st = stats[n];
        lo = st.x;
        scale = (st.y - st.x) + 1e-7;
    }
    let base = n * params.in_h * params.in_w;
    let a = (src[base + y0 * params.in_w + x0] - lo) / scale;
    let b = (src[base + y0 * params.in_w + x1] - lo) / scale;
    let c = (src[base + y1 * params.in_w + x0] - lo) / scale;
    let d = (src[base + y1 * params.in_w + x1] - lo) / scale;
    let top = a * (1.0 - sx.y) + b * sx.y;
    let bottom = c * (1.0 - sx.y) + d * sx.y;
    var v = top * (1.0 - sy.y) + bottom * sy.y;
    let at = id * params.dst_channels + params.dst_channel;
    if params.layer > 0u {
        v = dst[at] + v;
    }
    if params.layer + 1u == params.layers && params.layers > 1u {
        v = v / f32(params.layers);
    }
    dst[at] = v;
}
