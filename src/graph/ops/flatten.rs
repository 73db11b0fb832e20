//! Flatten to one vector per image in PyTorch's order (channels, then rows, then columns): a
//! layout change only.
//!
//! Gradient: `∂x = ∂y` laid back out (keeps nothing). The engine stores tensors NHWC, so the
//! fusion pass permutes the weights of the linear layer that reads a flattened tensor instead of
//! moving any values.

use super::{single, Keeps, OpRule, Shape};

/// `y = x.flatten(1)` on an NCHW tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl OpRule for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, w, c) = single(inputs);
        h.checked_mul(w)
            .and_then(|hw| hw.checked_mul(c))
            .map(|n| (1, 1, n))
            .ok_or_else(|| format!("{h}×{w}×{c} values overflow"))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
