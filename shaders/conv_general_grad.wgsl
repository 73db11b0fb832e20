// The input gradient of conv_general.wgsl: grad_in[n, iy, ix, c] = Σ over the output channels o
// of c's group and the taps (ky, kx) that read (iy, ix) of mask(grad_out[n, oy, ox, o]) ·
// weight[o, c, ky, kx] (+ extra), the mask the activation's derivative at the forward output.
// NHWC; each invocation computes four input channels of one group at TILE consecutive input
// columns, reading the output gradient four channels at a time (the channels per group are
// multiples of 4): every weight load serves TILE pixels.
#import index
#import activation
#import conv_general

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]: the conv's output, whose activation's derivative masks
// grad_out.
@group(0) @binding(2) var<storage, read> forward_out: array<vec4<f32>>;
// [kernel_h, kernel_w, out_c, in_c / groups / 4] (src/pipeline/forward.rs `GpuModel::upload`).
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
// [batch, in_h, in_w, in_c / 4]
@group(0) @binding(4) var<storage, read> extra: array<vec4<f32>>;
// [batch, in_h, in_w, in_c / 4]
@group(0) @binding(5) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// Input columns per invocation (src/gpu/kernels.rs `CONV_GENERAL_TILE`).
const TILE: u32 = 4u;

// The output column whose window's tap `kx` reads input column `ix`, or out_w when none does.
fn source_column(ix: u32, kx: u32) -> u32 {
    let sx = i32(ix + params.pad_left) - i32(kx * params.dilation_w);
    if ix >= params.in_w || sx < 0 || sx % i32(params.stride_w) != 0 {
        return params.out_w;
    }
    return min(u32(sx) / params.stride_w, params.out_w);
}

// The masked output gradient at output column `ox` (of `row`'s pixels, four channels at `o4`),
// zero when `ox` is out of range.
fn masked(row: u32, ox: u32, o4: u32) -> vec4<f32> {
    if ox >= params.out_w {
        return vec4<f32>(0.0);
    }
    let at = (row + ox) * (params.out_c / 4u) + o4;
    return activation_mask(grad_out[at], forward_out[at], params.activation);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let ci4 = params.in_c / 4u;
    let tiles = (params.in_w + TILE - 1u) / TILE;
    if id >= params.batch * params.in_h * tiles * ci4 {
        return;
    }
    let c = (id % ci4) * 4u;
    let cell = id / ci4;
    let ix0 = (cell % tiles) * TILE;
    let iy = (cell / tiles) % params.in_h;
    let n = cell / (tiles * params.in_h);
    let cig = params.in_c / params.groups;
    let cog = params.out_c / params.groups;
    let group = c / cig;
    let i4 = (c % cig) / 4u;
    let cig4 = cig / 4u;

    // TILE = 4 columns, unrolled.
    var acc0 = vec4<f32>(0.0);
    var acc1 = acc0;
    var acc2 = acc0;
    var acc3 = acc0;
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        // oy · stride = iy + pad_top − ky · dilation, when that is a whole, in-range row.
        let sy = i32(iy + params.pad_top) - i32(ky * params.dilation_h);
        if sy < 0 || sy % i32(params.stride_h) != 0 {
            continue;
        }
        let oy = u32(sy) / params.stride_h;
        if oy >= params.out_h {
            continue;
        }
        let row = (n * params.out_h + oy) * params.out_w;
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let ox0 = source_column(ix0, kx);
            let ox1 = source_column(ix0 + 1u, kx);
            let ox2 = source_column(ix0 + 2u, kx);
            let ox3 = source_column(ix0 + 3u, kx);
            if min(min(ox0, ox1), min(ox2, ox3)) >= params.out_w {
                continue;
            }
            let tap = (ky * params.kernel_w + kx) * params.out_c;
            for (var k4 = 0u; k4 < cog / 4u; k4++) {
                let o = group * cog + k4 * 4u;
                let w = (tap + o) * cig4 + i4;
                let w0 = weight[w];
                let w1 = weight[w + cig4];
                let w2 = weight[w + 2u * cig4];
                let w3 = weight[w + 3u * cig4];
                let g0 = masked(row, ox0, o / 4u);
                let g1 = masked(row, ox1, o / 4u);
                let g2 = masked(row, ox2, o / 4u);
                let g3 = masked(row, ox3, o / 4u);
                acc0 += g0.x * w0 + g0.y * w1 + g0.z * w2 + g0.w * w3;
                acc1 += g1.x * w0 + g1.y * w1 + g1.z * w2 + g1.w * w3;
                acc2 += g2.x * w0 + g2.y * w1 + g2.z * w2 + g2.w * w3;
                acc3 += g3.x * w0 + g3.y * w1 + g3.z * w2 + g3.w * w3;
            }
        }
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var t = 0u; t < TILE; t++) {
        let ix = ix0 + t;
        if ix >= params.in_w {
            break;
        }
        let at = ((n * params.in_h + iy) * params.in_w + ix) * ci4 + c / 4u;
        var v = acc[t];
        if params.add_extra == 1u {
            v = v + extra[at];
        }
        grad_in[at] = v;
    }
}
