// Pointwise (1x1) convolution as a matrix product over NHWC activations:
//   out[r, o] = act(bias[o] + sum_k input[r, k] * weight[k, o]) (+ residual[r, o])
// where r runs over batch * height * width. Each invocation keeps a register tile of ROWS rows by
// COLS vec4s of output channels and walks the input channels four at a time, so every weight vec4
// loaded is used ROWS times and every input vec4 4 * COLS times.
// The residual add is fused here: after the activation (has_residual 1, the MBConv skip
// connection) or before it (has_residual 2, ResNet's add-then-ReLU). Activation 0 none,
// 1 ReLU6, 2 ReLU.
//
// ROWS and COLS are override constants (at most 16 and 3) so the tile can be tuned per adapter
// (src/gpu/kernels.rs POINTWISE_TILE). The tile is written out row by row (by build.rs, from the
// `#generate` line at the end): lavapipe's compiler keeps written-out accumulators in registers
// (or cheap spill slots), while loops over private arrays cost it far more; the rows and columns
// beyond ROWS and COLS are removed when the pipeline is specialized.
//
// Kept in sync with src/gpu/params.rs (`PointwiseParams`).
#import index
#import activation

struct Params {
    rows: u32,
    in_channels: u32,
    out_channels: u32,
    // 0: none, 1: ReLU6, 2: ReLU
    activation: u32,
    // 0: no residual; 1: add `residual` after the activation, 2: before it
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
override ROWS: u32 = 16u;
override COLS: u32 = 3u;

fn finish(v: vec4<f32>, index: u32) -> vec4<f32> {
    var r = v;
    if params.has_residual == 2u {
        r += residual[index];
    }
    r = activate(r, params.activation);
    if params.has_residual == 1u {
        r += residual[index];
    }
    return r;
}

fn load_a(index: u32) -> vec4<f32> {
    return input[index];
}

// The entry point: the register tile, written out by build.rs (`register_tile`).
#generate register_tile output params.out_channels params.in_channels bias
