//! A constant factor per channel (ONNX `Mul` by an initializer of one value per channel;
//! ConvNeXt's layer scale `γ ⊙ x`).
//!
//! Gradient: `∂x = factor ⊙ ∂y` per channel (keeps nothing). Not a bias layer for FullGrad.

use super::{single, Keeps, OpRule, Shape};

/// `y = factor[c] · x`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// `[channels]`.
    pub factors: Vec<f32>,
}

impl OpRule for Scale {
    fn kind(&self) -> &'static str {
        "Mul"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let shape = single(inputs);
        if self.factors.len() != shape.2 as usize {
            return Err(format!(
                "{} factors over a tensor of {} channels",
                self.factors.len(),
                shape.2
            ));
        }
        if let Some(f) = self.factors.iter().find(|f| !f.is_finite()) {
            return Err(format!("a factor of {f}"));
        }
        Ok(shape)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
