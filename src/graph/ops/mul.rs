//! Elementwise product with channel broadcast (ONNX `Mul` of an `[N, C, H, W]` tensor by an
//! `[N, C, 1, 1]` one, `x * s` in PyTorch): squeeze-and-excitation's gate.
//!
//! Gradient: `∂x = s ⊙ ∂y`; `∂s[c] = Σ over h, w of x[h, w, c] · ∂y[h, w, c]` where `s` is
//! broadcast, `x ⊙ ∂y` where it is not (keeps both inputs).

use super::{Keeps, OpRule, Shape};

/// `y = x ⊙ s`, `s` of `x`'s shape or one value per channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mul;

impl OpRule for Mul {
    fn kind(&self) -> &'static str {
        "Mul"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (x, s) = (inputs[0], inputs[1]);
        if s == x || s == (1, 1, x.2) {
            return Ok(x);
        }
        Err(format!(
            "multiplies a {}×{}×{} tensor by a {}×{}×{} one",
            x.0, x.1, x.2, s.0, s.1, s.2
        ))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Input
    }
}
