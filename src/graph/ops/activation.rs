//! Elementwise activations.
//!
//! Gradient: `∂x = act'(x) ⊙ ∂y`. For ReLU and ReLU6 the derivative is a mask that the output
//! alone determines (`y > 0`; `0 < y < 6`), so the backward pass keeps the output.

use super::{single, Keeps, OpRule, Shape};

/// Which activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    /// `max(x, 0)` (ONNX `Relu`).
    Relu,
    /// `min(max(x, 0), 6)` (ONNX `Clip` with bounds 0 and 6).
    Relu6,
}

/// `y = act(x)`, elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activation {
    /// Which activation.
    pub kind: ActivationKind,
}

impl OpRule for Activation {
    fn kind(&self) -> &'static str {
        match self.kind {
            ActivationKind::Relu => "Relu",
            ActivationKind::Relu6 => "Clip",
        }
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        Ok(single(inputs))
    }

    fn keeps(&self) -> Keeps {
        match self.kind {
            ActivationKind::Relu | ActivationKind::Relu6 => Keeps::Output,
        }
    }
}
