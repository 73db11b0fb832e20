// Gradient of a depthwise convolution with respect to its input, NHWC, four channels per
// invocation: every input pixel gathers the output pixels whose window covered it,
//   grad_in[iy, ix, c] = sum_{ky, kx} g[oy, ox, c] * weight[ky, kx, c]
//   with oy * stride + ky - pad_top = iy (and likewise for x), (+ extra[iy, ix, c])
// where g is the output gradient masked by the derivative of the conv's activation (ReLU6 or
// ReLU) at the forward output. Stride 2 and the asymmetric TF "SAME" padding follow from the same relation.
//
// Two paths, as in depthwise_conv.wgsl:
// - KERNEL = 0 (the default pipeline): any kernel size and stride from the parameters, one input
//   pixel per invocation, gathering its taps.
// - KERNEL, STRIDE overridden (the pipelines for 3x3 and 5x5 at strides 1 and 2,
//   src/gpu/kernels.rs DEPTHWISE_GRAD_VARIANTS): each invocation computes a block of input
//   pixels, loading and masking each output gradient the block needs once and each filter tap
//   once, where the gather loads and masks each output gradient once per tap covering it.
//
// Kept in sync with src/gpu/params.rs (`DepthwiseGradParams`).
#import index
#import conv_grad
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
    pad_top: u32,
    pad_left: u32,
    // 0: no mask; 1: ReLU6's derivative, 2: ReLU's derivative, at `forward_out`
    mask: u32,
    // 1: add `extra`
    add_extra: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(2) var<storage, read> forward_out: array<vec4<f32>>;
// [kernel, kernel, channels / 4]
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(4) var<storage, read> extra: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(5) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// 0: generic path; otherwise the kernel size this pipeline is specialized for.
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;

fn finish(v: vec4<f32>, index: u32) -> vec4<f32> {
    if params.add_extra == 1u {
        return v + extra[index];
    }
    return v;
}

fn generic(id: u32) {
    let c4 = params.channels / 4u;
    if id >= params.batch * params.in_h * params.in_w * c4 {
        return;
    }
    let c = id % c4;
    let pixel = id / c4;
    let ix = pixel % params.in_w;
    let iy = (pixel / params.in_w) % params.in_h;
    let n = pixel / (params.in_w * params.in_h);

    var acc = vec4<f32>(0.0);
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
            let o = ((n * params.out_h + oy) * params.out_w + ox) * c4 + c;
            acc += masked_grad(o) * weight[(ky * params.kernel + kx) * c4 + c];
        }
    }
    grad_in[id] = finish(acc, id);
}

// The specialized blocks, written out by build.rs (`depthwise_grad_block K S BX BY`); the block
// sizes are repeated in src/gpu/kernels.rs (`DEPTHWISE_GRAD_BLOCKS`), which sizes the dispatch.
#generate depthwise_grad_block 3 1 4 4
#generate depthwise_grad_block 3 2 4 4
#generate depthwise_grad_block 5 1 4 4
#generate depthwise_grad_block 5 2 4 4

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if KERNEL == 3u && STRIDE == 1u {
        grad_block_k3s1(id);
    } else if KERNEL == 3u && STRIDE == 2u {
        grad_block_k3s2(id);
    } else if KERNEL == 5u && STRIDE == 1u {
        grad_block_k5s1(id);
    } else if KERNEL == 5u && STRIDE == 2u {
        grad_block_k5s2(id);
    } else {
        generic(id);
    }
}
