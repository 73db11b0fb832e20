//! Average pooling (ONNX `AveragePool`, PyTorch `avg_pool2d`; floor mode): DenseNet's
//! transitions, Inception's pooled branches.
//!
//! Gradient: `∂y / divisor` spread over each window's input pixels (keeps nothing). The divisor
//! is the window's size (`count_include_pad`, PyTorch's default) or its pixels inside the image.

use super::{pool_shape, Keeps, OpRule, Shape};

/// A square window with equal stride and symmetric padding in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool {
    /// Window side.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Padding on every side.
    pub pad: u32,
    /// Whether padded positions count in the divisor.
    pub count_include_pad: bool,
}

impl OpRule for AvgPool {
    fn kind(&self) -> &'static str {
        "AveragePool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        pool_shape(self.kernel, self.stride, self.pad, inputs)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
