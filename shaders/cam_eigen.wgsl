// Eigen-CAM's map: the projection of the centred matrix X [pixels, channels] on its first
// principal component (pytorch-grad-cam 1.5.7 get_2d_projection: M @ VT[0] from an SVD), by power
// iteration on the Gram matrix of X's smaller side (shaders/cam_gram.wgsl), then ReLU-ed (`relu`):
//   mode 0: gram = X X^T (n = pixels), top eigenpair (lambda, u): projection = sqrt(lambda) u
//   mode 1: gram = X^T X (n = channels), top eigenvector v:      projection = X v
// The SVD's sign is arbitrary; ours is chosen so that the projection is positively correlated
// with the per-position channel sum of the uncentred matrix (`source`:
// shaders/lib/eigen_matrix.wgsl).
// One workgroup per image.
//
// Kept in sync with src/gpu/params.rs (`CamEigenParams`).
#import eigen_matrix

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    mode: u32,
    source: u32,
    // Upper bound on the power iterations; they stop earlier once the vector no longer moves.
    max_iterations: u32,
    // 1: the projection ReLU-ed (the CAM methods); 0: as it is (FullGrad's eigen-smooth).
    relu: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, n, n]
@group(0) @binding(1) var<storage, read> gram: array<f32>;
// [batch, pixels, channels]
@group(0) @binding(2) var<storage, read> centred: array<f32>;
// [batch, pixels, channels]
@group(0) @binding(3) var<storage, read> activations: array<f32>;
// [batch, pixels, channels], or per-channel weights [batch, channels]: read for `source` > 0
@group(0) @binding(4) var<storage, read> gradient: array<f32>;
// [batch, pixels]
@group(0) @binding(5) var<storage, read_write> grid: array<f32>;

const WG: u32 = 64u;
// The largest n (the smaller side of X); the host refuses larger layers.
const MAX_N: u32 = 1024u;

var<workgroup> x: array<f32, MAX_N>;
var<workgroup> y: array<f32, MAX_N>;
var<workgroup> partial: array<f32, WG>;
var<workgroup> converged: u32;

// The sum of every invocation's `v`; called by all invocations of the workgroup.
fn total(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let out = partial[0];
    workgroupBarrier();
    return out;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if b >= params.batch {
        return;
    }
    let p = params.pixels;
    let c = params.channels;
    let n = select(c, p, params.mode == 0u);
    let g = b * n * n;
    let base = b * p * c;

    // A start with a component along any eigenvector of a generic matrix.
    var s = 0.0;
    for (var i = lid; i < n; i += WG) {
        x[i] = 1.0 + 0.125 * f32(i % 7u);
        s += x[i] * x[i];
    }
    let start = inverseSqrt(total(lid, s));
    for (var i = lid; i < n; i += WG) {
        x[i] *= start;
    }
    var lambda = 0.0;
    for (var it = 0u; it < params.max_iterations; it++) {
        workgroupBarrier();
        var norm2 = 0.0;
        for (var i = lid; i < n; i += WG) {
            var acc = 0.0;
            for (var j = 0u; j < n; j++) {
                acc += gram[g + i * n + j] * x[j];
            }
            y[i] = acc;
            norm2 += acc * acc;
        }
        lambda = sqrt(total(lid, norm2));
        let scale = select(0.0, 1.0 / lambda, lambda > 0.0);
        var moved = 0.0;
        for (var i = lid; i < n; i += WG) {
            let v = y[i] * scale;
            moved += (v - x[i]) * (v - x[i]);
            x[i] = v;
        }
        let step = total(lid, moved);
        if lid == 0u {
            // Converged to float32's resolution of a unit vector of n entries.
            converged = select(0u, 1u, step <= 1e-13 * f32(n));
        }
        if workgroupUniformLoad(&converged) == 1u {
            break;
        }
    }
    workgroupBarrier();

    // The projection, and its correlation with the channel sums.
    var corr = 0.0;
    for (var q = lid; q < p; q += WG) {
        var proj = 0.0;
        if params.mode == 0u {
            proj = sqrt(lambda) * x[q];
        } else {
            for (var k = 0u; k < c; k++) {
                proj += centred[base + q * c + k] * x[k];
            }
        }
        var m = 0.0;
        for (var k = 0u; k < c; k++) {
            let i = base + q * c + k;
            m += matrix_value(i);
        }
        grid[b * p + q] = proj;
        corr += proj * m;
    }
    let sign = select(-1.0, 1.0, total(lid, corr) >= 0.0);
    // Each invocation rewrites the positions it wrote.
    for (var q = lid; q < p; q += WG) {
        let v = sign * grid[b * p + q];
        grid[b * p + q] = select(v, max(v, 0.0), params.relu == 1u);
    }
}
