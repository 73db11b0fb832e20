// The input gradient of shaders/avg_pool.wgsl, gathered: each input pixel sums the gradients of
// the outputs whose windows hold it, each over its window's divisor (+ extra, another reader's
// gradient of the same input). NHWC, four channels per invocation.
//
// Kept in sync with src/gpu/params.rs (`AvgPoolParams`).
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
    count_include_pad: u32,
    add_extra: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, out_h, out_w, channels / 4]
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(2) var<storage, read> extra: array<vec4<f32>>;
// [batch, in_h, in_w, channels / 4]
@group(0) @binding(3) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

// The pixels of output `o`'s window inside an axis of `size` inputs.
fn inside(o: u32, size: u32) -> u32 {
    let start = i32(o * params.stride) - i32(params.pad);
    let end = min(start + i32(params.kernel), i32(size));
    return u32(end - max(start, 0));
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

    var g = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kernel; ky++) {
        let oy = window_covering(iy, ky, params.stride, params.pad, params.out_h);
        if oy < 0 {
            continue;
        }
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ox = window_covering(ix, kx, params.stride, params.pad, params.out_w);
            if ox < 0 {
                continue;
            }
            var divisor = window_padded_span(u32(oy), params.kernel, params.stride, params.pad, params.in_h)
                * window_padded_span(u32(ox), params.kernel, params.stride, params.pad, params.in_w);
            if params.count_include_pad == 0u {
                divisor = inside(u32(oy), params.in_h) * inside(u32(ox), params.in_w);
            }
            let o = ((n * params.out_h + u32(oy)) * params.out_w + u32(ox)) * c4 + c;
            g = g + grad_out[o] / f32(divisor);
        }
    }
    if params.add_extra == 1u {
        g = g + extra[id];
    }
    grad_in[id] = g;
}
