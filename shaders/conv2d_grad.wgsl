// Gradient of a dense 2-D convolution with respect to its input, NHWC, one input value per
// invocation: every input value gathers the output pixels whose window covered it,
//   grad_in[iy, ix, ci] = sum_{ky, kx, co} g[oy, ox, co] * weight[ky, kx, ci, co]
//   with oy * stride + ky - pad_top = iy (and likewise for x), (+ extra[iy, ix, ci])
// where g is the output gradient masked by the derivative of the conv's activation at its
// forward output: ReLU6 passes where 0 < y < 6 (PyTorch's hardtanh backward), ReLU where y > 0
// (threshold backward). Any kernel size, stride and padding (symmetric, or TF "SAME" with the
// extra row/column implied by the output size); any input channel count (the image's three
// included, for the gradient at the input); output channels a multiple of four.
//
// Two paths:
// - KERNEL = 0 (the default pipeline): any conv, one input value per invocation, gathering its
//   taps.
// - KERNEL, STRIDE overridden (src/gpu/kernels.rs CONV2D_GRAD_VARIANTS): a first conv over the
//   image's 3 channels (the stems of EfficientNet, MobileNet, ResNet and VGG), each invocation a
//   block of input pixels × 3 channels, loading and masking each output gradient the block needs
//   once per vec4 of channels and each weight once, where the gather loads and masks each
//   output gradient once per tap and input channel covering it.
//
// Kept in sync with src/gpu/params.rs (`ConvGradParams`).
#import index
#import conv_grad
#import window

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    // 0: no mask, 1: ReLU6's derivative, 2: ReLU's derivative, at `forward_out`
    mask: u32,
    // 1: add `extra`
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(2) var<storage, read> forward_out: array<vec4<f32>>;
// [kernel, kernel, in_c, out_c / 4]
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
// [batch, in_h, in_w, in_c]
@group(0) @binding(4) var<storage, read> extra: array<f32>;
// [batch, in_h, in_w, in_c]
@group(0) @binding(5) var<storage, read_write> grad_in: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;
// 0: generic path; otherwise the kernel size this pipeline is specialized for (3 input channels).
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;

fn finish(v: f32, index: u32) -> f32 {
    if params.add_extra == 1u {
        return v + extra[index];
    }
    return v;
}

fn generic(id: u32) {
    if id >= params.batch * params.in_h * params.in_w * params.in_c {
        return;
    }
    let co4 = params.out_c / 4u;
    let ci = id % params.in_c;
    let pixel = id / params.in_c;
    let ix = pixel % params.in_w;
    let iy = (pixel / params.in_w) % params.in_h;
    let n = pixel / (params.in_w * params.in_h);

    var acc = 0.0;
    for (var ky = 0u; ky < params.kernel; ky++) {
        let ty = window_covering(iy, ky, params.stride, params.pad_top, params.out_h);
        if ty < 0 {
            continue;
        }
        let oy = u32(ty);
        for (var kx = 0u; kx < params.kernel; kx++) {
            let tx = window_covering(ix, kx, params.stride, params.pad_left, params.out_w);
            if tx < 0 {
                continue;
            }
            let ox = u32(tx);
            let o = ((n * params.out_h + oy) * params.out_w + ox) * co4;
            let w = ((ky * params.kernel + kx) * params.in_c + ci) * co4;
            var sum = vec4<f32>(0.0);
            for (var c = 0u; c < co4; c++) {
                sum += masked_grad(o + c) * weight[w + c];
            }
            acc += sum.x + sum.y + sum.z + sum.w;
        }
    }
    grad_in[id] = finish(acc, id);
}

// The specialized blocks, written out by build.rs (`image_grad_block K S BX BY`); the block sizes
// are repeated in src/gpu/kernels.rs (`CONV2D_GRAD_BLOCKS`), which sizes the dispatch.
#generate image_grad_block 3 2 4 4
#generate image_grad_block 7 2 4 4
#generate image_grad_block 3 1 4 4

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if KERNEL == 3u && STRIDE == 2u {
        image_grad_block_k3s2(id);
    } else if KERNEL == 7u && STRIDE == 2u {
        image_grad_block_k7s2(id);
    } else if KERNEL == 3u && STRIDE == 1u {
        image_grad_block_k3s1(id);
    } else {
        generic(id);
    }
}
