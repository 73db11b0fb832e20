// Gradient of a pointwise (1x1) convolution with respect to its input, as a matrix product:
//   grad_in[r, i] = sum_o g[r, o] * weight[o, i]  (+ extra[r, i])
// where g is the gradient at the conv's output, masked by ReLU6's derivative when the conv has a
// ReLU6 (zero where the forward output is 0 or 6: where PyTorch's hardtanh backward is zero),
// and `extra` is a second gradient flowing into the same tensor (an MBConv skip connection).
// The weight is the folded conv weight in PyTorch's [out, in] layout, which is exactly the
// [K, N] operand this product needs. Same register tiling as pointwise_conv.wgsl.
//
// Kept in sync with src/gpu/params.rs (`PointwiseGradParams`).

struct Params {
    rows: u32,
    // Channels of the conv's input: the columns produced here.
    in_channels: u32,
    // Channels of the conv's output: the reduction.
    out_channels: u32,
    // 1: mask g by ReLU6's derivative at `forward_out`
    relu6_mask: u32,
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
const ROWS: u32 = 8u;

fn masked(index: u32) -> vec4<f32> {
    let g = grad_out[index];
    if params.relu6_mask == 0u {
        return g;
    }
    let y = forward_out[index];
    return select(vec4<f32>(0.0), g, (y > vec4<f32>(0.0)) & (y < vec4<f32>(6.0)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    let n4 = params.in_channels / 4u;
    let k4 = params.out_channels / 4u;
    let col_tiles = (n4 + 1u) / 2u;
    let row_tiles = (params.rows + ROWS - 1u) / ROWS;
    if id >= row_tiles * col_tiles {
        return;
    }
    let col0 = (id % col_tiles) * 2u;
    let col1 = min(col0 + 1u, n4 - 1u);
    let row0 = (id / col_tiles) * ROWS;

    var src: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
        src[i] = min(row0 + i, params.rows - 1u) * k4;
    }
    var acc0: array<vec4<f32>, ROWS>;
    var acc1: array<vec4<f32>, ROWS>;
    for (var k = 0u; k < k4; k++) {
        let w = k * 4u * n4;
        let w0a = weight[w + col0];
        let w0b = weight[w + col1];
        let w1a = weight[w + n4 + col0];
        let w1b = weight[w + n4 + col1];
        let w2a = weight[w + 2u * n4 + col0];
        let w2b = weight[w + 2u * n4 + col1];
        let w3a = weight[w + 3u * n4 + col0];
        let w3b = weight[w + 3u * n4 + col1];
        for (var i = 0u; i < ROWS; i++) {
            let a = masked(src[i] + k);
            acc0[i] += a.x * w0a + a.y * w1a + a.z * w2a + a.w * w3a;
            acc1[i] += a.x * w0b + a.y * w1b + a.z * w2b + a.w * w3b;
        }
    }

    for (var i = 0u; i < ROWS; i++) {
        let r = row0 + i;
        if r >= params.rows {
            break;
        }
        let o = r * n4;
        var v0 = acc0[i];
        var v1 = acc1[i];
        if params.add_extra == 1u {
            v0 += extra[o + col0];
            v1 += extra[o + col1];
        }
        grad_in[o + col0] = v0;
        if col0 + 1u < n4 {
            grad_in[o + col1] = v1;
        }
    }
}
