//! Global average pool: the spatial mean per channel (ONNX `GlobalAveragePool`, PyTorch's
//! `AdaptiveAvgPool2d(1)`).
//!
//! Gradient: `∂x[h, w, c] = ∂y[c] / (H·W)` at every pixel (keeps nothing).

use super::{single, Keeps, OpRule, Shape};

/// `y[c] = mean over h, w of x[h, w, c]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool;

impl OpRule for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "GlobalAveragePool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        Ok((1, 1, single(inputs).2))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
