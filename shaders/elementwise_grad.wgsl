// The input gradient of shaders/elementwise.wgsl: grad_in = act'(z) ⊙ grad_out · scale[c]
// (+ extra). `forward` is the op's output y where the activation's derivative is a function of
// it (ReLU, ReLU6, the guided ReLU: their masks at y are those at z), else the op's input x, from
// which z = x · scale[c] + bias[c] is recomputed; the forward pass keeps whichever is bound.
// With `add_extra`, another reader's gradient of x is added in the same pass.
//
// Kept in sync with src/gpu/params.rs (`ElementwiseGradParams`).
#import index
#import unary

struct Params {
    // Values / 4.
    len4: u32,
    // Channels / 4: the innermost axis (NHWC).
    channels4: u32,
    activation: u32,
    has_affine: u32,
    slope: f32,
    add_extra: u32,
    // 1: `forward` is the op's output.
    from_output: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> forward: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> extra: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> grad_in: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.len4 {
        return;
    }
    var z = forward[id];
    var s = vec4<f32>(1.0);
    if params.has_affine == 1u {
        let c = id % params.channels4;
        s = scale[c];
        if params.from_output == 0u {
            z = z * s + bias[c];
        }
    }
    var g = unary_backward(grad_out[id], z, params.activation, params.slope) * s;
    if params.add_extra == 1u {
        g = g + extra[id];
    }
    grad_in[id] = g;
}
