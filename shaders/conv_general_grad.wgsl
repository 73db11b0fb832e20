// The input gradient of conv_general.wgsl: grad_in[n, iy, ix, c] = Σ over the output channels o
// of c's group and the taps (ky, kx) that read (iy, ix) of mask(grad_out[n, oy, ox, o]) ·
// weight[o, c, ky, kx] (+ extra), the mask the activation's derivative at the forward output.
// NHWC; each invocation computes four input channels of one group, reading the output gradient
// four channels at a time (the channels per group are multiples of 4).
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let ci4 = params.in_c / 4u;
    if id >= params.batch * params.in_h * params.in_w * ci4 {
        return;
    }
    let c = (id % ci4) * 4u;
    let pixel = id / ci4;
    let ix = pixel % params.in_w;
    let iy = (pixel / params.in_w) % params.in_h;
    let n = pixel / (params.in_w * params.in_h);
    let cig = params.in_c / params.groups;
    let cog = params.out_c / params.groups;
    let group = c / cig;
    let i4 = (c % cig) / 4u;
    let cig4 = cig / 4u;
    let co4 = params.out_c / 4u;

    var acc = vec4<f32>(0.0);
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
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let sx = i32(ix + params.pad_left) - i32(kx * params.dilation_w);
            if sx < 0 || sx % i32(params.stride_w) != 0 {
                continue;
            }
            let ox = u32(sx) / params.stride_w;
            if ox >= params.out_w {
                continue;
            }
            let at = ((n * params.out_h + oy) * params.out_w + ox) * co4;
            let tap = (ky * params.kernel_w + kx) * params.out_c;
            for (var k4 = 0u; k4 < cog / 4u; k4++) {
                let o = group * cog + k4 * 4u;
                let g = activation_mask(grad_out[at + o / 4u], forward_out[at + o / 4u],
                    params.activation);
                let w = (tap + o) * cig4 + i4;
                acc += g.x * weight[w] + g.y * weight[w + cig4] + g.z * weight[w + 2u * cig4]
                    + g.w * weight[w + 3u * cig4];
            }
        }
    }
    if params.add_extra == 1u {
        acc = acc + extra[id];
    }
    grad_in[id] = acc;
}
