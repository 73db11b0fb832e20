//! Average pooling (ONNX `AveragePool`, PyTorch `avg_pool2d`; floor mode): DenseNet's
//! transitions, Inception's pooled branches.
//!
//! Gradient: `∂y / divisor` spread over each window's input pixels (keeps nothing). The divisor
//! is the window's size (`count_include_pad`, PyTorch's default) or its pixels inside the image.

use super::{single, Keeps, OpRule, Shape};

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
        let (h, w, c) = single(inputs);
        let axis = |n: u32| {
            let (pad, kernel) = (u64::from(self.pad), u64::from(self.kernel));
            (u64::from(n) + 2 * pad)
                .checked_sub(kernel)
                .filter(|_| self.stride > 0 && kernel > 0 && pad * 2 <= kernel)
                .map(|v| (v / u64::from(self.stride) + 1) as u32)
        };
        match (axis(h), axis(w)) {
            (Some(oh), Some(ow)) => Ok((oh, ow, c)),
            _ => Err(format!(
                "a {k}×{k} window with stride {} and padding {} does not fit {h}×{w}",
                self.stride,
                self.pad,
                k = self.kernel
            )),
        }
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
