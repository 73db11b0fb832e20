//! Fully connected layer (ONNX `Gemm` with a transposed weight, PyTorch `nn.Linear`) over one
//! vector per image.
//!
//! Gradient: `∂x = Wᵀ ∂y` (keeps nothing).

use super::{single, Keeps, OpRule, Shape};

/// `y = W x + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[out, in]`, PyTorch's layout; `in` indexes the vector in PyTorch's order.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
    /// Output features.
    pub out_features: u32,
}

impl OpRule for Linear {
    fn kind(&self) -> &'static str {
        "Gemm"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, w, features) = single(inputs);
        if (h, w) != (1, 1) {
            return Err(format!(
                "reads a {h}×{w}×{features} tensor, not one vector per image (flatten it first)"
            ));
        }
        let out = self.out_features as usize;
        if out == 0
            || Some(self.weight.len()) != out.checked_mul(features as usize)
            || self.bias.len() != out
        {
            return Err(format!(
                "a weight of {} values and a bias of {} for {features} inputs and {out} outputs",
                self.weight.len(),
                self.bias.len()
            ));
        }
        Ok((1, 1, self.out_features))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
