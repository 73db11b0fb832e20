// What FullGrad's two kernels (full_grad_stats, full_grad_sum) share: their parameters, their
// inputs, and the value at one element (pytorch-grad-cam FullGrad.compute_cam_per_layer): for a
// bias layer (mode 0), |b_c · g| with g the gradient at the conv's output masked by its
// activation (the gradient at the BatchNorm's output, or the conv's, before the activation) and
// `factors[c]` b_c times the gradient's scale from the op to that module; for the input
// (mode 1), |∂T/∂x · x| with `forward` the normalised input x.
//
// Kept in sync with src/gpu/params.rs (`FullGradParams`).
#import activation

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    // 0: a bias layer, 1: the input.
    mode: u32,
    // The conv's activation (shaders/lib/activation.wgsl's code), in mode 0.
    activation: u32,
    // full_grad_sum: 1 adds to `map` instead of writing it.
    accumulate: u32,
    // full_grad_sum: the channels summed, first_channel..first_channel + channel_count.
    first_channel: u32,
    channel_count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels]: the gradient at the op's output (mode 0) or at the input (mode 1)
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
// [batch, pixels, channels]: the op's output (its activation's mask) or the input x
@group(0) @binding(2) var<storage, read> forward: array<f32>;
// [channels]: the bias times the gradient's scale (mode 0)
@group(0) @binding(3) var<storage, read> factors: array<f32>;

// The value at element `i` = (image, position) · channels + `c`.
fn full_grad_value(i: u32, c: u32) -> f32 {
    if params.mode == 1u {
        return abs(gradient[i] * forward[i]);
    }
    let g = activation_mask(vec4<f32>(gradient[i]), vec4<f32>(forward[i]), params.activation).x;
    return abs(factors[c] * g);
}
