// Gradient of a depthwise convolution with respect to its input, NHWC, four channels per
// invocation: every input pixel gathers the output pixels whose window covered it,
//   grad_in[iy, ix, c] = sum_{ky, kx} g[oy, ox, c] * weight[ky, kx, c]
//   with oy * stride + ky - pad_top = iy (and likewise for x), (+ extra[iy, ix, c])
// where g is the output gradient masked by the derivative of the conv's activation (ReLU6 or
// ReLU) at the forward output. Stride 2 and the asymmetric TF "SAME" padding follow from the same relation.
//
// Kept in sync with src/gpu/params.rs (`DepthwiseGradParams`).
#import index
#import activation
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
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
            let g = activation_mask(grad_out[o], forward_out[o], params.mask);
            acc += g * weight[(ky * params.kernel + kx) * c4 + c];
        }
    }
    if params.add_extra == 1u {
        acc += extra[id];
    }
    grad_in[id] = acc;
}
