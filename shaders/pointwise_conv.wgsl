// Pointwise (1x1) convolution as a matrix product over NHWC activations:
//   out[r, o] = act(bias[o] + sum_k input[r, k] * weight[k, o]) (+ residual[r, o])
// where r runs over batch * height * width. Each invocation keeps a register tile of ROWS rows by
// 8 output channels (two vec4s) and walks the input channels four at a time, so every weight vec4
// loaded is used ROWS times and every input vec4 eight times.
// The residual add (MBConv skip connection) is fused here, after the activation.
//
// Kept in sync with src/gpu/params.rs (`PointwiseParams`).

struct Params {
    rows: u32,
    in_channels: u32,
    out_channels: u32,
    // 0: none, 1: ReLU6
    activation: u32,
    // 0: no residual, 1: add `residual` to the result
    has_residual: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, in_channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [in_channels, out_channels / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [out_channels / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [rows, out_channels / 4]; bound to any buffer when has_residual is 0
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [rows, out_channels / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
const ROWS: u32 = 8u;

fn finish(v: vec4<f32>, index: u32) -> vec4<f32> {
    var r = v;
    if params.activation == 1u {
        r = clamp(r, vec4<f32>(0.0), vec4<f32>(6.0));
    }
    if params.has_residual == 1u {
        r += residual[index];
    }
    return r;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    let c4 = params.out_channels / 4u;
    let k4 = params.in_channels / 4u;
    let col_tiles = (c4 + 1u) / 2u;
    let row_tiles = (params.rows + ROWS - 1u) / ROWS;
    if id >= row_tiles * col_tiles {
        return;
    }
    let col0 = (id % col_tiles) * 2u;
    // When out_channels / 4 is odd the last tile computes its second column twice and stores it once.
    let col1 = min(col0 + 1u, c4 - 1u);
    let row0 = (id / col_tiles) * ROWS;

    var src: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
        src[i] = min(row0 + i, params.rows - 1u) * k4;
    }
    var acc0: array<vec4<f32>, ROWS>;
    var acc1: array<vec4<f32>, ROWS>;
    for (var k = 0u; k < k4; k++) {
        let w = k * 4u * c4;
        let w0a = weight[w + col0];
        let w0b = weight[w + col1];
        let w1a = weight[w + c4 + col0];
        let w1b = weight[w + c4 + col1];
        let w2a = weight[w + 2u * c4 + col0];
        let w2b = weight[w + 2u * c4 + col1];
        let w3a = weight[w + 3u * c4 + col0];
        let w3b = weight[w + 3u * c4 + col1];
        for (var i = 0u; i < ROWS; i++) {
            let a = input[src[i] + k];
            acc0[i] += a.x * w0a + a.y * w1a + a.z * w2a + a.w * w3a;
            acc1[i] += a.x * w0b + a.y * w1b + a.z * w2b + a.w * w3b;
        }
    }

    let b0 = bias[col0];
    let b1 = bias[col1];
    for (var i = 0u; i < ROWS; i++) {
        let r = row0 + i;
        if r >= params.rows {
            break;
        }
        let o = r * c4;
        output[o + col0] = finish(acc0[i] + b0, o + col0);
        if col0 + 1u < c4 {
            output[o + col1] = finish(acc1[i] + b1, o + col1);
        }
    }
}
