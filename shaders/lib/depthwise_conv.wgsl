// The depthwise convolution of shaders/depthwise_conv.wgsl (storage buffers) and
// shaders/depthwise_conv_texture.wgsl (the input and weights read through textures): everything
// but the bindings of `input` and `weight`, which the importer declares with `load_in(index)` and
// `load_dw(index)` reading vec4 `index` of each. See shaders/depthwise_conv.wgsl for the paths.
#import index
#import activation

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    channels: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    // 0: none, 1: ReLU6, 2: ReLU
    activation: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [channels / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;
// 0: generic path; otherwise the kernel size this pipeline is specialized for.
override KERNEL: u32 = 0u;
override STRIDE: u32 = 1u;
// Output pixels per invocation on the specialized path: OX across by OY down
// (src/gpu/kernels.rs DEPTHWISE_VARIANTS, `depthwise_block`).
fn generic(id: u32) {
    let c4 = params.channels / 4u;
    if id >= params.batch * params.out_h * params.out_w * c4 {
        return;
    }
    let c = id % c4;
    let pixel = id / c4;
    let ox = pixel % params.out_w;
    let oy = (pixel / params.out_w) % params.out_h;
    let n = pixel / (params.out_w * params.out_h);

    var acc = bias[c];
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = i32(oy * params.stride + ky) - i32(params.pad_top);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        let row = (n * params.in_h + u32(iy)) * params.in_w;
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = i32(ox * params.stride + kx) - i32(params.pad_left);
            if ix < 0 || ix >= i32(params.in_w) {
                continue;
            }
            acc += load_in((row + u32(ix)) * c4 + c) * load_dw((ky * params.kernel + kx) * c4 + c);
        }
    }
    output[id] = activate(acc, params.activation);
}

// The specialized blocks, written out by build.rs (`depthwise_block K S OX OY`); the block sizes
// are repeated in src/gpu/kernels.rs (`DEPTHWISE_BLOCKS`), which sizes the dispatch.
#generate depthwise_block 3 1 4 4
#generate depthwise_block 3 2 4 4
#generate depthwise_block 5 1 4 4
#generate depthwise_block 5 2 4 4
#generate depthwise_block 7 1 4 4

// The workgroup-staged variant (STAGED = 1, src/gpu/kernels.rs `DEPTHWISE_STAGED`), for GPUs: a
// workgroup of 64 computes a ST_TILE × ST_TILE tile of output pixels for ST_C4 vec4s of channels.
// Its invocations first copy the input region the tile needs (channels fastest, so adjacent
// invocations read adjacent memory) into workgroup memory, padding as zeros, then each computes
// 2 output pixels of one channel vec4 from it. Any kernel size and stride whose region fits
// (ST_TILE - 1) * stride + kernel <= ST_MAX_SIDE: the builder's specialized sizes, 3 and 5 at
// strides 1 and 2 and 7 at stride 1, the only shapes the tuner offers it for.
override STAGED: u32 = 0u;
const ST_C4: u32 = 8u;
const ST_TILE: u32 = 4u;
const ST_MAX_SIDE: u32 = 11u;
var<workgroup> region: array<vec4<f32>, 968>;

fn staged(group: u32, lid: u32) {
    let c4 = params.channels / 4u;
    let cgroups = (c4 + ST_C4 - 1u) / ST_C4;
    let tiles_x = (params.out_w + ST_TILE - 1u) / ST_TILE;
    let tiles_y = (params.out_h + ST_TILE - 1u) / ST_TILE;
    let k = params.kernel;
    let s = params.stride;
    let side = (ST_TILE - 1u) * s + k;
    // The same for the whole workgroup, so the barrier below is reached by all or none.
    if group >= params.batch * tiles_y * tiles_x * cgroups || side > ST_MAX_SIDE {
        return;
    }
    let cg = group % cgroups;
    let t = group / cgroups;
    let tx = t % tiles_x;
    let ty = (t / tiles_x) % tiles_y;
    let n = t / (tiles_x * tiles_y);
    let ix0 = i32(tx * ST_TILE * s) - i32(params.pad_left);
    let iy0 = i32(ty * ST_TILE * s) - i32(params.pad_top);
    let total = side * side * ST_C4;
    for (var r = lid; r < total; r += WORKGROUP_SIZE) {
        let c = cg * ST_C4 + r % ST_C4;
        let px = r / ST_C4;
        let ix = ix0 + i32(px % side);
        let iy = iy0 + i32(px / side);
        var v = vec4<f32>(0.0);
        if ix >= 0 && ix < i32(params.in_w) && iy >= 0 && iy < i32(params.in_h) && c < c4 {
            v = load_in(((n * params.in_h + u32(iy)) * params.in_w + u32(ix)) * c4 + c);
        }
        region[r] = v;
    }
    workgroupBarrier();
    let cc = lid % ST_C4;
    let c = cg * ST_C4 + cc;
    if c >= c4 {
        return;
    }
    // 8 slots of 2 pixels: column slot % ST_TILE, rows (slot / ST_TILE) * 2 and the next.
    let slot = lid / ST_C4;
    let lx = slot % ST_TILE;
    let b = bias[c];
    for (var j = 0u; j < 2u; j++) {
        let ly = (slot / ST_TILE) * 2u + j;
        let ox = tx * ST_TILE + lx;
        let oy = ty * ST_TILE + ly;
        if ox >= params.out_w || oy >= params.out_h {
            continue;
        }
        var acc = b;
        for (var ky = 0u; ky < k; ky++) {
            for (var kx = 0u; kx < k; kx++) {
                let at = ((ly * s + ky) * side + lx * s + kx) * ST_C4 + cc;
                acc += region[at] * load_dw((ky * k + kx) * c4 + c);
            }
        }
        let o = ((n * params.out_h + oy) * params.out_w + ox) * c4 + c;
        output[o] = activate(acc, params.activation);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if STAGED != 0u {
        staged(workgroup_index(wid, nwg), lid);
        return;
    }
    let id = invocation_index(gid, nwg);
    if KERNEL == 3u && STRIDE == 1u {
        block_k3s1(id);
    } else if KERNEL == 3u && STRIDE == 2u {
        block_k3s2(id);
    } else if KERNEL == 5u && STRIDE == 1u {
        block_k5s1(id);
    } else if KERNEL == 5u && STRIDE == 2u {
        block_k5s2(id);
    } else if KERNEL == 7u && STRIDE == 1u {
        block_k7s1(id);
    } else {
        generic(id);
    }
}
