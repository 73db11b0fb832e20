// The gradient through an activation, elementwise: to = act'(forward) ⊙ from, with act' as in
// lib/activation.wgsl (ReLU6 passes where 0 < y < 6, ReLU where y > 0, at the activation's
// forward output y). Used where the masked gradient has two readers: a conv that adds its
// residual before the activation (ResNet) sends it both to the conv's input and to the shortcut.
//
// Kept in sync with src/gpu/params.rs (`ActivationGradParams`).
#import index
#import activation

struct Params {
    // Values / 4.
    len4: u32,
    // 1: ReLU6, 2: ReLU
    activation: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> forward: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> from_grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> to_grad: array<vec4<f32>>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.len4 {
        return;
    }
    to_grad[id] = activation_mask(from_grad[id], forward[id], params.activation);
}
