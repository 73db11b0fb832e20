// Pointwise (1x1) convolution as a matrix product over NHWC activations:
//   out[r, o] = act(bias[o] + sum_k input[r, k] * weight[k, o]) (+ residual[r, o])
// where r runs over batch * height * width. Each invocation keeps a register tile of ROWS rows by
// COLS vec4s of output channels and walks the input channels four at a time, so every weight vec4
// loaded is used ROWS times and every input vec4 4 * COLS times.
// The residual add is fused here: after the activation (has_residual 1, the MBConv skip
// connection) or before it (has_residual 2, ResNet's add-then-ReLU). Activation 0 none,
// 1 ReLU6, 2 ReLU.
//
// ROWS and COLS are override constants (at most 24 and 6) so the tile can be tuned per adapter
// (src/gpu/kernels.rs POINTWISE_VARIANTS).
//
// With SPLIT_COLS > 0 (the split-K variants, for layers with few rows: batch 1, late blocks) a
// workgroup of 64 computes SPLIT_ROWS rows by SPLIT_COLS vec4s of output channels instead: its
// invocations are SPLIT_COLS columns by 64 / SPLIT_COLS slices of the input channels, each
// slice summing every (64 / SPLIT_COLS)-th vec4 of them; the slices' partial sums meet in
// workgroup memory and the first slice adds them up (in slice order) and finishes. Adjacent
// invocations read adjacent weight vec4s; an input vec4 is read by all the columns at once. The tile is written out row by row (by build.rs, from the
// `#generate` line at the end): lavapipe's compiler keeps written-out accumulators in registers
// (or cheap spill slots), while loops over private arrays cost it far more; the rows and columns
// beyond ROWS and COLS are removed when the pipeline is specialized.
//
// For GPUs, the workgroup tile (entry point `main_workgroup_tiled`, after the split-K layout)
// stages tiles of the inputs and weights in workgroup memory.
//
// On devices with 8-lane subgroups (lavapipe), the subgroup tile (entry point `main_subgroups`) shares each step's weights among a subgroup's lanes instead.
//
// The body is shaders/lib/pointwise_conv.wgsl, shared with shaders/pointwise_conv_texture.wgsl.
// Its Params are kept in sync with src/gpu/params.rs (`PointwiseParams`).

// [rows, in_channels / 4]
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
// [in_channels, out_channels / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;

fn load_a(index: u32) -> vec4<f32> {
    return input[index];
}

fn load_w(index: u32) -> vec4<f32> {
    return weight[index];
}

#import pointwise_conv
