// The pointwise convolution of shaders/pointwise_conv.wgsl (storage buffers) and
// shaders/pointwise_conv_texture.wgsl (the input and weights read through textures): everything
// but the bindings of `input` and `weight`, which the importer declares with `load_a(index)` and
// `load_w(index)` reading vec4 `index` of each. See shaders/pointwise_conv.wgsl for the layouts
// and tiles.
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
// [out_channels / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [rows, out_channels / 4]; bound to any buffer when has_residual is 0
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [rows, out_channels / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
override ROWS: u32 = 24u;
override COLS: u32 = 6u;
// 0: the register tile; else the split-K layout above (4, 8 or 16: a divisor of 64).
override SPLIT_COLS: u32 = 0u;
const SPLIT_ROWS: u32 = 4u;
const SPLIT_SIZE: u32 = 64u;

// [invocation, row]: each invocation's partial sums of its SPLIT_ROWS rows.
var<workgroup> partial: array<vec4<f32>, 256>;

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

// The register tile, written out by build.rs (`register_tile`).
#generate register_tile output params.out_channels params.in_channels bias

// Workgroup `group` of the split-K layout; `lid` its invocation.
fn split_k(group: u32, lid: u32) {
    // At least 1: the override is 0 in the register-tile pipelines, which never call this.
    let cols = max(SPLIT_COLS, 1u);
    let c4 = params.out_channels / 4u;
    let k4 = params.in_channels / 4u;
    let slices = SPLIT_SIZE / cols;
    let col_tiles = (c4 + cols - 1u) / cols;
    let row_tiles = (params.rows + SPLIT_ROWS - 1u) / SPLIT_ROWS;
    // Uniform per workgroup, so the barrier below is reached by all invocations or none.
    if group >= row_tiles * col_tiles {
        return;
    }
    let j = lid % cols;
    let slice = lid / cols;
    let col = min((group % col_tiles) * cols + j, c4 - 1u);
    let row0 = (group / col_tiles) * SPLIT_ROWS;
    let last_row = params.rows - 1u;
    let s0 = min(row0, last_row) * k4;
    let s1 = min(row0 + 1u, last_row) * k4;
    let s2 = min(row0 + 2u, last_row) * k4;
    let s3 = min(row0 + 3u, last_row) * k4;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = slice; k < k4; k += slices) {
        let w = k * 4u * c4 + col;
        let w0 = load_w(w);
        let w1 = load_w(w + c4);
        let w2 = load_w(w + 2u * c4);
        let w3 = load_w(w + 3u * c4);
        let x0 = load_a(s0 + k);
        let x1 = load_a(s1 + k);
        let x2 = load_a(s2 + k);
        let x3 = load_a(s3 + k);
        a0 += x0.x * w0 + x0.y * w1 + x0.z * w2 + x0.w * w3;
        a1 += x1.x * w0 + x1.y * w1 + x1.z * w2 + x1.w * w3;
        a2 += x2.x * w0 + x2.y * w1 + x2.z * w2 + x2.w * w3;
        a3 += x3.x * w0 + x3.y * w1 + x3.z * w2 + x3.w * w3;
    }
    partial[lid * 4u] = a0;
    partial[lid * 4u + 1u] = a1;
    partial[lid * 4u + 2u] = a2;
    partial[lid * 4u + 3u] = a3;
    workgroupBarrier();
    if slice != 0u || (group % col_tiles) * cols + j >= c4 {
        return;
    }
    let b = bias[col];
    for (var r = 0u; r < SPLIT_ROWS; r++) {
        let row = row0 + r;
        if row >= params.rows {
            break;
        }
        var v = partial[j * 4u + r];
        for (var s = 1u; s < slices; s++) {
            v += partial[(s * cols + j) * 4u + r];
        }
        let o = row * c4 + col;
        output[o] = finish(v + b, o);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if SPLIT_COLS > 0u {
        split_k(workgroup_index(wid, nwg), lid);
        return;
    }
    register_tile(invocation_index(gid, nwg));
}

// The workgroup tile (src/gpu/kernels.rs `POINTWISE_WORKGROUP_TILED`), for GPUs: a workgroup of
// 64 computes GM rows by GN4 vec4s of output channels (src/gpu/kernels.rs `GEMM_TILE`), walking
// the input channels GK4 vec4s at a time: it stages the step's input rows and weight rows in
// workgroup memory, read from memory coalesced (adjacent invocations, adjacent vec4s), then each
// invocation adds 8 rows × 2 vec4s of products from there, its rows' inputs as two vec4 loads and
// its columns' weights as two. Run from its own entry point, so that the other variants'
// pipelines hold none of its workgroup memory. Needs WORKGROUP_SIZE 64.
const GM: u32 = 64u;
const GN4: u32 = 16u;
const GK4: u32 = 4u;
// Stride of tile_a's channel rows in vec4s: GM / 4 + 1, so that the invocations staging one
// input vec4 each (4 per row) store to at most two of a bank's words at once.
const GAS: u32 = 17u;
// [input channel of the step, row / 4]: the step's inputs, transposed, 4 rows to a vec4.
var<workgroup> tile_a: array<vec4<f32>, 272>;
// [input channel of the step, vec4 of output channels]
var<workgroup> tile_b: array<vec4<f32>, 256>;

// Row `row`, vec4 column `col` of the workgroup tile's output, where they exist.
fn store_tile(row: u32, col: u32, c4: u32, v: vec4<f32>) {
    if row < params.rows && col < c4 {
        let o = row * c4 + col;
        output[o] = finish(v + bias[col], o);
    }
}

// Workgroup `group` of the workgroup tile; `lid` its invocation.
fn workgroup_tile(group: u32, lid: u32) {
    let c4 = params.out_channels / 4u;
    let k4 = params.in_channels / 4u;
    let col_tiles = (c4 + GN4 - 1u) / GN4;
    // Uniform per workgroup, so every invocation reaches the barriers or none does.
    if group >= ((params.rows + GM - 1u) / GM) * col_tiles {
        return;
    }
    // Neighbouring workgroups share their input rows (the same rows, other channels).
    let m0 = (group / col_tiles) * GM;
    let n0 = (group % col_tiles) * GN4;
    let last_row = params.rows - 1u;
    // What this invocation stages: input vec4 `kv` of rows lid / GK4 + 16 r, and weight entries
    // lid + 64 r.
    let kv = lid % GK4;
    // What it computes: rows 8 ty to 8 ty + 7, vec4 columns tx and tx + 8.
    let tx = lid % 8u;
    let ty = lid / 8u;
    var p0 = vec4<f32>(0.0);
    var p1 = vec4<f32>(0.0);
    var p2 = vec4<f32>(0.0);
    var p3 = vec4<f32>(0.0);
    var p4 = vec4<f32>(0.0);
    var p5 = vec4<f32>(0.0);
    var p6 = vec4<f32>(0.0);
    var p7 = vec4<f32>(0.0);
    var q0 = vec4<f32>(0.0);
    var q1 = vec4<f32>(0.0);
    var q2 = vec4<f32>(0.0);
    var q3 = vec4<f32>(0.0);
    var q4 = vec4<f32>(0.0);
    var q5 = vec4<f32>(0.0);
    var q6 = vec4<f32>(0.0);
    var q7 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < k4; k0 += GK4) {
        let k = k0 + kv;
        for (var r = 0u; r < 4u; r++) {
            let row = lid / GK4 + 16u * r;
            var x = vec4<f32>(0.0);
            if k < k4 {
                // Rows past the end repeat the last one (their outputs are never written).
                x = load_a(min(m0 + row, last_row) * k4 + k);
            }
            // Channel 4 kv + i of this row goes to tile_a[4 kv + i][row / 4][row % 4].
            let at = kv * 4u * GAS + row / 4u;
            let lane = row % 4u;
            tile_a[at][lane] = x.x;
            tile_a[at + GAS][lane] = x.y;
            tile_a[at + 2u * GAS][lane] = x.z;
            tile_a[at + 3u * GAS][lane] = x.w;
        }
        for (var r = 0u; r < 4u; r++) {
            // Entry e: input channel e / GN4 of the step, vec4 column e % GN4 of the tile.
            let e = lid + 64u * r;
            let channel = k0 * 4u + e / GN4;
            let col = n0 + e % GN4;
            var w = vec4<f32>(0.0);
            if channel < params.in_channels && col < c4 {
                w = load_w(channel * c4 + col);
            }
            tile_b[e] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < GK4 * 4u; kk++) {
            let a = tile_a[kk * GAS + 2u * ty];
            let b = tile_a[kk * GAS + 2u * ty + 1u];
            let w0 = tile_b[kk * GN4 + tx];
            let w1 = tile_b[kk * GN4 + tx + 8u];
            p0 += a.x * w0;
            q0 += a.x * w1;
            p1 += a.y * w0;
            q1 += a.y * w1;
            p2 += a.z * w0;
            q2 += a.z * w1;
            p3 += a.w * w0;
            q3 += a.w * w1;
            p4 += b.x * w0;
            q4 += b.x * w1;
            p5 += b.y * w0;
            q5 += b.y * w1;
            p6 += b.z * w0;
            q6 += b.z * w1;
            p7 += b.w * w0;
            q7 += b.w * w1;
        }
        workgroupBarrier();
    }
    let row = m0 + 8u * ty;
    let col = n0 + tx;
    store_tile(row, col, c4, p0);
    store_tile(row, col + 8u, c4, q0);
    store_tile(row + 1u, col, c4, p1);
    store_tile(row + 1u, col + 8u, c4, q1);
    store_tile(row + 2u, col, c4, p2);
    store_tile(row + 2u, col + 8u, c4, q2);
    store_tile(row + 3u, col, c4, p3);
    store_tile(row + 3u, col + 8u, c4, q3);
    store_tile(row + 4u, col, c4, p4);
    store_tile(row + 4u, col + 8u, c4, q4);
    store_tile(row + 5u, col, c4, p5);
    store_tile(row + 5u, col + 8u, c4, q5);
    store_tile(row + 6u, col, c4, p6);
    store_tile(row + 6u, col + 8u, c4, q6);
    store_tile(row + 7u, col, c4, p7);
    store_tile(row + 7u, col + 8u, c4, q7);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_workgroup_tiled(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    workgroup_tile(workgroup_index(wid, nwg), lid);
}

// The subgroup tile (src/gpu/kernels.rs `POINTWISE_SUBGROUP`): only in the copy of this file
// build.rs writes for devices with subgroup operations, run from its own entry point. It assumes
// subgroups of 8 lanes made of consecutive invocations, lane = local index % 8 (lavapipe's
// layout; the engine uses it on CPU adapters with 8-lane subgroups only).
#subgroups
#generate subgroup_tile output params.out_channels params.in_channels bias 8 8

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_subgroups(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    subgroup_tile(subgroup_index(wid, nwg, lid), lane);
}
#end subgroups
