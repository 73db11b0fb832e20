// Dense 2-D convolution (all input channels feed every output channel), NHWC, with folded bias,
// an activation (none, ReLU6 or ReLU) and an optional residual add after the activation
// (has_residual 1) or before it (has_residual 2: ResNet's add-then-ReLU). Used for stems (three
// input channels make a matrix kernel a poor fit) and for ResNet's and VGG's k×k convs. Padding is
// given explicitly: pad_top/pad_left here, the remainder (bottom/right) is implied by the output
// size, so symmetric and TF "SAME" padding are both expressed.
//
// Four paths in `main`. KERNEL = 0 and TILED = 0 (the default pipeline) takes any kernel size, stride and
// channel count from the parameters, one output pixel and four channels per invocation. TILED = 1
// does the same as a register tile (an implicit matrix product over NHWC): OX adjacent output
// pixels × TCO vec4s of output channels per invocation, each input value loaded once for TCO
// vec4s of channels and each weight once for OX pixels. The pipeline specialized for the stem
// (KERNEL 3, STRIDE 2, IN_C 3) computes OX adjacent output pixels per invocation with every input
// value and weight loaded once into registers. GEMM = 1, for GPUs, is the implicit matrix product
// [pixels, k·k·in_c] × [k·k·in_c, out_c] tiled through workgroup memory: a workgroup of 64
// invocations computes 64 pixels × 64 output channels, each invocation 8 pixels × 2 vec4s of
// channels, and every step stages 16 columns of the input patches and 16 rows of the weights,
// each loaded once per workgroup instead of once per invocation. On devices with 8-lane
// subgroups, `main_subgroups` (at the end) runs the subgroup stems and the subgroup tile.
//
// Its Params (shaders/lib/conv_params.wgsl) are kept in sync with src/gpu/params.rs
// (`ConvParams`).
#import index
#import activation
#import conv_params

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, in_c]
@group(0) @binding(1) var<storage, read> input: array<f32>;
// The same buffer as `input`, read as vec4s (4 channels of a pixel) by the subgroup tile, whose
// convs have a multiple of 4 input channels.
@group(0) @binding(2) var<storage, read> input4: array<vec4<f32>>;
// [kernel, kernel, in_c, out_c / 4]
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
// [out_c / 4]
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]; bound to any buffer when has_residual is 0
@group(0) @binding(5) var<storage, read> residual: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(6) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// 0: generic path; otherwise the kernel size, stride and input channels this pipeline is for.
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;
override IN_C: u32 = 3u;
// 1: the register-tiled generic path.
override TILED: u32 = 0u;
// 1: the workgroup-tiled path (src/gpu/kernels.rs CONV2D_GEMM); needs WORKGROUP_SIZE 64.
override GEMM: u32 = 0u;
// Its tile: pixels, vec4s of output channels (src/gpu/kernels.rs GEMM_TILE), and reduction
// columns per step.
const GM: u32 = 64u;
const GN4: u32 = 16u;
const GK: u32 = 16u;
// Row stride of the staged patches: one more than GM, so that the 16 invocations storing one
// pixel's 16 columns write 16 different banks.
const GMP: u32 = 65u;
var<workgroup> tile_a: array<f32, 1040>; // [GK, GMP]
var<workgroup> tile_b: array<vec4<f32>, 256>; // [GK, GN4]
// vec4s of output channels per invocation on the tiled path (src/pipeline/forward.rs TILE_CO4).
const TCO: u32 = 2u;
// Output pixels per invocation on the specialized path (src/pipeline/forward.rs BLOCK_OX).
const OX: u32 = 4u;
// Input values one row of OX outputs needs at most: ((OX - 1) * 2 + 3) * 3.
const MAX_ROW: u32 = 27u;

fn blocked(id: u32) {
    let c4 = params.out_c / 4u;
    let blocks = (params.out_w + OX - 1u) / OX;
    if id >= params.batch * params.out_h * blocks * c4 {
        return;
    }
    let co = id % c4;
    let t = id / c4;
    let ox0 = (t % blocks) * OX;
    let oy = (t / blocks) % params.out_h;
    let n = t / (blocks * params.out_h);
    let ix0 = i32(ox0 * STRIDE) - i32(params.pad_left);
    let last_x = i32(params.in_w) - 1;
    let b = bias[co];
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
        var vals: array<f32, MAX_ROW>;
        for (var j = 0u; j < (OX - 1u) * STRIDE + KERNEL; j++) {
            let ix = ix0 + i32(j);
            let inside = ix >= 0 && ix <= last_x;
            let src = (row + u32(clamp(ix, 0, last_x))) * IN_C;
            for (var ci = 0u; ci < IN_C; ci++) {
                vals[j * IN_C + ci] = select(0.0, input[src + ci], inside);
            }
        }
        for (var kx = 0u; kx < KERNEL; kx++) {
            for (var ci = 0u; ci < IN_C; ci++) {
                let w = weight[((ky * KERNEL + kx) * IN_C + ci) * c4 + co];
                for (var t = 0u; t < OX; t++) {
                    acc[t] += vals[(t * STRIDE + kx) * IN_C + ci] * w;
                }
            }
        }
    }
    let out_row = (n * params.out_h + oy) * params.out_w;
    for (var t = 0u; t < OX; t++) {
        if ox0 + t < params.out_w {
            let at = (out_row + ox0 + t) * c4 + co;
            output[at] = finish(acc[t], at);
        }
    }
}

