//! Elementwise sum of two tensors of one shape (a residual connection).
//!
//! Gradient: `∂a = ∂y`, `∂b = ∂y` (the output gradient passes unchanged to both inputs).

use super::{Keeps, OpRule, Shape};

/// `y = a + b`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Add;

impl OpRule for Add {
    fn kind(&self) -> &'static str {
        "Add"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (a, b) = (inputs[0], inputs[1]);
        if a != b {
            return Err(format!(
                "adds a {}×{}×{} tensor to a {}×{}×{} one",
                a.0, a.1, a.2, b.0, b.1, b.2
            ));
        }
        Ok(a)
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
