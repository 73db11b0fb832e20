// 2-D convolution of any geometry (lib/conv_general.wgsl: non-square kernels such as 1×7 and
// 7×1, unequal strides, dilation, grouped convs such as ResNeXt's and RegNet's) with folded bias,
// optional residual and ReLU/ReLU6 epilogue, NHWC. Each invocation computes four output channels
// of one group at TILE consecutive output columns, reading the input four channels at a time:
// every weight load serves TILE pixels and every input load four output channels (on lavapipe
// loads, not multiply-adds, set the time). The channels per group are multiples of 4.
#import index
#import activation
#import conv_general

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, in_c / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [kernel_h, kernel_w, in_c / groups, out_c / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [out_c / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// Output columns per invocation (src/gpu/kernels.rs `CONV_GENERAL_TILE`).
const TILE: u32 = 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let co4 = params.out_c / 4u;
    let tiles = (params.out_w + TILE - 1u) / TILE;
    if id >= params.batch * params.out_h * tiles * co4 {
        return;
    }
    let o4 = id % co4;
    let cell = id / co4;
    let ox0 = (cell % tiles) * TILE;
    let oy = (cell / tiles) % params.out_h;
    let n = cell / (tiles * params.out_h);
    let cig = params.in_c / params.groups;
    let cog = params.out_c / params.groups;
    let ci4 = params.in_c / 4u;
    let first_in4 = (o4 * 4u / cog) * cig / 4u;

    // TILE = 4 columns, unrolled: a dynamically indexed array would live in memory.
    var acc0 = bias[o4];
    var acc1 = acc0;
    var acc2 = acc0;
    var acc3 = acc0;
    let zero = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        // Unsigned wrap-around puts padded rows out of range.
        let iy = oy * params.stride_h + ky * params.dilation_h - params.pad_top;
        if iy >= params.in_h {
            continue;
        }
        let row = (n * params.in_h + iy) * params.in_w;
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let tap = (ky * params.kernel_w + kx) * cig;
            let ix0 = ox0 * params.stride_w + kx * params.dilation_w - params.pad_left;
            let ix1 = ix0 + params.stride_w;
            let ix2 = ix1 + params.stride_w;
            let ix3 = ix2 + params.stride_w;
            let in0 = ix0 < params.in_w;
            let in1 = ix1 < params.in_w && ox0 + 1u < params.out_w;
            let in2 = ix2 < params.in_w && ox0 + 2u < params.out_w;
            let in3 = ix3 < params.in_w && ox0 + 3u < params.out_w;
            // Out-of-range columns read column 0 and are dropped.
            let a0 = (row + select(0u, ix0, in0)) * ci4 + first_in4;
            let a1 = (row + select(0u, ix1, in1)) * ci4 + first_in4;
            let a2 = (row + select(0u, ix2, in2)) * ci4 + first_in4;
            let a3 = (row + select(0u, ix3, in3)) * ci4 + first_in4;
            for (var i4 = 0u; i4 < cig / 4u; i4++) {
                let w = (tap + i4 * 4u) * co4 + o4;
                let w0 = weight[w];
                let w1 = weight[w + co4];
                let w2 = weight[w + 2u * co4];
                let w3 = weight[w + 3u * co4];
                let x0 = select(zero, input[a0 + i4], in0);
                let x1 = select(zero, input[a1 + i4], in1);
                let x2 = select(zero, input[a2 + i4], in2);
                let x3 = select(zero, input[a3 + i4], in3);
                acc0 += x0.x * w0 + x0.y * w1 + x0.z * w2 + x0.w * w3;
                acc1 += x1.x * w0 + x1.y * w1 + x1.z * w2 + x1.w * w3;
                acc2 += x2.x * w0 + x2.y * w1 + x2.z * w2 + x2.w * w3;
                acc3 += x3.x * w0 + x3.y * w1 + x3.z * w2 + x3.w * w3;
            }
        }
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var t = 0u; t < TILE; t++) {
        let ox = ox0 + t;
        if ox >= params.out_w {
            break;
        }
        let at = ((n * params.out_h + oy) * params.out_w + ox) * co4 + o4;
        var v = acc[t];
        if params.has_residual == 2u {
            v = v + residual[at];
        }
        v = activate(v, params.activation);
        if params.has_residual == 1u {
            v = v + residual[at];
        }
        output[at] = v;
    }
}
