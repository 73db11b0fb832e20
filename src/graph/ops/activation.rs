//! Elementwise activations.
//!
//! Gradient: `∂x = act'(x) ⊙ ∂y`. For ReLU and ReLU6 the derivative is a mask that the output
//! alone determines (`y > 0`; `0 < y < 6`), so the backward pass keeps the output, and a conv or
//! linear layer before it can absorb it; every other activation's derivative needs its input,
//! which the backward pass keeps.

use super::{single, Keeps, OpRule, Shape};
use crate::model;

/// Which activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    /// `max(x, 0)` (ONNX `Relu`).
    Relu,
    /// `max(x, 0)` called as a function, not through an `nn.ReLU` module (see
    /// [`model::Activation::FunctionalRelu`]).
    FunctionalRelu,
    /// `min(max(x, 0), 6)` (ONNX `Clip` with bounds 0 and 6).
    Relu6,
    /// `1 / (1 + exp(−x))`.
    Sigmoid,
    /// `x · sigmoid(x)`.
    Silu,
    /// `min(max(x + 3, 0), 6) / 6` (ONNX `HardSigmoid` with α = 1/6, β = 1/2).
    HardSigmoid,
    /// `x · min(max(x + 3, 0), 6) / 6`.
    HardSwish,
    /// `x · Φ(x)`.
    Gelu,
    /// GELU's tanh approximation.
    GeluTanh,
    /// `x` where positive, else `slope · x`.
    LeakyRelu,
}

impl ActivationKind {
    /// The engine's code for it.
    pub fn plan(self) -> model::Activation {
        match self {
            ActivationKind::Relu => model::Activation::Relu,
            ActivationKind::FunctionalRelu => model::Activation::FunctionalRelu,
            ActivationKind::Relu6 => model::Activation::Relu6,
            ActivationKind::Sigmoid => model::Activation::Sigmoid,
            ActivationKind::Silu => model::Activation::Silu,
            ActivationKind::HardSigmoid => model::Activation::HardSigmoid,
            ActivationKind::HardSwish => model::Activation::HardSwish,
            ActivationKind::Gelu => model::Activation::Gelu,
            ActivationKind::GeluTanh => model::Activation::GeluTanh,
            ActivationKind::LeakyRelu => model::Activation::LeakyRelu,
        }
    }
}

/// `y = act(x)`, elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Activation {
    /// Which activation.
    pub kind: ActivationKind,
    /// [`ActivationKind::LeakyRelu`]'s slope (0 for the others).
    pub slope: f32,
}

impl Activation {
    /// `kind`, with no slope.
    pub fn new(kind: ActivationKind) -> Self {
        Self { kind, slope: 0.0 }
    }
}

impl OpRule for Activation {
    fn kind(&self) -> &'static str {
        match self.kind {
            ActivationKind::Relu | ActivationKind::FunctionalRelu => "Relu",
            ActivationKind::Relu6 => "Clip",
            ActivationKind::Sigmoid => "Sigmoid",
            ActivationKind::Silu => "SiLU",
            ActivationKind::HardSigmoid => "HardSigmoid",
            ActivationKind::HardSwish => "HardSwish",
            ActivationKind::Gelu | ActivationKind::GeluTanh => "Gelu",
            ActivationKind::LeakyRelu => "LeakyRelu",
        }
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        Ok(single(inputs))
    }

    fn keeps(&self) -> Keeps {
        if self.kind.plan().derivative_from_output() {
            Keeps::Output
        } else {
            Keeps::Input
        }
    }
}