fn tiled(id: u32) {
    let c4 = params.out_c / 4u;
    let cblocks = (c4 + TCO - 1u) / TCO;
    let blocks = (params.out_w + OX - 1u) / OX;
    if id >= params.batch * params.out_h * blocks * cblocks {
        return;
    }
    let cb = id % cblocks;
    let t = id / cblocks;
    let ox0 = (t % blocks) * OX;
    let oy = (t / blocks) % params.out_h;
    let n = t / (blocks * params.out_h);
    let co0 = cb * TCO;
    // The second group exists unless c4 is odd and this is the last block.
    let has1 = co0 + 1u < c4;
    let co1 = select(co0, co0 + 1u, has1);
    var acc0: array<vec4<f32>, OX>;
    var acc1: array<vec4<f32>, OX>;
    for (var t = 0u; t < OX; t++) {
        acc0[t] = bias[co0];
        acc1[t] = bias[co1];
    }
    let last_x = i32(params.in_w) - 1;
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = i32(oy * params.stride + ky) - i32(params.pad_top);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        let row = (n * params.in_h + u32(iy)) * params.in_w;
        for (var kx = 0u; kx < params.kernel; kx++) {
            var src: array<u32, OX>;
            var inside: array<bool, OX>;
            for (var t = 0u; t < OX; t++) {
                let ix = i32((ox0 + t) * params.stride + kx) - i32(params.pad_left);
                inside[t] = ix >= 0 && ix <= last_x;
                src[t] = (row + u32(clamp(ix, 0, last_x))) * params.in_c;
            }
            let w = (ky * params.kernel + kx) * params.in_c;
            for (var ci = 0u; ci < params.in_c; ci++) {
                let w0 = weight[(w + ci) * c4 + co0];
                let w1 = weight[(w + ci) * c4 + co1];
                for (var t = 0u; t < OX; t++) {
                    let v = select(0.0, input[src[t] + ci], inside[t]);
                    acc0[t] += v * w0;
                    acc1[t] += v * w1;
                }
            }
        }
    }
    let out_row = (n * params.out_h + oy) * params.out_w;
    for (var t = 0u; t < OX; t++) {
        if ox0 + t < params.out_w {
            let at = (out_row + ox0 + t) * c4;
            output[at + co0] = finish(acc0[t], at + co0);
            if has1 {
                output[at + co1] = finish(acc1[t], at + co1);
            }
        }
    }
}

