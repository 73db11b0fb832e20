// Max pooling, NHWC, four channels per invocation: PyTorch's max_pool2d (kernel, stride,
// symmetric padding; padded positions never win). Torchvision's ResNet stem: 3×3, stride 2,
// padding 1.
//
// Kept in sync with src/gpu/params.rs (`MaxPoolParams`).
#import index
#import window

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    channels: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    pad: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.out_h * params.out_w * c4 {
        return;
    }
    let c = id % c4;
    let pixel = id / c4;
    let ox = pixel % params.out_w;
    let oy = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);

    // -inf, as PyTorch starts: a window of padding only cannot occur (pad < kernel).
    var best = vec4<f32>(bitcast<f32>(0xff800000u));
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = window_tap(oy, ky, params.stride, params.pad, params.in_h);
        if iy < 0 {
            continue;
        }
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = window_tap(ox, kx, params.stride, params.pad, params.in_w);
            if ix < 0 {
                continue;
            }
            best = max(best, input[((n * params.in_h + u32(iy)) * params.in_w + u32(ix)) * c4 + c]);
        }
    }
    output[id] = best;
}
