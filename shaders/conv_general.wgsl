// 2-D convolution of any geometry (lib/conv_general.wgsl: non-square kernels such as 1×7 and
// 7×1, unequal strides, dilation, grouped convs such as ResNeXt's and RegNet's) with folded bias,
// optional residual and ReLU/ReLU6 epilogue, NHWC, four output channels per invocation (of one
// group: the output channels per group are a multiple of 4).
#import index
#import activation
#import conv_general

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, in_c]
@group(0) @binding(1) var<storage, read> input: array<f32>;
// [kernel_h, kernel_w, in_c / groups, out_c / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [out_c / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let co4 = params.out_c / 4u;
    if id >= params.batch * params.out_h * params.out_w * co4 {
        return;
    }
    let o4 = id % co4;
    let pixel = id / co4;
    let ox = pixel % params.out_w;
    let oy = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);
    let cig = params.in_c / params.groups;
    let cog = params.out_c / params.groups;
    let first_in = (o4 * 4u / cog) * cig;

    var acc = bias[o4];
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        // Unsigned wrap-around puts padded rows out of range.
        let iy = oy * params.stride_h + ky * params.dilation_h - params.pad_top;
        if iy >= params.in_h {
            continue;
        }
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let ix = ox * params.stride_w + kx * params.dilation_w - params.pad_left;
            if ix >= params.in_w {
                continue;
            }
            let at = ((n * params.in_h + iy) * params.in_w + ix) * params.in_c + first_in;
            let tap = (ky * params.kernel_w + kx) * cig;
            for (var i = 0u; i < cig; i++) {
                acc += input[at + i] * weight[(tap + i) * co4 + o4];
            }
        }
    }
    if params.has_residual == 2u {
        acc = acc + residual[id];
    }
    acc = activate(acc, params.activation);
    if params.has_residual == 1u {
        acc = acc + residual[id];
    }
    output[id] = acc;
}
