//! Concatenation along the channels (ONNX `Concat` with axis 1, `torch.cat(xs, 1)`): DenseNet's
//! growing feature maps, Inception's branches.
//!
//! Gradient: each input's is its slice of channels of `∂y` (keeps nothing); an input given twice
//! sums its slices.

use super::{Keeps, OpRule, Shape};

/// `y = cat(x₀, x₁, …)` over channels; every input of the same height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// How many tensors it joins.
    pub inputs: usize,
}

impl OpRule for Concat {
    fn kind(&self) -> &'static str {
        "Concat"
    }

    fn arity(&self) -> usize {
        self.inputs
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, w, _) = *inputs.first().ok_or("joins no tensor")?;
        let mut channels = 0u32;
        for &(ih, iw, c) in inputs {
            if (ih, iw) != (h, w) {
                return Err(format!("joins a {ih}×{iw} map to a {h}×{w} one"));
            }
            channels = channels.checked_add(c).ok_or("too many channels")?;
        }
        Ok((h, w, channels))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
