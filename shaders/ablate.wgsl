// Ablation-CAM's ablated activations for one chunk of a probe batch: row r (image b, channel k)
// is the layer's activations of image b with channel k replaced by pytorch-grad-cam's ablation
// value (ablation_layer.py `AblationLayer.__call__`): 0 when the image's smallest activation is
// 0; otherwise that minimum minus 1e7 once per row up to and including this one in the
// reference's chunk of ABLATION_CHUNK channels, since it re-reads the minimum after each row.
//
// Kept in sync with src/gpu/params.rs (`AblateParams`).
#import index
#import probe

struct Params {
    rows: u32,
    channels: u32,
    images: u32,
    pixels: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [1]: the chunk's first global row
@group(0) @binding(1) var<storage, read> cursor: array<u32>;
// [batch, pixels, channels]
@group(0) @binding(2) var<storage, read> activations: array<f32>;
// [batch]: (min, max) of each image's activations (shaders/cam_minmax.wgsl)
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
// [rows, pixels, channels]
@group(0) @binding(4) var<storage, read_write> ablated: array<f32>;

// pytorch-grad-cam AblationCAM's default `batch_size`: the chunk the ablation value counts in.
const ABLATION_CHUNK: u32 = 32u;

fn ablation_value(minimum: f32, position: u32) -> f32 {
    if minimum == 0.0 {
        return 0.0;
    }
    var v = minimum;
    for (var i = 0u; i <= position; i++) {
        v = v - 1e7;
    }
    return v;
}

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c = params.channels;
    let len = params.pixels * c;
    if id >= params.rows * len {
        return;
    }
    let r = id / len;
    let e = id % len;
    let g = cursor[0] + r;
    let b = probe_image(g, c, params.images);
    let k = g % c;
    var v = activations[b * len + e];
    if e % c == k {
        v = ablation_value(stats[b].x, k % ABLATION_CHUNK);
    }
    ablated[id] = v;
}
