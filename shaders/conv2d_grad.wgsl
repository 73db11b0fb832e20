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
// Kept in sync with src/gpu/params.rs (`ConvGradParams`).
#import index
#import activation
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
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
                sum += activation_mask(grad_out[o + c], forward_out[o + c], params.mask) * weight[w + c];
            }
            acc += sum.x + sum.y + sum.z + sum.w;
        }
    }
    if params.add_extra == 1u {
        acc += extra[id];
    }
    grad_in[id] = acc;
}
