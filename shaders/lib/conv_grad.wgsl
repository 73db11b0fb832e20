// What the convolutions' input gradients share. Uses the importer's `grad_out` and `forward_out`
// bindings (array<vec4<f32>>) and `params.mask`.
#import activation

// The output gradient at `index`, masked by the derivative of the conv's activation at its
// forward output (mask 0: none).
fn masked_grad(index: u32) -> vec4<f32> {
    let g = grad_out[index];
    if params.mask == 0u {
        return g;
    }
    return activation_mask(g, forward_out[index], params.mask);
}
