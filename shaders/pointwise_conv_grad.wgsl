// Gradient of a pointwise (1x1) convolution with respect to its input, as a matrix product:
//   grad_in[r, i] = sum_o g[r, o] * weight[o, i]  (+ extra[r, i])
// where g is the gradient at the conv's output, masked by ReLU6's derivative when the conv has a
// ReLU6 (zero where the forward output is 0 or 6: where PyTorch's hardtanh backward is zero),
// and `extra` is a second gradient flowing into the same tensor (an MBConv skip connection).
// The weight is the folded conv weight in PyTorch's [out, in] layout, which is exactly the
// [K, N] operand this product needs. Generated with pointwise_conv.wgsl by
// tools/make_pointwise_shaders.py: the same written-out ROWS x COLS register tile as
// pointwise_conv.wgsl, tuned by the same override constants.
//
// Kept in sync with src/gpu/params.rs (`PointwiseGradParams`).

struct Params {
    rows: u32,
    // Channels of the conv's input: the columns produced here.
    in_channels: u32,
    // Channels of the conv's output: the reduction.
    out_channels: u32,
    // 0: no mask; 1: ReLU6's derivative, 2: ReLU's derivative, at `forward_out`
    mask: u32,
    // 1: add `extra`
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, out_channels / 4]: gradient at the conv's output
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [rows, out_channels / 4]: the conv's forward output (for the mask)
@group(0) @binding(2) var<storage, read> forward_out: array<vec4<f32>>;
// [out_channels, in_channels / 4]
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
// [rows, in_channels / 4]
@group(0) @binding(4) var<storage, read> extra: array<vec4<f32>>;
// [rows, in_channels / 4]
@group(0) @binding(5) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
override ROWS: u32 = 16u;
override COLS: u32 = 3u;

fn load_a(index: u32) -> vec4<f32> {
    let g = grad_out[index];
    if params.mask == 0u {
        return g;
    }
    let y = forward_out[index];
    if params.mask == 2u {
        return select(vec4<f32>(0.0), g, y > vec4<f32>(0.0));
    }
    return select(vec4<f32>(0.0), g, (y > vec4<f32>(0.0)) & (y < vec4<f32>(6.0)));
}

