//! LayerNorm over the channels of each pixel (ConvNeXt's `LayerNorm2d`, and `nn.LayerNorm` between
//! its channels-last permutes; ONNX `LayerNormalization` over the channel axis):
//! `y = (x − mean) / √(var + ε) · γ + β`, the mean and biased variance over the channels.
//!
//! Gradient, with `x̂ = (x − mean) / √(var + ε)` and `g = γ ⊙ ∂y`:
//! `∂x = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(var + ε)`, the means over the channels (keeps the
//! input). Not a bias layer for FullGrad.

use super::{single, Keeps, OpRule, Shape};

/// A LayerNorm's parameters, `[channels]` each.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    /// γ.
    pub gamma: Vec<f32>,
    /// β.
    pub beta: Vec<f32>,
    /// ε.
    pub eps: f32,
}

impl OpRule for LayerNorm {
    fn kind(&self) -> &'static str {
        "LayerNormalization"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let shape = single(inputs);
        let c = shape.2 as usize;
        if self.gamma.len() != c || self.beta.len() != c {
            return Err(format!(
                "scale and bias of {} and {} values over a tensor of {c} channels",
                self.gamma.len(),
                self.beta.len()
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!("epsilon {}", self.eps));
        }
        Ok(shape)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Input
    }
}
