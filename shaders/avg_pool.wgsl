// Average pooling, NHWC, four channels per invocation: PyTorch's avg_pool2d in floor mode
// (kernel, stride, symmetric padding). The divisor is the window's size with
// `count_include_pad` (PyTorch's default), else its pixels inside the image. DenseNet's
// transitions: 2×2, stride 2.
//
// Kept in sync with src/gpu/params.rs (`AvgPoolParams`).
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
    count_include_pad: u32,
    // avg_pool_grad only: 1 to add `extra`.
    add_extra: u32,
    _pad0: u32,
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

    var sum = vec4<f32>(0.0);
    var inside = 0u;
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
            sum = sum + input[((n * params.in_h + u32(iy)) * params.in_w + u32(ix)) * c4 + c];
            inside++;
        }
    }
    let padded = window_padded_span(oy, params.kernel, params.stride, params.pad, params.in_h)
        * window_padded_span(ox, params.kernel, params.stride, params.pad, params.in_w);
    let divisor = select(inside, padded, params.count_include_pad == 1u);
    output[id] = sum / f32(divisor);
}
