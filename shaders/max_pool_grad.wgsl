// Gradient of max pooling with respect to its input, NHWC, four channels per invocation: each
// input value gathers the gradient of every output window whose maximum it is. As PyTorch's
// max_pool2d backward, a window's maximum is its first largest value in row-major window order
// (a later equal value does not replace it), so ties route the gradient to one input only.
//   grad_in[iy, ix, c] = sum over windows (oy, ox) covering (iy, ix) whose argmax is (iy, ix)
//                        of grad_out[oy, ox, c]   (+ extra[iy, ix, c])
//
// Kept in sync with src/gpu/params.rs (`MaxPoolGradParams`).
#import index
#import window

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    channels: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    pad: u32,
    // 1: add `extra`
    add_extra: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]: the forward input
@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(3) var<storage, read> extra: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(4) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

// The window position (row-major index within the input image) of the maximum of output
// (oy, ox), per channel lane.
fn argmax(n: u32, oy: u32, ox: u32, c: u32) -> vec4<u32> {
    let c4 = params.channels / 4u;
    var best = vec4<f32>(0.0);
    var at = vec4<u32>(0xffffffffu);
    var first = true;
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = window_tap(oy, ky, params.stride, params.pad, params.in_h);
        if iy < 0 {
            continue;
        }
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = window_tap(ox, kx, params.stride, params.pad, params.in_w);
            if ix < 0 {
                continue;
            }
            let pos = u32(iy) * params.in_w + u32(ix);
            let v = input[(n * params.in_h * params.in_w + pos) * c4 + c];
            let better = (v > best) | vec4<bool>(first);
            best = select(best, v, better);
            at = select(at, vec4<u32>(pos), better);
            first = false;
        }
    }
    return at;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    let c4 = params.channels / 4u;
    if id >= params.batch * params.in_h * params.in_w * c4 {
        return;
    }
    let c = id % c4;
    let pixel = id / c4;
    let ix = pixel % params.in_w;
    let iy = (pixel / params.in_w) % params.in_h;
    let n = pixel / (params.in_w * params.in_h);
    let me = vec4<u32>(iy * params.in_w + ix);

    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel; ky++) {
        let ty = window_covering(iy, ky, params.stride, params.pad, params.out_h);
        if ty < 0 {
            continue;
        }
        let oy = u32(ty);
        for (var kx = 0u; kx < params.kernel; kx++) {
            let tx = window_covering(ix, kx, params.stride, params.pad, params.out_w);
            if tx < 0 {
                continue;
            }
            let ox = u32(tx);
            let o = ((n * params.out_h + oy) * params.out_w + ox) * c4 + c;
            acc += select(vec4<f32>(0.0), grad_out[o], argmax(n, oy, ox, c) == me);
        }
    }
    if params.add_extra == 1u {
        acc += extra[id];
    }
    grad_in[id] = acc;
}