fn gemm(group: u32, lid: u32) {
    let c4 = params.out_c / 4u;
    let pixels = params.batch * params.out_h * params.out_w;
    let ntiles = (c4 + GN4 - 1u) / GN4;
    // Uniform per workgroup, so every invocation reaches the barriers or none does.
    if group >= ((pixels + GM - 1u) / GM) * ntiles {
        return;
    }
    // Neighbouring workgroups share their patches (the same pixels, other channels).
    let m0 = (group / ntiles) * GM;
    let n0 = (group % ntiles) * GN4;
    let kdim = params.kernel * params.kernel * params.in_c;
    // What this invocation stages: column lid % GK of the patches of pixels lid / GK + 4 r.
    let col = lid % GK;
    var base: array<u32, 16>;
    var y0: array<i32, 16>;
    var x0: array<i32, 16>;
    for (var r = 0u; r < 16u; r++) {
        let m = m0 + lid / GK + 4u * r;
        let ox = m % params.out_w;
        let oy = (m / params.out_w) % params.out_h;
        let n = m / (params.out_w * params.out_h);
        base[r] = n * params.in_h;
        // A pixel past the end reads nothing (its row is never written).
        y0[r] = select(-1000000, i32(oy * params.stride) - i32(params.pad_top), m < pixels);
        x0[r] = i32(ox * params.stride) - i32(params.pad_left);
    }
    // What this invocation computes: pixels ty + 8 i, channel vec4s tx and tx + 8.
    let tx = lid % 8u;
    let ty = lid / 8u;
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < kdim; k0 += GK) {
        let k = k0 + col;
        let ci = k % params.in_c;
        let kx = (k / params.in_c) % params.kernel;
        let ky = k / (params.in_c * params.kernel);
        for (var r = 0u; r < 16u; r++) {
            let iy = y0[r] + i32(ky);
            let ix = x0[r] + i32(kx);
            var v = 0.0;
            if k < kdim && iy >= 0 && iy < i32(params.in_h) && ix >= 0 && ix < i32(params.in_w) {
                v = input[((base[r] + u32(iy)) * params.in_w + u32(ix)) * params.in_c + ci];
            }
            tile_a[col * GMP + lid / GK + 4u * r] = v;
        }
        for (var r = 0u; r < 4u; r++) {
            let e = lid + 64u * r;
            let kb = k0 + e / GN4;
            let co = n0 + e % GN4;
            var w = vec4<f32>(0.0);
            if kb < kdim && co < c4 {
                w = weight[kb * c4 + co];
            }
            tile_b[e] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GK; kk++) {
            let b0 = tile_b[kk * GN4 + tx];
            let b1 = tile_b[kk * GN4 + tx + 8u];
            for (var i = 0u; i < 8u; i++) {
                let a = tile_a[kk * GMP + ty + 8u * i];
                acc[2u * i] = fma(vec4<f32>(a), b0, acc[2u * i]);
                acc[2u * i + 1u] = fma(vec4<f32>(a), b1, acc[2u * i + 1u]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 8u; i++) {
        let m = m0 + ty + 8u * i;
        for (var j = 0u; j < 2u; j++) {
            let co = n0 + tx + 8u * j;
            if m < pixels && co < c4 {
                let at = m * c4 + co;
                output[at] = finish(acc[2u * i + j] + bias[co], at);
            }
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if GEMM != 0u {
        gemm(workgroup_index(wid, nwg), lid);
        return;
    }
    let id = invocation_index(gid, nwg);
    if KERNEL != 0u {
        blocked(id);
        return;
    }
    if TILED != 0u {
        tiled(id);
        return;
    }
    let c4 = params.out_c / 4u;
    if id >= params.batch * params.out_h * params.out_w * c4 {
        return;
    }
    let co = id % c4;
    let pixel = id / c4;
    let ox = pixel % params.out_w;
    let oy = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);

    var acc = bias[co];
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = i32(oy * params.stride + ky) - i32(params.pad_top);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = i32(ox * params.stride + kx) - i32(params.pad_left);
            if ix < 0 || ix >= i32(params.in_w) {
                continue;
            }
            let src = ((n * params.in_h + u32(iy)) * params.in_w + u32(ix)) * params.in_c;
            let w = ((ky * params.kernel + kx) * params.in_c) * c4 + co;
            for (var ci = 0u; ci < params.in_c; ci++) {
                acc += input[src + ci] * weight[w + ci * c4];
            }
        }
    }
    output[id] = finish(acc, id);
}

// The subgroup stems (src/gpu/kernels.rs `CONV2D_SUBGROUP_STEM`, `CONV2D_SUBGROUP_STEM7`) and
// the subgroup tile (`CONV2D_SUBGROUP_TILE`) for devices with 8-lane subgroups: only in the copy
// of this file build.rs writes for them, run from its own entry point; subgroups of 8
// consecutive invocations, lane = local index % 8, as in shaders/pointwise_conv.wgsl.
#subgroups
#generate subgroup_stem 3 8
#generate subgroup_stem 7 8

// The subgroup stem's kernel size: 3 (EfficientNet, MobileNet) or 7 (ResNet).
override STEM_KERNEL: u32 = 3u;

// 1: the subgroup tile for convs over a multiple of 4 input channels (src/gpu/kernels.rs
// CONV2D_SUBGROUP_TILE) instead of a subgroup stem.
override CONV_TILE: u32 = 0u;

// Input vec4 `index`: 4 consecutive channels of a pixel (the input's channels a multiple of 4).
fn load_a(index: u32) -> vec4<f32> {
    return input4[index];
}

fn load_w(index: u32) -> vec4<f32> {
    return weight[index];
}

// Input value `index` (the stems', over 3 channels).
fn load_x1(index: u32) -> f32 {
    return input[index];
}

// The pointwise conv's subgroup tile over the filter taps (build.rs `subgroup_tile`, conv mode):
// 8 lanes × 8 output pixels of the same 16 vec4s of output channels (src/gpu/kernels.rs
// CONV_SUBGROUP_TILE: 8 × 16 measured fastest on lavapipe for ResNet-50 and VGG-16 against
// 8 × 8, 16 × 8, 4 × 16, 8 × 12, 12 × 16 and 16 × 16), each step's weights loaded once per
// subgroup and shared by broadcast.
#generate subgroup_tile output params.out_c params.in_c bias 8 16 conv

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_subgroups(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    if CONV_TILE == 1u {
        conv_subgroup_tile_8x16(subgroup_index(wid, nwg, lid), lane);
    } else if STEM_KERNEL == 7u {
        subgroup_stem_k7(subgroup_index(wid, nwg, lid), lane);
    } else {
        subgroup_stem_k3(subgroup_index(wid, nwg, lid), lane);
    }
}
#end subgroups
