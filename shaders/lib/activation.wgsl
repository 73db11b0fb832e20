// Convolution epilogues and their derivatives. Activation codes (src/gpu/params.rs
// `Activation`): 0 none, 1 ReLU6, 2 ReLU, 11 a ReLU called as a function (the same ReLU, which
// guided backpropagation leaves plain); in a backward pass only, 3 the guided ReLU of guided
// backpropagation (src/pipeline/backward.rs `GUIDED_RELU`).

fn activate(v: vec4<f32>, code: u32) -> vec4<f32> {
    if code == 1u {
        return clamp(v, vec4<f32>(0.0), vec4<f32>(6.0));
    }
    if code == 2u || code == 3u || code == 11u {
        return max(v, vec4<f32>(0.0));
    }
    return v;
}

// The gradient `g` at an activation's output `y`, passed where the derivative is one: ReLU6 where
// 0 < y < 6 (PyTorch's hardtanh backward), ReLU where y > 0 (threshold backward).
fn activation_mask(g: vec4<f32>, y: vec4<f32>, code: u32) -> vec4<f32> {
    if code == 1u {
        return select(vec4<f32>(0.0), g, (y > vec4<f32>(0.0)) & (y < vec4<f32>(6.0)));
    }
    if code == 2u || code == 11u {
        return select(vec4<f32>(0.0), g, y > vec4<f32>(0.0));
    }
    // Guided ReLU (pytorch-grad-cam GuidedBackpropReLU): only positive gradients, only where
    // the input was positive.
    if code == 3u {
        return select(vec4<f32>(0.0), g, (y > vec4<f32>(0.0)) & (g > vec4<f32>(0.0)));
    }
    return g;
}
