// Dense 2-D convolution (all input channels feed every output channel), NHWC, with folded bias,
// an activation (none, ReLU6 or ReLU) and an optional residual add after the activation
// (has_residual 1) or before it (has_residual 2: ResNet's add-then-ReLU). Used for stems (three
// input channels make a matrix kernel a poor fit) and for ResNet's and VGG's k×k convs. Padding is
// given explicitly: pad_top/pad_left here, the remainder (bottom/right) is implied by the output
// size, so symmetric and TF "SAME" padding are both expressed.
//
// Three paths. KERNEL = 0 and TILED = 0 (the default pipeline) takes any kernel size, stride and
// channel count from the parameters, one output pixel and four channels per invocation. TILED = 1
// does the same as a register tile (an implicit matrix product over NHWC): OX adjacent output
// pixels × TCO vec4s of output channels per invocation, each input value loaded once for TCO
// vec4s of channels and each weight once for OX pixels. The pipeline specialized for the stem
// (KERNEL 3, STRIDE 2, IN_C 3) computes OX adjacent output pixels per invocation with every input
// value and weight loaded once into registers.
//
// Kept in sync with src/gpu/params.rs (`ConvParams`).
#import index
#import activation

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
    // 0: none, 1: ReLU6, 2: ReLU
    activation: u32,
    // 0: no residual; 1: add `residual` after the activation, 2: before it
    has_residual: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, in_c]
@group(0) @binding(1) var<storage, read> input: array<f32>;
// [kernel, kernel, in_c, out_c / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [out_c / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]; bound to any buffer when has_residual is 0
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// 0: generic path; otherwise the kernel size, stride and input channels this pipeline is for.
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;
override IN_C: u32 = 3u;
// 1: the register-tiled generic path.
override TILED: u32 = 0u;
// vec4s of output channels per invocation on the tiled path (src/pipeline/forward.rs TILE_CO4).
const TCO: u32 = 2u;
// Output pixels per invocation on the specialized path (src/pipeline/forward.rs BLOCK_OX).
const OX: u32 = 4u;
// Input values one row of OX outputs needs at most: ((OX - 1) * 2 + 3) * 3.
const MAX_ROW: u32 = 27u;

// The epilogue: activation and residual add in the order `has_residual` gives.
fn finish(acc: vec4<f32>, at: u32) -> vec4<f32> {
    var v = acc;
    if params.has_residual == 2u {
        v += residual[at];
    }
    v = activate(v, params.activation);
    if params.has_residual == 1u {
        v += residual[at];
    }
    return v;
}

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
