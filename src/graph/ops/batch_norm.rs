//! Inference-mode BatchNorm: `y = (x − μ) · γ / √(σ² + ε) + β` per channel, with the running
//! statistics.
//!
//! Gradient: `∂x = ∂y · γ / √(σ² + ε)` per channel (keeps nothing). FullGrad reads its bias
//! `β − μ·γ/√(σ² + ε)`.

use super::{single, Keeps, OpRule, Shape};

/// A BatchNorm's parameters, `[channels]` each.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// γ.
    pub gamma: Vec<f32>,
    /// β.
    pub beta: Vec<f32>,
    /// μ, the running mean.
    pub mean: Vec<f32>,
    /// σ², the running variance (checked non-negative when loaded).
    pub var: Vec<f32>,
    /// ε.
    pub eps: f32,
}

impl BatchNorm {
    /// `γ / √(σ² + ε)` of channel `c`, in float32 as PyTorch computes it.
    pub fn scale_f32(&self, c: usize) -> f32 {
        self.gamma[c] / (self.var[c] + self.eps).sqrt()
    }

    /// `γ / √(σ² + ε)` of channel `c` in float64, for folding into a conv's weights.
    pub fn scale_f64(&self, c: usize) -> f64 {
        f64::from(self.gamma[c]) / (f64::from(self.var[c]) + f64::from(self.eps)).sqrt()
    }
}

impl OpRule for BatchNorm {
    fn kind(&self) -> &'static str {
        "BatchNormalization"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let shape = single(inputs);
        let c = shape.2 as usize;
        let lengths = [&self.gamma, &self.beta, &self.mean, &self.var].map(Vec::len);
        if lengths.iter().any(|&n| n != c) {
            return Err(format!(
                "scale, bias, mean and variance of {lengths:?} values over a tensor of {c} \
                 channels"
            ));
        }
        // NaN compares false, so a NaN variance or epsilon is refused too.
        let positive = |i: usize| self.eps.is_finite() && self.var[i] + self.eps > 0.0;
        if let Some(i) = (0..c).find(|&i| !positive(i)) {
            return Err(format!(
                "variance {} + epsilon {} of channel {i} is not positive",
                self.var[i], self.eps
            ));
        }
        Ok(shape)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }

    fn full_grad_bias(&self) -> Option<Vec<f32>> {
        // pytorch-grad-cam's `get_bias_data`, in float32.
        Some(
            (0..self.gamma.len())
                .map(|c| {
                    -(self.mean[c] * self.gamma[c] / (self.var[c] + self.eps).sqrt()) + self.beta[c]
                })
                .collect(),
        )
    }
}
