//! Average pooling (ONNX `AveragePool`, PyTorch `avg_pool2d`; floor or ceil mode): DenseNet's
//! transitions, Inception's pooled branches.
//!
//! Gradient: `∂y / divisor` spread over each window's input pixels (keeps nothing). The divisor
//! is the window's size inside the padded image (`count_include_pad`, PyTorch's default: the
//! whole window but in ceil mode's last one) or its pixels inside the image.

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
    /// Whether padded positions count in the divisor (never the part of a ceil-mode window
    /// past the padding, as PyTorch).
    pub count_include_pad: bool,
    /// Whether a last, partial window is kept (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
}

impl OpRule for AvgPool {
    fn kind(&self) -> &'static str {
        "AveragePool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        pool_shape(self.kernel, self.stride, self.pad, self.ceil_mode, inputs)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
