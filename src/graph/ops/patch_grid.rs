//! A vision transformer's patch tokens laid back on their grid, the prefix tokens dropped: the
//! map a mean-pooled head averages (timm's `global_pool="avg"`: `x[:, k:].mean(1)`), and the view
//! a CAM takes of a token layer.
//!
//! Gradient: `∂x[k + i] = ∂y[i]`, zero for the prefix tokens (keeps nothing).

use super::{single, Keeps, OpRule, Shape};

/// `x[:, k:]` as an `h×w` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGrid {
    /// `k`: prefix tokens dropped.
    pub prefix: u32,
    /// Rows of patches.
    pub height: u32,
    /// Columns of patches.
    pub width: u32,
}

impl OpRule for PatchGrid {
    fn kind(&self) -> &'static str {
        "Slice"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, n, c) = single(inputs);
        let patches = u64::from(self.height) * u64::from(self.width);
        if h != 1 || u64::from(n) != u64::from(self.prefix) + patches || patches == 0 {
            return Err(format!(
                "a {h}×{n} map is not {} prefix tokens and {}×{} patches",
                self.prefix, self.height, self.width
            ));
        }
        Ok((self.height, self.width, c))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
