// Depthwise 2-D convolution (one filter per channel) with folded bias and an optional ReLU6, NHWC,
// four channels per invocation. Any odd kernel size and stride; TF "SAME" padding is given as
// pad_top/pad_left, the remainder (bottom/right) is implied by the output size.
//
// Kept in sync with src/gpu/params.rs (`DepthwiseParams`).

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    channels: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    // 0: none, 1: ReLU6
    activation: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [kernel, kernel, channels / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [channels / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    let c4 = params.channels / 4u;
    if id >= params.batch * params.out_h * params.out_w * c4 {
        return;
    }
    let c = id % c4;
    let pixel = id / c4;
    let ox = pixel % params.out_w;
    let oy = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);

    var acc = bias[c];
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = i32(oy * params.stride + ky) - i32(params.pad_top);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        let row = (n * params.in_h + u32(iy)) * params.in_w;
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = i32(ox * params.stride + kx) - i32(params.pad_left);
            if ix < 0 || ix >= i32(params.in_w) {
                continue;
            }
            acc += input[(row + u32(ix)) * c4 + c] * weight[(ky * params.kernel + kx) * c4 + c];
        }
    }
    if params.activation == 1u {
        acc = clamp(acc, vec4<f32>(0.0), vec4<f32>(6.0));
    }
    output[id] = acc;
}
