// Every activation the elementwise kernels run, and its derivative at the activation's input z,
// as PyTorch computes them in float32. Codes (src/gpu/params.rs `Activation`): 0 none, 1 ReLU6,
// 2 ReLU, 3 the guided ReLU (backward passes only), 4 sigmoid, 5 SiLU, 6 hardsigmoid,
// 7 hardswish, 8 GELU, 9 GELU (tanh), 10 leaky ReLU with `slope`.

fn unary_sigmoid(z: vec4<f32>) -> vec4<f32> {
    return 1.0 / (1.0 + exp(-z));
}

// erf(x) from erfc's Chebyshev fit (Numerical Recipes `erfcc`, fractional error < 1.2e-7).
fn unary_erf(x: vec4<f32>) -> vec4<f32> {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * exp(-a * a + poly);
    return sign(x) * (1.0 - erfc);
}

const UNARY_SQRT1_2: f32 = 0.70710678118654752;
const UNARY_SQRT_2_PI: f32 = 0.79788456080286536;
const UNARY_INV_SQRT_2PI: f32 = 0.39894228040143268;
const UNARY_KAPPA: f32 = 0.044715;

fn unary(z: vec4<f32>, code: u32, slope: f32) -> vec4<f32> {
    switch code {
        case 1u: {
            return clamp(z, vec4<f32>(0.0), vec4<f32>(6.0));
        }
        case 2u, 3u, 11u: {
            return max(z, vec4<f32>(0.0));
        }
        case 4u: {
            return unary_sigmoid(z);
        }
        case 5u: {
            return z * unary_sigmoid(z);
        }
        case 6u: {
            return clamp(z + 3.0, vec4<f32>(0.0), vec4<f32>(6.0)) / 6.0;
        }
        case 7u: {
            return z * clamp(z + 3.0, vec4<f32>(0.0), vec4<f32>(6.0)) / 6.0;
        }
        case 8u: {
            return 0.5 * z * (1.0 + unary_erf(z * UNARY_SQRT1_2));
        }
        case 9u: {
            let inner = UNARY_SQRT_2_PI * (z + UNARY_KAPPA * z * z * z);
            return 0.5 * z * (1.0 + tanh(inner));
        }
        case 10u: {
            return select(z * slope, z, z > vec4<f32>(0.0));
        }
        default: {
            return z;
        }
    }
}

// The gradient `g` at the activation's output, taken back to its input z.
fn unary_backward(g: vec4<f32>, z: vec4<f32>, code: u32, slope: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    switch code {
        case 1u: {
            // hardtanh's backward: zero at and beyond the bounds.
            return select(zero, g, (z > zero) & (z < vec4<f32>(6.0)));
        }
        case 2u, 11u: {
            return select(zero, g, z > zero);
        }
        case 3u: {
            // Guided ReLU (pytorch-grad-cam GuidedBackpropReLU): only positive gradients, only
            // where the input was positive.
            return select(zero, g, (z > zero) & (g > zero));
        }
        case 4u: {
            let s = unary_sigmoid(z);
            return g * (1.0 - s) * s;
        }
        case 5u: {
            let s = unary_sigmoid(z);
            return g * s * (1.0 + z * (1.0 - s));
        }
        case 6u: {
            return select(zero, g / 6.0, (z > vec4<f32>(-3.0)) & (z < vec4<f32>(3.0)));
        }
        case 7u: {
            let middle = g * (z / 3.0 + 0.5);
            return select(select(middle, g, z > vec4<f32>(3.0)), zero, z < vec4<f32>(-3.0));
        }
        case 8u: {
            let cdf = 0.5 * (1.0 + unary_erf(z * UNARY_SQRT1_2));
            let pdf = exp(-0.5 * z * z) * UNARY_INV_SQRT_2PI;
            return g * (cdf + z * pdf);
        }
        case 9u: {
            let inner = UNARY_SQRT_2_PI * (z + UNARY_KAPPA * z * z * z);
            let th = tanh(inner);
            let left = 0.5 * z;
            let right = 1.0 + th;
            let d_inner = UNARY_SQRT_2_PI * (1.0 + 3.0 * UNARY_KAPPA * z * z);
            return g * (0.5 * right + left * (1.0 - th * th) * d_inner);
        }
        case 10u: {
            return select(g * slope, g, z > zero);
        }
        default: {
            return g;
        }
    }
}