fn finish(v: vec4<f32>, index: u32) -> vec4<f32> {
    if params.add_extra == 1u {
        return v + extra[index];
    }
    return v;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    let c4 = params.in_channels / 4u;
    let k4 = params.out_channels / 4u;
    let col_tiles = (c4 + COLS - 1u) / COLS;
    let row_tiles = (params.rows + ROWS - 1u) / ROWS;
    if id >= row_tiles * col_tiles {
        return;
    }
    let col = (id % col_tiles) * COLS;
    let row0 = (id / col_tiles) * ROWS;
    let last_row = params.rows - 1u;
    let last_col = c4 - 1u;
    // Columns past the end compute a copy of the last one and are not stored.
    let c0 = min(col + 0u, last_col);
    let c1 = min(col + 1u, last_col);
    let c2 = min(col + 2u, last_col);
    let s0 = min(row0 + 0u, last_row) * k4;
    let s1 = min(row0 + 1u, last_row) * k4;
    let s2 = min(row0 + 2u, last_row) * k4;
    let s3 = min(row0 + 3u, last_row) * k4;
    let s4 = min(row0 + 4u, last_row) * k4;
    let s5 = min(row0 + 5u, last_row) * k4;
    let s6 = min(row0 + 6u, last_row) * k4;
    let s7 = min(row0 + 7u, last_row) * k4;
    let s8 = min(row0 + 8u, last_row) * k4;
    let s9 = min(row0 + 9u, last_row) * k4;
    let s10 = min(row0 + 10u, last_row) * k4;
    let s11 = min(row0 + 11u, last_row) * k4;
    let s12 = min(row0 + 12u, last_row) * k4;
    let s13 = min(row0 + 13u, last_row) * k4;
    let s14 = min(row0 + 14u, last_row) * k4;
    let s15 = min(row0 + 15u, last_row) * k4;
    var a0_0 = vec4<f32>(0.0);
    var a0_1 = vec4<f32>(0.0);
    var a0_2 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0);
    var a1_1 = vec4<f32>(0.0);
    var a1_2 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0);
    var a2_1 = vec4<f32>(0.0);
    var a2_2 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0);
    var a3_1 = vec4<f32>(0.0);
    var a3_2 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0);
    var a4_1 = vec4<f32>(0.0);
    var a4_2 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0);
    var a5_1 = vec4<f32>(0.0);
    var a5_2 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0);
    var a6_1 = vec4<f32>(0.0);
    var a6_2 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0);
    var a7_1 = vec4<f32>(0.0);
    var a7_2 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0);
    var a8_1 = vec4<f32>(0.0);
    var a8_2 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0);
    var a9_1 = vec4<f32>(0.0);
    var a9_2 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0);
    var a10_1 = vec4<f32>(0.0);
    var a10_2 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0);
    var a11_1 = vec4<f32>(0.0);
    var a11_2 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0);
    var a12_1 = vec4<f32>(0.0);
    var a12_2 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0);
    var a13_1 = vec4<f32>(0.0);
    var a13_2 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0);
    var a14_1 = vec4<f32>(0.0);
    var a14_2 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0);
    var a15_1 = vec4<f32>(0.0);
    var a15_2 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let w = k * 4u * c4;
        let w0_0 = weight[w + c0];
        let w1_0 = weight[w + c4 + c0];
        let w2_0 = weight[w + 2u * c4 + c0];
        let w3_0 = weight[w + 3u * c4 + c0];
        let w0_1 = weight[w + c1];
        let w1_1 = weight[w + c4 + c1];
        let w2_1 = weight[w + 2u * c4 + c1];
        let w3_1 = weight[w + 3u * c4 + c1];
        let w0_2 = weight[w + c2];
        let w1_2 = weight[w + c4 + c2];
        let w2_2 = weight[w + 2u * c4 + c2];
        let w3_2 = weight[w + 3u * c4 + c2];
        let x0 = load_a(s0 + k);
        a0_0 += x0.x * w0_0 + x0.y * w1_0 + x0.z * w2_0 + x0.w * w3_0;
        if COLS > 1u {
            a0_1 += x0.x * w0_1 + x0.y * w1_1 + x0.z * w2_1 + x0.w * w3_1;
        }
        if COLS > 2u {
            a0_2 += x0.x * w0_2 + x0.y * w1_2 + x0.z * w2_2 + x0.w * w3_2;
        }
        if ROWS > 1u {
            let x1 = load_a(s1 + k);
            a1_0 += x1.x * w0_0 + x1.y * w1_0 + x1.z * w2_0 + x1.w * w3_0;
            if COLS > 1u {
                a1_1 += x1.x * w0_1 + x1.y * w1_1 + x1.z * w2_1 + x1.w * w3_1;
            }
            if COLS > 2u {
                a1_2 += x1.x * w0_2 + x1.y * w1_2 + x1.z * w2_2 + x1.w * w3_2;
            }
        }
        if ROWS > 2u {
            let x2 = load_a(s2 + k);
            a2_0 += x2.x * w0_0 + x2.y * w1_0 + x2.z * w2_0 + x2.w * w3_0;
            if COLS > 1u {
                a2_1 += x2.x * w0_1 + x2.y * w1_1 + x2.z * w2_1 + x2.w * w3_1;
            }
            if COLS > 2u {
                a2_2 += x2.x * w0_2 + x2.y * w1_2 + x2.z * w2_2 + x2.w * w3_2;
            }
        }
        if ROWS > 3u {
            let x3 = load_a(s3 + k);
            a3_0 += x3.x * w0_0 + x3.y * w1_0 + x3.z * w2_0 + x3.w * w3_0;
            if COLS > 1u {
                a3_1 += x3.x * w0_1 + x3.y * w1_1 + x3.z * w2_1 + x3.w * w3_1;
            }
            if COLS > 2u {
                a3_2 += x3.x * w0_2 + x3.y * w1_2 + x3.z * w2_2 + x3.w * w3_2;
            }
        }
        if ROWS > 4u {
            let x4 = load_a(s4 + k);
            a4_0 += x4.x * w0_0 + x4.y * w1_0 + x4.z * w2_0 + x4.w * w3_0;
            if COLS > 1u {
                a4_1 += x4.x * w0_1 + x4.y * w1_1 + x4.z * w2_1 + x4.w * w3_1;
            }
            if COLS > 2u {
                a4_2 += x4.x * w0_2 + x4.y * w1_2 + x4.z * w2_2 + x4.w * w3_2;
            }
        }
        if ROWS > 5u {
            let x5 = load_a(s5 + k);
            a5_0 += x5.x * w0_0 + x5.y * w1_0 + x5.z * w2_0 + x5.w * w3_0;
            if COLS > 1u {
                a5_1 += x5.x * w0_1 + x5.y * w1_1 + x5.z * w2_1 + x5.w * w3_1;
            }
            if COLS > 2u {
                a5_2 += x5.x * w0_2 + x5.y * w1_2 + x5.z * w2_2 + x5.w * w3_2;
            }
        }
        if ROWS > 6u {
            let x6 = load_a(s6 + k);
            a6_0 += x6.x * w0_0 + x6.y * w1_0 + x6.z * w2_0 + x6.w * w3_0;
            if COLS > 1u {
                a6_1 += x6.x * w0_1 + x6.y * w1_1 + x6.z * w2_1 + x6.w * w3_1;
            }
            if COLS > 2u {
                a6_2 += x6.x * w0_2 + x6.y * w1_2 + x6.z * w2_2 + x6.w * w3_2;
            }
        }
        if ROWS > 7u {
            let x7 = load_a(s7 + k);
            a7_0 += x7.x * w0_0 + x7.y * w1_0 + x7.z * w2_0 + x7.w * w3_0;
            if COLS > 1u {
                a7_1 += x7.x * w0_1 + x7.y * w1_1 + x7.z * w2_1 + x7.w * w3_1;
            }
            if COLS > 2u {
                a7_2 += x7.x * w0_2 + x7.y * w1_2 + x7.z * w2_2 + x7.w * w3_2;
            }
        }
        if ROWS > 8u {
            let x8 = load_a(s8 + k);
            a8_0 += x8.x * w0_0 + x8.y * w1_0 + x8.z * w2_0 + x8.w * w3_0;
            if COLS > 1u {
                a8_1 += x8.x * w0_1 + x8.y * w1_1 + x8.z * w2_1 + x8.w * w3_1;
            }
            if COLS > 2u {
                a8_2 += x8.x * w0_2 + x8.y * w1_2 + x8.z * w2_2 + x8.w * w3_2;
            }
        }
        if ROWS > 9u {
            let x9 = load_a(s9 + k);
            a9_0 += x9.x * w0_0 + x9.y * w1_0 + x9.z * w2_0 + x9.w * w3_0;
            if COLS > 1u {
                a9_1 += x9.x * w0_1 + x9.y * w1_1 + x9.z * w2_1 + x9.w * w3_1;
            }
            if COLS > 2u {
                a9_2 += x9.x * w0_2 + x9.y * w1_2 + x9.z * w2_2 + x9.w * w3_2;
            }
        }
        if ROWS > 10u {
            let x10 = load_a(s10 + k);
            a10_0 += x10.x * w0_0 + x10.y * w1_0 + x10.z * w2_0 + x10.w * w3_0;
            if COLS > 1u {
                a10_1 += x10.x * w0_1 + x10.y * w1_1 + x10.z * w2_1 + x10.w * w3_1;
            }
            if COLS > 2u {
                a10_2 += x10.x * w0_2 + x10.y * w1_2 + x10.z * w2_2 + x10.w * w3_2;
            }
        }
        if ROWS > 11u {
            let x11 = load_a(s11 + k);
            a11_0 += x11.x * w0_0 + x11.y * w1_0 + x11.z * w2_0 + x11.w * w3_0;
            if COLS > 1u {
                a11_1 += x11.x * w0_1 + x11.y * w1_1 + x11.z * w2_1 + x11.w * w3_1;
            }
            if COLS > 2u {
                a11_2 += x11.x * w0_2 + x11.y * w1_2 + x11.z * w2_2 + x11.w * w3_2;
            }
        }
        if ROWS > 12u {
            let x12 = load_a(s12 + k);
            a12_0 += x12.x * w0_0 + x12.y * w1_0 + x12.z * w2_0 + x12.w * w3_0;
            if COLS > 1u {
                a12_1 += x12.x * w0_1 + x12.y * w1_1 + x12.z * w2_1 + x12.w * w3_1;
            }
            if COLS > 2u {
                a12_2 += x12.x * w0_2 + x12.y * w1_2 + x12.z * w2_2 + x12.w * w3_2;
            }
        }
        if ROWS > 13u {
            let x13 = load_a(s13 + k);
            a13_0 += x13.x * w0_0 + x13.y * w1_0 + x13.z * w2_0 + x13.w * w3_0;
            if COLS > 1u {
                a13_1 += x13.x * w0_1 + x13.y * w1_1 + x13.z * w2_1 + x13.w * w3_1;
            }
            if COLS > 2u {
                a13_2 += x13.x * w0_2 + x13.y * w1_2 + x13.z * w2_2 + x13.w * w3_2;
            }
        }
        if ROWS > 14u {
            let x14 = load_a(s14 + k);
            a14_0 += x14.x * w0_0 + x14.y * w1_0 + x14.z * w2_0 + x14.w * w3_0;
            if COLS > 1u {
                a14_1 += x14.x * w0_1 + x14.y * w1_1 + x14.z * w2_1 + x14.w * w3_1;
            }
            if COLS > 2u {
                a14_2 += x14.x * w0_2 + x14.y * w1_2 + x14.z * w2_2 + x14.w * w3_2;
            }
        }
        if ROWS > 15u {
            let x15 = load_a(s15 + k);
            a15_0 += x15.x * w0_0 + x15.y * w1_0 + x15.z * w2_0 + x15.w * w3_0;
            if COLS > 1u {
                a15_1 += x15.x * w0_1 + x15.y * w1_1 + x15.z * w2_1 + x15.w * w3_1;
            }
            if COLS > 2u {
                a15_2 += x15.x * w0_2 + x15.y * w1_2 + x15.z * w2_2 + x15.w * w3_2;
            }
        }
    }

    if ROWS > 0u && row0 + 0u < params.rows {
        let o = (row0 + 0u) * c4;
        grad_in[o + c0] = finish(a0_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a0_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a0_2, o + c2);
        }
    }
    if ROWS > 1u && row0 + 1u < params.rows {
        let o = (row0 + 1u) * c4;
        grad_in[o + c0] = finish(a1_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a1_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a1_2, o + c2);
        }
    }
    if ROWS > 2u && row0 + 2u < params.rows {
        let o = (row0 + 2u) * c4;
        grad_in[o + c0] = finish(a2_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a2_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a2_2, o + c2);
        }
    }
    if ROWS > 3u && row0 + 3u < params.rows {
        let o = (row0 + 3u) * c4;
        grad_in[o + c0] = finish(a3_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a3_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a3_2, o + c2);
        }
    }
    if ROWS > 4u && row0 + 4u < params.rows {
        let o = (row0 + 4u) * c4;
        grad_in[o + c0] = finish(a4_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a4_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a4_2, o + c2);
        }
    }
    if ROWS > 5u && row0 + 5u < params.rows {
        let o = (row0 + 5u) * c4;
        grad_in[o + c0] = finish(a5_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a5_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a5_2, o + c2);
        }
    }
    if ROWS > 6u && row0 + 6u < params.rows {
        let o = (row0 + 6u) * c4;
        grad_in[o + c0] = finish(a6_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a6_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a6_2, o + c2);
        }
    }
    if ROWS > 7u && row0 + 7u < params.rows {
        let o = (row0 + 7u) * c4;
        grad_in[o + c0] = finish(a7_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a7_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a7_2, o + c2);
        }
    }
    if ROWS > 8u && row0 + 8u < params.rows {
        let o = (row0 + 8u) * c4;
        grad_in[o + c0] = finish(a8_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a8_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a8_2, o + c2);
        }
    }
    if ROWS > 9u && row0 + 9u < params.rows {
        let o = (row0 + 9u) * c4;
        grad_in[o + c0] = finish(a9_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a9_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a9_2, o + c2);
        }
    }
    if ROWS > 10u && row0 + 10u < params.rows {
        let o = (row0 + 10u) * c4;
        grad_in[o + c0] = finish(a10_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a10_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a10_2, o + c2);
        }
    }
    if ROWS > 11u && row0 + 11u < params.rows {
        let o = (row0 + 11u) * c4;
        grad_in[o + c0] = finish(a11_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a11_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a11_2, o + c2);
        }
    }
    if ROWS > 12u && row0 + 12u < params.rows {
        let o = (row0 + 12u) * c4;
        grad_in[o + c0] = finish(a12_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a12_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a12_2, o + c2);
        }
    }
    if ROWS > 13u && row0 + 13u < params.rows {
        let o = (row0 + 13u) * c4;
        grad_in[o + c0] = finish(a13_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a13_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a13_2, o + c2);
        }
    }
    if ROWS > 14u && row0 + 14u < params.rows {
        let o = (row0 + 14u) * c4;
        grad_in[o + c0] = finish(a14_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a14_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a14_2, o + c2);
        }
    }
    if ROWS > 15u && row0 + 15u < params.rows {
        let o = (row0 + 15u) * c4;
        grad_in[o + c0] = finish(a15_0, o + c0);
        if COLS > 1u && col + 1u < c4 {
            grad_in[o + c1] = finish(a15_1, o + c1);
        }
        if COLS > 2u && col + 2u < c4 {
            grad_in[o + c2] = finish(a15_2, o + c2);
        }
    }
}
