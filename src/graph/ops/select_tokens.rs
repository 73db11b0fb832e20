//! The first `k` tokens of a sequence, side by side as one vector per image: the class token a
//! vision transformer's head reads (`x[:, 0]`), or DeiT's class and distillation tokens, whose
//! two heads' mean is one linear layer over both.
//!
//! Gradient: `∂x[t] = ∂y[t]` for `t < k`, zero for the other tokens (keeps nothing).

use super::{single, Keeps, OpRule, Shape};

/// `x[:, :k]` flattened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectTokens {
    /// `k`.
    pub count: u32,
}

impl OpRule for SelectTokens {
    fn kind(&self) -> &'static str {
        "Gather"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, n, c) = single(inputs);
        if h != 1 || self.count == 0 || self.count > n {
            return Err(format!(
                "{} tokens of a {h}×{n} map (a token sequence is 1×N)",
                self.count
            ));
        }
        Ok((1, 1, self.count * c))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
