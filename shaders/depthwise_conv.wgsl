// Depthwise 2-D convolution (one filter per channel) with folded bias and an optional ReLU6, NHWC,
// four channels per invocation. TF "SAME" padding is given as pad_top/pad_left, the remainder
// (bottom/right) is implied by the output size.
//
// Two paths in one kernel:
// - KERNEL = 0 (the default pipeline): any kernel size and stride from the parameters, one output
//   pixel per invocation.
// - KERNEL, STRIDE overridden (the specialized pipelines for 3x3 and 5x5 at strides 1 and 2): each
//   invocation computes OX horizontally adjacent output pixels, loading each input column of a
//   row once into registers and each weight once, so loads per output drop two to three times.
//   The constant loop bounds let the compiler unroll everything and keep `cols` in registers.
//
// Kept in sync with src/gpu/params.rs (`DepthwiseParams`).
#import index
#import activation

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
    // 0: none, 1: ReLU6, 2: ReLU
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
// 0: generic path; otherwise the kernel size this pipeline is specialized for.
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;
// Output pixels per invocation on the specialized path (src/pipeline/forward.rs BLOCK_OX).
const OX: u32 = 4u;
// Input columns one row of OX outputs needs at most: (OX - 1) * 2 + 5.
const MAX_COLS: u32 = 11u;

fn generic(id: u32) {
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
    output[id] = activate(acc, params.activation);
}

fn blocked(id: u32) {
    let c4 = params.channels / 4u;
    let blocks = (params.out_w + OX - 1u) / OX;
    if id >= params.batch * params.out_h * blocks * c4 {
        return;
    }
    let c = id % c4;
    let t = id / c4;
    let ox0 = (t % blocks) * OX;
    let oy = (t / blocks) % params.out_h;
    let n = t / (blocks * params.out_h);
    let ix0 = i32(ox0 * STRIDE) - i32(params.pad_left);
    let last_x = i32(params.in_w) - 1;

    let b = bias[c];
    var acc: array<vec4<f32>, OX>;
    for (var t = 0u; t < OX; t++) {
        acc[t] = b;
    }
    for (var ky = 0u; ky < KERNEL; ky++) {
        let iy = i32(oy * STRIDE + ky) - i32(params.pad_top);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        let row = (n * params.in_h + u32(iy)) * params.in_w;
        var cols: array<vec4<f32>, MAX_COLS>;
        for (var j = 0u; j < (OX - 1u) * STRIDE + KERNEL; j++) {
            let ix = ix0 + i32(j);
            // Padding reads as zero; the clamped index keeps the load in bounds.
            let v = input[(row + u32(clamp(ix, 0, last_x))) * c4 + c];
            cols[j] = select(vec4<f32>(0.0), v, ix >= 0 && ix <= last_x);
        }
        for (var kx = 0u; kx < KERNEL; kx++) {
            let w = weight[(ky * KERNEL + kx) * c4 + c];
            for (var t = 0u; t < OX; t++) {
                acc[t] += cols[t * STRIDE + kx] * w;
            }
        }
    }
    let out_row = (n * params.out_h + oy) * params.out_w;
    for (var t = 0u; t < OX; t++) {
        if ox0 + t < params.out_w {
            output[(out_row + ox0 + t) * c4 + c] = activate(acc[t], params.activation);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if KERNEL == 0u {
        generic(id);
    } else {
        blocked(id);
    }
}
