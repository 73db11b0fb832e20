//! Fully connected layer (ONNX `Gemm` or `MatMul` with a transposed weight, PyTorch `nn.Linear`)
//! over the channels of each pixel: one vector per image (a classifier, after a pool or a
//! flatten), or every pixel of a map (ConvNeXt's `nn.Linear` between channels-last permutes, a
//! 1×1 conv that FullGrad does not count).
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
        Ok((h, w, self.out_features))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
