// Dense 2-D convolution with its input and weights read
// through textures (shaders/lib/texel.wgsl), for lavapipe: shaders/conv2d.wgsl's subgroup tile
// (build.rs `subgroup_tile`, conv mode) whose loads are texel fetches instead of storage-buffer
// loads, in two shapes: 8 output pixels × 16 vec4s of output channels per lane, and 8 × 8 for
// convs with at most 32 output channels (DenseNet's 3×3 growth convs), which the wider tile
// would compute twice; and conv2d.wgsl's subgroup stems (3×3 and 7×7 at stride 2 over RGB). The engine copies each launch's input into a texture first
// (src/pipeline/texel.rs); the weights are uploaded as textures once.
//
// `main` (the default pipeline, for devices without subgroups) computes one output pixel and
// four output channels per invocation over any number of input channels, adding the products
// in the subgroup paths' order.
#import index
#import texel
#import conv_params

@group(0) @binding(0) var<uniform> params: Params;
// [batch, in_h, in_w, in_c / 4], as texels
@group(0) @binding(1) var input: texture_2d<f32>;
// [kernel, kernel, in_c, out_c / 4], as texels
@group(0) @binding(2) var weight: texture_2d<f32>;
// [out_c / 4]
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]; bound to any buffer when has_residual is 0
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
// [batch, out_h, out_w, out_c / 4]
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

// Input vec4 `index`: 4 consecutive channels of a pixel.
fn load_a(index: u32) -> vec4<f32> {
    return texel(input, index);
}

fn load_w(index: u32) -> vec4<f32> {
    return texel(weight, index);
}

// Input value `index` (the stems', over 3 channels): a component of a texel.
fn load_x1(index: u32) -> f32 {
    return texel(input, index >> 2u)[index & 3u];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let id = invocation_index(gid, nwg);
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
                acc += load_x1(src + ci) * load_w(w + ci * c4);
            }
        }
    }
    output[id] = finish(acc, id);
}

// The subgroup tiles (src/gpu/kernels.rs `CONV2D_TEXTURE_VARIANTS`): only in the copy of this
// file build.rs writes for devices with 8-lane subgroups, lane = local index % 8.
#subgroups
// Vec4s of output channels per lane: 16 or 8.
override TILE_COLS: u32 = 16u;
// 3 or 7: the subgroup stem of that kernel size (shaders/conv2d.wgsl's) instead of a tile.
override STEM_KERNEL: u32 = 0u;

#generate subgroup_stem 3 8
#generate subgroup_stem 7 8

#generate subgroup_tile output params.out_c params.in_c bias 8 16 conv
#generate subgroup_tile output params.out_c params.in_c bias 8 8 conv

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_subgroups(
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    if STEM_KERNEL == 3u {
        subgroup_stem_k3(subgroup_index(wid, nwg, lid), lane);
    } else if STEM_KERNEL == 7u {
        subgroup_stem_k7(subgroup_index(wid, nwg, lid), lane);
    } else if TILE_COLS == 8u {
        conv_subgroup_tile_8x8(subgroup_index(wid, nwg, lid), lane);
    } else {
        conv_subgroup_tile_8x16(subgroup_index(wid, nwg, lid), lane);
    }
}
#end subgroups
