//! Max pooling (ONNX `MaxPool`, PyTorch `max_pool2d`: padded positions never win; floor or ceil
//! mode).
//!
//! Gradient: `∂y` routed to each window's first maximum, which the input locates (keeps the
//! input).

use super::{pool_shape, Keeps, OpRule, Shape};

/// A square window with equal stride and symmetric padding in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool {
    /// Window side.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Padding on every side.
    pub pad: u32,
    /// Whether a last, partial window is kept (PyTorch's `ceil_mode`): windows may then run
    /// past the padding, where they read nothing.
    pub ceil_mode: bool,
}

impl OpRule for MaxPool {
    fn kind(&self) -> &'static str {
        "MaxPool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        pool_shape(self.kernel, self.stride, self.pad, self.ceil_mode, inputs)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Input
    }
}
