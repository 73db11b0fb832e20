// What the squeeze-and-excitation kernels share (se_*.wgsl): their parameters and the scalar
// forms of lib/unary.wgsl's activations. The block computes, per image n and channel c,
//   pooled[n, c]   = mean over pixels of x[n, p, c]                  (global_avg_pool.wgsl)
//   squeezed[n, j] = bias1[j] + Σ_c reduce[j, c] · pooled[n, c]        (se_squeeze.wgsl)
//   excited[n, c]  = bias2[c] + Σ_j expand[c, j] · act(squeezed[n, j]) (se_excite.wgsl)
//   y[n, p, c]     = x[n, p, c] · gate(excited[n, c])                  (se_scale.wgsl)
// and the backward pass goes back through the same steps (se_*_grad.wgsl).
//
// Kept in sync with src/gpu/params.rs (`SqueezeExciteParams`).
#import unary

struct Params {
    batch: u32,
    // Pixels per image of x.
    pixels: u32,
    // Channels of x (a multiple of 4).
    channels: u32,
    // Channels of the squeezed vector.
    squeeze: u32,
    // lib/unary.wgsl's code of the activation after the reduction (3: the guided ReLU).
    activation: u32,
    // lib/unary.wgsl's code of the gate (sigmoid or hardsigmoid).
    gate: u32,
    // se_scale_grad: 1 to add `extra`.
    add_extra: u32,
    _pad: u32,
}

fn se_unary(z: f32, code: u32) -> f32 {
    return unary(vec4<f32>(z), code, 0.0).x;
}

fn se_unary_backward(g: f32, z: f32, code: u32) -> f32 {
    return unary_backward(vec4<f32>(g), vec4<f32>(z), code, 0.0).x;
}
