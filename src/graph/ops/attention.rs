//! Multi-head self-attention's core over a token sequence, from the fused QKV projection's
//! output (timm's `Attention`, torchvision's `nn.MultiheadAttention` with `in_proj`): the
//! channels of token `t` are `[q | k | v]`, each `heads` heads of `d` channels, and per head
//! `y_h = softmax(scale · q_h k_hᵀ) v_h`, the heads side by side in the output (the output
//! projection is a linear layer of its own).
//!
//! Gradient, per head, with `P = softmax(S)`, `S = scale · q kᵀ`, `∂P = ∂y vᵀ` and
//! `D_i = Σ_j P_ij ∂P_ij = ∂y_i · y_i`:
//! `∂v = Pᵀ ∂y`, `∂S = P ⊙ (∂P − D)`, `∂q = scale · ∂S k`, `∂k = scale · ∂Sᵀ q`. It keeps its
//! input, its output and each query's softmax normaliser (`max + log Σ exp`), from which `P` is
//! recomputed. Not a bias layer for FullGrad.

use super::{single, Keeps, OpRule, Shape};

/// The head width the kernels are compiled for (shaders/lib/attention.wgsl `HEAD_DIM4`), so that
/// a head's vectors stay in registers: every timm and torchvision ViT and DeiT but ViT-H.
pub const HEAD_DIM: u32 = 64;

/// The attention's shape and scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attention {
    /// Heads.
    pub heads: u32,
    /// The factor of the scores, `1/√d` in every model that does not say otherwise.
    pub scale: f32,
}

impl OpRule for Attention {
    fn kind(&self) -> &'static str {
        "Attention"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, n, c3) = single(inputs);
        if h != 1 {
            return Err(format!("reads a token sequence, not a {h}×{n} map"));
        }
        if self.heads == 0 || !c3.is_multiple_of(3 * self.heads) {
            return Err(format!(
                "{c3} channels are not query, key and value of {} heads",
                self.heads
            ));
        }
        let d = c3 / 3 / self.heads;
        if d != HEAD_DIM {
            return Err(format!("heads of {d} channels (heads of {HEAD_DIM} run)"));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!("scale {}", self.scale));
        }
        Ok((1, n, c3 / 3))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Input
    }
}
