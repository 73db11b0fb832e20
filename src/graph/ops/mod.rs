//! The op vocabulary: one module per op, each owning its parameters, its shape rule, its gradient
//! rule (stated in its docs, one gradient per input, as PyTorch's `derivatives.yaml` states them),
//! what the backward pass keeps of its forward values, and the FullGrad bias it contributes.
//! Builders and importers produce these plain ops; the fusion pass ([`super::lower`]) turns them
//! into the engine's fused kernels.
//!
//! An op is registered once: its module below and its line in [`Op`] and `dispatch!`.

pub mod activation;
pub mod add;
pub mod attention;
pub mod avg_pool;
pub mod batch_norm;
pub mod concat;
pub mod conv;
pub mod flatten;
pub mod global_avg_pool;
pub mod layer_norm;
pub mod linear;
pub mod max_pool;
pub mod mul;
pub mod patch_grid;
pub mod scale;
pub mod select_tokens;
pub mod token_embed;

pub use activation::{Activation, ActivationKind};
pub use add::Add;
pub use attention::Attention;
pub use avg_pool::AvgPool;
pub use batch_norm::BatchNorm;
pub use concat::Concat;
pub use conv::Conv;
pub use flatten::Flatten;
pub use global_avg_pool::GlobalAvgPool;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use max_pool::MaxPool;
pub use mul::Mul;
pub use patch_grid::PatchGrid;
pub use scale::Scale;
pub use select_tokens::SelectTokens;
pub use token_embed::TokenEmbed;

/// One image's tensor shape, stored NHWC: (height, width, channels).
pub type Shape = (u32, u32, u32);

/// What the backward pass needs of an op's forward values to compute its input gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeps {
    /// Nothing: the gradient rule is linear in the output gradient with fixed coefficients.
    Nothing,
    /// The op's output (ReLU's mask `y > 0`, ReLU6's `0 < y < 6`).
    Output,
    /// The op's input (max pool's window maxima; the derivative of an activation that its
    /// output does not determine).
    Input,
}

/// What every op states about itself.
pub trait OpRule {
    /// The op's name as ONNX spells it (`Conv`, `BatchNormalization`, `Relu`, ...): in messages.
    fn kind(&self) -> &'static str;

    /// How many tensors it reads.
    fn arity(&self) -> usize {
        1
    }

    /// The shape it writes for inputs of these shapes, or why they do not fit.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String>;

    /// What its gradient rule reads of the forward pass.
    fn keeps(&self) -> Keeps;

    /// The bias FullGrad reads at this op's output (pytorch-grad-cam's `FullGrad` takes every
    /// `nn.Conv2d` and `nn.BatchNorm2d` with a bias), per output channel; `None`: not a bias
    /// layer.
    fn full_grad_bias(&self) -> Option<Vec<f32>> {
        None
    }
}

/// A plain op with its parameters.
#[derive(Clone, Debug)]
pub enum Op {
    /// See [`Conv`].
    Conv(Conv),
    /// See [`BatchNorm`].
    BatchNorm(BatchNorm),
    /// See [`Activation`].
    Activation(Activation),
    /// See [`Add`].
    Add(Add),
    /// See [`Mul`].
    Mul(Mul),
    /// See [`Scale`].
    Scale(Scale),
    /// See [`LayerNorm`].
    LayerNorm(LayerNorm),
    /// See [`Concat`].
    Concat(Concat),
    /// See [`MaxPool`].
    MaxPool(MaxPool),
    /// See [`AvgPool`].
    AvgPool(AvgPool),
    /// See [`GlobalAvgPool`].
    GlobalAvgPool(GlobalAvgPool),
    /// See [`Flatten`].
    Flatten(Flatten),
    /// See [`Linear`].
    Linear(Linear),
    /// See [`TokenEmbed`].
    TokenEmbed(TokenEmbed),
    /// See [`Attention`].
    Attention(Attention),
    /// See [`SelectTokens`].
    SelectTokens(SelectTokens),
    /// See [`PatchGrid`].
    PatchGrid(PatchGrid),
}

macro_rules! dispatch {
    ($self:ident, $op:ident => $body:expr) => {
        match $self {
            Op::Conv($op) => $body,
            Op::BatchNorm($op) => $body,
            Op::Activation($op) => $body,
            Op::Add($op) => $body,
            Op::Mul($op) => $body,
            Op::Scale($op) => $body,
            Op::LayerNorm($op) => $body,
            Op::Concat($op) => $body,
            Op::MaxPool($op) => $body,
            Op::AvgPool($op) => $body,
            Op::GlobalAvgPool($op) => $body,
            Op::Flatten($op) => $body,
            Op::Linear($op) => $body,
            Op::TokenEmbed($op) => $body,
            Op::Attention($op) => $body,
            Op::SelectTokens($op) => $body,
            Op::PatchGrid($op) => $body,
        }
    };
}

impl Op {
    /// The op's rules.
    pub fn rule(&self) -> &dyn OpRule {
        dispatch!(self, op => op)
    }
}

/// The output shape of a square pooling window of `kernel` with `stride` and symmetric `pad`
/// (PyTorch's floor mode; padding at most half the window) over `inputs`' one tensor.
pub(crate) fn pool_shape(
    kernel: u32,
    stride: u32,
    pad: u32,
    ceil_mode: bool,
    inputs: &[Shape],
) -> Result<Shape, String> {
    let (h, w, c) = single(inputs);
    let axis = |n: u32| {
        let (pad, kernel, s) = (u64::from(pad), u64::from(kernel), u64::from(stride));
        let span = (u64::from(n) + 2 * pad)
            .checked_sub(kernel)
            .filter(|_| stride > 0 && kernel > 0 && pad * 2 <= kernel)?;
        if !ceil_mode {
            return Some((span / s + 1) as u32);
        }
        // PyTorch's ceil mode: a last, partial window where one fits, as long as it starts
        // inside the input or its left padding.
        let mut out = span.div_ceil(s) + 1;
        if (out - 1) * s >= u64::from(n) + pad {
            out -= 1;
        }
        Some(out as u32)
    };
    match (axis(h), axis(w)) {
        (Some(oh), Some(ow)) => Ok((oh, ow, c)),
        _ => Err(format!(
            "a {kernel}×{kernel} window with stride {stride} and padding {pad} does not fit {h}×{w}"
        )),
    }
}

/// The one input shape of a single-input op (the graph checks the arity first).
pub(crate) fn single(inputs: &[Shape]) -> Shape {
    inputs[0]
}
