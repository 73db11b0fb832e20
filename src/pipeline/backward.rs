//! The targeted backward pass as a plan derived from the graph by per-op gradient rules: from
//! the target logit back to the requested layers (and, on request, the input image) and no
//! further, with gradient buffers shared by liveness. No parameter gradients are computed.
//!
//! The rules, op by op (each states only its input gradient):
//! - the classifier: `∂logit_c/∂x = W[c]` (the seed of the pass); when it reads a global average
//!   pool, `W[c] / (h·w)` at every pixel of the pool's input, in the same kernel;
//! - a hidden linear layer with activation `act`: `∂x = Wᵀ(act'(y) ⊙ ∂y)`;
//! - conv with activation `act` and no residual: `∂x = convᵀ(act'(y) ⊙ ∂y)`, the mask fused in the
//!   conv's gradient kernel;
//! - conv adding a residual `r` before its activation (ResNet): `g = act'(y) ⊙ ∂y` is written once,
//!   then `∂x = convᵀ(g)` and `∂r += g`;
//! - conv adding `r` after no activation (MBConv skip): `∂x = convᵀ(∂y)`, `∂r += ∂y`;
//! - max pool: `∂y` routed to each window's first maximum;
//! - average pool: `∂y / divisor` spread over each window; a global average pool inside the
//!   network (before a hidden linear layer): `∂y / (h·w)` at every pixel;
//! - concatenation: each input's slice of `∂y`;
//! - LayerNorm over the channels: `∂x = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(var + ε)`,
//!   `g = γ ⊙ ∂y`, `x̂` recomputed from its input;
//! - an elementwise op (a BatchNorm and/or an activation): `∂x = scale ⊙ act'(z) ⊙ ∂y`, with
//!   `z = x · scale + bias` recomputed from its input `x`;
//! - squeeze-and-excitation `y = x ⊙ gate(e)`, `e = W₂ act(q) + b₂`, `q = W₁ mean(x) + b₁`: the
//!   gate's gradient `∂e = gate'(e) ⊙ Σ_pixels x ⊙ ∂y`, then `∂q = act'(q) ⊙ W₂ᵀ∂e`, then the
//!   pooled vector's `W₁ᵀ∂q / pixels`, added at every pixel to the direct path's `gate(e) ⊙ ∂y`.
//!
//! A tensor read by several ops sums their contributions: an identity contribution (a skip
//! connection) is the same buffer as the gradient it copies, and each op's contribution adds the
//! sum so far (`extra`) as it writes, so no step ever adds two buffers on its own.

use std::collections::HashMap;

use super::forward::{attention_params, push_token_rows, Forward};
use super::steps::{BatchShape, Steps};
use crate::error::{Error, Result};
use crate::gpu::kernels::{conv2d_grad_variant, depthwise_grad_variant, launch};
use crate::gpu::params::{
    ActivationGradParams, AvgPoolParams, ConcatParams, ConvGeneralParams, ConvGradParams,
    ConvParams, DepthwiseGradParams, ElementwiseGradParams, LayerNormParams, LinearGradParams,
    MaxPoolGradParams, PointwiseGradParams, PoolGradParams, SqueezeExciteParams,
};
use crate::gpu::GpuContext;
use crate::model::{Activation, ConvBackward, ConvKind, Model, Op};

/// One kernel launch of the backward pass. Gradients are named by value (see
/// [`BackwardPlan::value_tensor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GradStep {
    /// `to = act'(forward) ⊙ from`, elementwise.
    Mask {
        /// The activation's output tensor (forward value).
        forward: usize,
        /// The gradient read.
        from: usize,
        /// The gradient written.
        to: usize,
        /// The activation.
        activation: Activation,
    },
    /// A conv's input gradient: `grad_in = convᵀ(mask(grad_out)) (+ extra)`.
    Conv {
        /// Index into [`Model::convs`].
        conv: usize,
        /// The conv's output tensor (its forward value gives the mask).
        output: usize,
        /// The conv's input tensor.
        input: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass (another consumer's contribution).
        extra: Option<usize>,
        /// The activation whose derivative masks `grad_out` ([`Activation::None`]: none).
        mask: Activation,
        /// Padding before the first row and column.
        pad: (u32, u32),
    },
    /// A hidden linear layer's input gradient: `grad_in = Wᵀ(mask(grad_out))`.
    Linear {
        /// Index into [`Model::linears`].
        linear: usize,
        /// The layer's output tensor (its forward value gives the mask).
        output: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// The layer's activation, whose derivative masks `grad_out`.
        mask: Activation,
    },
    /// An elementwise op's input gradient: `grad_in = scale ⊙ act'(z) ⊙ grad_out (+ extra)`.
    Elementwise {
        /// Index into [`Model::elementwise`].
        op: usize,
        /// The op's input tensor (its forward value gives `z`).
        input: usize,
        /// The op's output tensor (its forward value gives the mask of a ReLU or ReLU6).
        output: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// An average pool's input gradient.
    AvgPool {
        /// The pool's input tensor.
        input: usize,
        /// The pool's output tensor.
        output: usize,
        /// Window side, stride, padding and whether padding counts in the divisor.
        window: (u32, u32, u32, bool),
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// A LayerNorm's input gradient.
    LayerNorm {
        /// Index into [`Model::layer_norms`].
        op: usize,
        /// The op's input tensor (its forward value gives the normalised values).
        input: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// A global average pool's input gradient (a pool inside the network: the classifier's
    /// own is part of the seed).
    GlobalAvgPool {
        /// The pool's input tensor.
        input: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// One input's gradient of a concatenation: its channels of the output gradient.
    ConcatSlice {
        /// The concatenation's output tensor.
        output: usize,
        /// The input tensor.
        input: usize,
        /// The input's first channel in the output.
        offset: u32,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// A squeeze-and-excitation block's gradient at its expansion's output:
    /// `grad_in = gate'(excited) ⊙ Σ_pixels x ⊙ grad_out` (per image and channel).
    SeGate {
        /// Index into [`Model::squeeze_excite`].
        se: usize,
        /// The block's input tensor x.
        input: usize,
        /// The block's `excited` tensor (before the gate).
        excited: usize,
        /// The block's output gradient read.
        grad_out: usize,
        /// The gradient of `excited` written.
        grad_in: usize,
    },
    /// The block's gradient at its reduction's output:
    /// `grad_in = act'(squeezed) ⊙ expandᵀ grad_out`.
    SeExcite {
        /// Index into [`Model::squeeze_excite`].
        se: usize,
        /// The block's input tensor x (its shape).
        input: usize,
        /// The block's `squeezed` tensor (before the activation).
        squeezed: usize,
        /// The gradient of `excited` read.
        grad_out: usize,
        /// The gradient of `squeezed` written.
        grad_in: usize,
    },
    /// The block's gradient at its pooled vector, spread over the pixels:
    /// `grad_in = reduceᵀ grad_out / pixels`.
    SeSqueeze {
        /// Index into [`Model::squeeze_excite`].
        se: usize,
        /// The block's input tensor x (its pixels).
        input: usize,
        /// The gradient of `squeezed` read.
        grad_out: usize,
        /// The gradient of `pooled` (per pixel) written.
        grad_in: usize,
    },
    /// The block's input gradient: `grad_in = grad_out ⊙ gate(excited) + grad_pooled (+ extra)`.
    SeScale {
        /// Index into [`Model::squeeze_excite`].
        se: usize,
        /// The block's input tensor x.
        input: usize,
        /// The block's `excited` tensor (before the gate).
        excited: usize,
        /// The block's output gradient read.
        grad_out: usize,
        /// The gradient of `pooled` per pixel read.
        grad_pooled: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// Tokens of the output gradient copied into the input gradient, the other tokens zero: a
    /// token selection's or a token embedding's input gradient.
    TokenRows {
        /// Channels of each token.
        channels: u32,
        /// Tokens per image of the output gradient and of the input gradient.
        tokens: (u32, u32),
        /// The first token copied, in the output gradient and in the input gradient.
        first: (u32, u32),
        /// Tokens copied.
        count: u32,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// Self-attention's input gradient (queries, keys and values), in two launches.
    Attention {
        /// Index into [`Model::attentions`].
        op: usize,
        /// The attention's input tensor (the QKV projection's output).
        input: usize,
        /// The attention's output tensor.
        output: usize,
        /// Its softmax normalisers.
        stats: usize,
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
    /// A max pool's input gradient.
    MaxPool {
        /// The pool's input tensor (its forward value locates each window's maximum).
        input: usize,
        /// The pool's output tensor.
        output: usize,
        /// Window side, stride and padding.
        window: (u32, u32, u32),
        /// The output gradient read.
        grad_out: usize,
        /// The input gradient written.
        grad_in: usize,
        /// A gradient of the input added in the same pass.
        extra: Option<usize>,
    },
}

impl GradStep {
    /// The gradient values this step reads.
    fn reads(&self) -> Vec<usize> {
        match self {
            GradStep::Mask { from, .. } => vec![*from],
            GradStep::Linear { grad_out, .. }
            | GradStep::SeGate { grad_out, .. }
            | GradStep::SeExcite { grad_out, .. }
            | GradStep::SeSqueeze { grad_out, .. } => vec![*grad_out],
            GradStep::SeScale {
                grad_out,
                grad_pooled,
                extra,
                ..
            } => [*grad_out, *grad_pooled]
                .into_iter()
                .chain(*extra)
                .collect(),
            GradStep::Conv {
                grad_out, extra, ..
            }
            | GradStep::Elementwise {
                grad_out, extra, ..
            }
            | GradStep::AvgPool {
                grad_out, extra, ..
            }
            | GradStep::GlobalAvgPool {
                grad_out, extra, ..
            }
            | GradStep::LayerNorm {
                grad_out, extra, ..
            }
            | GradStep::ConcatSlice {
                grad_out, extra, ..
            }
            | GradStep::TokenRows {
                grad_out, extra, ..
            }
            | GradStep::Attention {
                grad_out, extra, ..
            }
            | GradStep::MaxPool {
                grad_out, extra, ..
            } => std::iter::once(*grad_out).chain(*extra).collect(),
        }
    }

    /// The gradient value this step writes.
    fn writes(&self) -> usize {
        match self {
            GradStep::Mask { to, .. } => *to,
            GradStep::Conv { grad_in, .. }
            | GradStep::Linear { grad_in, .. }
            | GradStep::Elementwise { grad_in, .. }
            | GradStep::AvgPool { grad_in, .. }
            | GradStep::GlobalAvgPool { grad_in, .. }
            | GradStep::LayerNorm { grad_in, .. }
            | GradStep::ConcatSlice { grad_in, .. }
            | GradStep::TokenRows { grad_in, .. }
            | GradStep::Attention { grad_in, .. }
            | GradStep::SeGate { grad_in, .. }
            | GradStep::SeExcite { grad_in, .. }
            | GradStep::SeSqueeze { grad_in, .. }
            | GradStep::SeScale { grad_in, .. }
            | GradStep::MaxPool { grad_in, .. } => *grad_in,
        }
    }
}

/// The op whose biases a [`BiasTap`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiasLayer {
    /// Index into [`Model::convs`]: the conv's own bias and its folded BatchNorm's.
    Conv(usize),
    /// Index into [`Model::elementwise`]: a BatchNorm that follows no conv (DenseNet's
    /// pre-activation ones), its bias `β − μ·γ/√(σ² + ε)`.
    Elementwise(usize),
}

/// The output gradient of an op with biases (a conv, a standalone BatchNorm), complete and live
/// at a point of the backward pass: where work that reads every bias layer's gradient
/// (FullGrad's bias gradients) is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BiasTap {
    /// Recorded after this many of [`BackwardPlan::steps`].
    pub after: usize,
    /// The op.
    pub layer: BiasLayer,
    /// The op's output tensor (its forward value gives the activation's mask).
    pub output: usize,
    /// The gradient value at the output, after the activation (mask it by the conv's
    /// activation for the gradient before it).
    pub value: usize,
}

/// Everything the backward pass runs for a set of target tensors.
#[derive(Clone, Debug)]
pub struct BackwardPlan {
    /// The tensors whose gradients are wanted, kept to the end of the pass.
    pub targets: Vec<usize>,
    /// The tensor whose gradient (value 0) comes straight from the logit: the input of the
    /// global average pool the classifier reads, or the classifier's own 1×1 input.
    pub pooled_input: usize,
    /// Kernel launches after the seed, in execution order.
    pub steps: Vec<GradStep>,
    /// For each gradient value, the tensor it is (part of) the gradient of.
    pub value_tensor: Vec<usize>,
    /// For each tensor whose full gradient is computed, its value.
    pub grad_of: HashMap<usize, usize>,
    /// For each gradient value, the buffer it lives in.
    pub slot_of: Vec<usize>,
    /// Number of gradient buffers.
    pub slots: usize,
    /// Values per image of the largest gradient (each buffer's size).
    pub slot_len: usize,
    /// Guided backpropagation: every ReLU's backward passes only positive gradients where its
    /// input was positive ([`BackwardPlan::guided`]).
    pub guided: bool,
    /// Every op with biases whose output gradient the pass computes, in the order the pass
    /// completes them (from the classifier back), each at the step after which its gradient is
    /// still live.
    pub bias_taps: Vec<BiasTap>,
}

/// shaders/lib/activation.wgsl's code for the guided ReLU, used in backward passes only.
const GUIDED_RELU: u32 = 3;

/// The state of the reverse walk that derives a plan: gradient values made so far, the
/// contributions each tensor has received, and the steps.
struct Walk<'a> {
    model: &'a Model,
    /// For each gradient value, the tensor it is (part of) the gradient of.
    value_tensor: Vec<usize>,
    /// Per tensor, the values that sum to its gradient so far (an op's contribution, or the
    /// skip connections that copy another gradient).
    pending: HashMap<usize, Vec<usize>>,
    grad_of: HashMap<usize, usize>,
    steps: Vec<GradStep>,
    bias_taps: Vec<BiasTap>,
}

impl Walk<'_> {
    fn new_value(&mut self, tensor: usize) -> usize {
        self.value_tensor.push(tensor);
        self.value_tensor.len() - 1
    }

    /// The sum of `t`'s contributions so far: one value, or none; more is unsupported.
    fn take(&mut self, t: usize) -> Result<Option<usize>> {
        match self.pending.remove(&t).unwrap_or_default().as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(*v)),
            _ => Err(Error::UnsupportedModel {
                path: self.model.source.clone(),
                reason: format!(
                    "`{}` receives several skip connections, which no kernel sums",
                    self.model.tensors[t].name
                ),
            }),
        }
    }

    /// `t`'s full gradient, now that every op reading `t` has contributed (none: `t` needs no
    /// gradient).
    fn output_grad(&mut self, t: usize) -> Result<Option<usize>> {
        let g = self.take(t)?;
        if let Some(g) = g {
            self.grad_of.insert(t, g);
        }
        Ok(g)
    }

    /// A new contribution to `t`'s gradient: the sum so far (added by the step that writes it)
    /// and the value the step writes, which becomes the sum.
    fn input_grad(&mut self, t: usize) -> Result<(Option<usize>, usize)> {
        let extra = self.take(t)?;
        let grad_in = self.new_value(t);
        self.pending.insert(t, vec![grad_in]);
        Ok((extra, grad_in))
    }
}

impl Walk<'_> {
    /// The step of an op reading one tensor: `output`'s full gradient taken, and where `input`
    /// needs a gradient (`reach`), the step `make(grad_out, grad_in, extra)` that writes it.
    fn single_input(
        &mut self,
        input: usize,
        output: usize,
        reach: &[bool],
        make: impl FnOnce(usize, usize, Option<usize>) -> GradStep,
    ) -> Result<()> {
        let Some(grad_out) = self.output_grad(output)? else {
            return Ok(());
        };
        if reach[input] {
            let (extra, grad_in) = self.input_grad(input)?;
            self.steps.push(make(grad_out, grad_in, extra));
        }
        Ok(())
    }
}

impl BackwardPlan {
    /// The plan made guided, as pytorch-grad-cam's `GuidedBackpropReLUModel`: its ReLUs pass
    /// back only positive gradients, and only where their input was positive. ReLU6 (Lite,
    /// MobileNetV2) is left alone, as the reference replaces only `nn.ReLU` modules.
    pub fn guided(mut self) -> Self {
        self.guided = true;
        self
    }

    /// The shader code of activation `a`'s derivative in this plan.
    fn mask_code(&self, a: Activation) -> u32 {
        if self.guided && a == Activation::Relu {
            GUIDED_RELU
        } else {
            a as u32
        }
    }

    /// Plans the backward pass from the logits to every tensor of `targets` (tensor indices,
    /// the model's input allowed).
    pub fn new(model: &Model, targets: &[usize]) -> Result<Self> {
        let unsupported = |reason: String| Error::UnsupportedModel {
            path: model.source.clone(),
            reason,
        };
        let name = |t: usize| model.tensors[t].name.clone();
        // The seed: the classifier's input, or the input of the global average pool it reads.
        let features = model
            .classifier_input()
            .ok_or_else(|| unsupported("the network has no classifier".into()))?;
        let pool = model.pooled_map();
        let pooled_input = match pool {
            Some(input) => input,
            None if model.tensors[features].height * model.tensors[features].width == 1 => features,
            None => {
                return Err(unsupported(
                    "the classifier reads a spatial map without pooling it".into(),
                ))
            }
        };
        let pooled = if pool.is_some() {
            features
        } else {
            features + 1
        };
        // Tensors downstream of a target: the only ones whose gradients are needed.
        let mut reach = vec![false; model.tensors.len()];
        for &t in targets {
            if t >= pooled {
                return Err(unsupported(format!(
                    "layer `{}` comes after the pooled feature map",
                    name(t)
                )));
            }
            reach[t] = true;
        }
        for op in &model.ops {
            match *op {
                Op::Conv {
                    input,
                    output,
                    residual,
                    ..
                } => reach[output] |= reach[input] || residual.is_some_and(|r| reach[r]),
                Op::MaxPool { input, output, .. }
                | Op::AvgPool { input, output, .. }
                | Op::GlobalAvgPool { input, output }
                | Op::Elementwise { input, output, .. }
                | Op::SqueezeExcite { input, output, .. }
                | Op::LayerNorm { input, output, .. }
                | Op::TokenEmbed { input, output, .. }
                | Op::Attention { input, output, .. }
                | Op::TokenRows { input, output, .. }
                | Op::Linear { input, output, .. } => reach[output] |= reach[input],
                Op::Concat { ref inputs, output } => {
                    reach[output] |= inputs.iter().any(|&i| reach[i])
                }
                Op::Preprocess { .. } => {}
            }
        }

        let mut walk = Walk {
            model,
            value_tensor: vec![pooled_input],
            pending: HashMap::from([(pooled_input, vec![0])]),
            grad_of: HashMap::new(),
            steps: Vec::new(),
            bias_taps: Vec::new(),
        };
        for op in model.ops.iter().rev() {
            match *op {
                Op::Conv {
                    conv,
                    input,
                    output,
                    residual,
                    pad_top,
                    pad_left,
                } => {
                    let Some(g) = walk.output_grad(output)? else {
                        continue;
                    };
                    let c = &model.convs[conv];
                    let first_reader = walk.steps.len();
                    let mut grad_out = g;
                    let mut mask = c.activation;
                    if let Some(r) = residual.filter(|r| reach[*r]) {
                        if c.add_before_activation && c.activation != Activation::None {
                            // The masked gradient feeds both the conv and the shortcut.
                            grad_out = walk.new_value(output);
                            walk.steps.push(GradStep::Mask {
                                forward: output,
                                from: g,
                                to: grad_out,
                                activation: c.activation,
                            });
                            mask = Activation::None;
                        }
                        walk.pending.entry(r).or_default().push(grad_out);
                    }
                    if reach[input] {
                        if c.backward(pad_top, pad_left) == ConvBackward::Transposed
                            && mask != Activation::None
                        {
                            // A forward conv applies no mask to what it reads: masked first.
                            let masked = walk.new_value(output);
                            walk.steps.push(GradStep::Mask {
                                forward: output,
                                from: grad_out,
                                to: masked,
                                activation: mask,
                            });
                            (grad_out, mask) = (masked, Activation::None);
                        }
                        let (extra, grad_in) = walk.input_grad(input)?;
                        walk.steps.push(GradStep::Conv {
                            conv,
                            output,
                            input,
                            grad_out,
                            grad_in,
                            extra,
                            mask,
                            pad: (pad_top, pad_left),
                        });
                    }
                    // After the first step reading `g` (which it outlives until then), or at
                    // once when no step reads it.
                    walk.bias_taps.push(BiasTap {
                        after: (first_reader + 1).min(walk.steps.len()),
                        layer: BiasLayer::Conv(conv),
                        output,
                        value: g,
                    });
                }
                Op::MaxPool {
                    input,
                    output,
                    kernel,
                    stride,
                    pad,
                } => walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                    GradStep::MaxPool {
                        input,
                        output,
                        window: (kernel, stride, pad),
                        grad_out,
                        grad_in,
                        extra,
                    }
                })?,
                Op::AvgPool {
                    input,
                    output,
                    kernel,
                    stride,
                    pad,
                    count_include_pad,
                } => walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                    GradStep::AvgPool {
                        input,
                        output,
                        window: (kernel, stride, pad, count_include_pad),
                        grad_out,
                        grad_in,
                        extra,
                    }
                })?,
                Op::Concat { ref inputs, output } => {
                    let Some(grad_out) = walk.output_grad(output)? else {
                        continue;
                    };
                    let mut offset = 0;
                    for &input in inputs {
                        if reach[input] {
                            let (extra, grad_in) = walk.input_grad(input)?;
                            walk.steps.push(GradStep::ConcatSlice {
                                output,
                                input,
                                offset,
                                grad_out,
                                grad_in,
                                extra,
                            });
                        }
                        offset += model.tensors[input].channels;
                    }
                }
                Op::Elementwise { op, input, output } => {
                    let Some(grad_out) = walk.output_grad(output)? else {
                        continue;
                    };
                    let first_reader = walk.steps.len();
                    if reach[input] {
                        let (extra, grad_in) = walk.input_grad(input)?;
                        walk.steps.push(GradStep::Elementwise {
                            op,
                            input,
                            output,
                            grad_out,
                            grad_in,
                            extra,
                        });
                    }
                    if model.elementwise[op].full_grad_bias.is_some() {
                        walk.bias_taps.push(BiasTap {
                            after: (first_reader + 1).min(walk.steps.len()),
                            layer: BiasLayer::Elementwise(op),
                            output,
                            value: grad_out,
                        });
                    }
                }
                Op::SqueezeExcite {
                    se,
                    input,
                    output,
                    pooled,
                    squeezed,
                    excited,
                } => {
                    let Some(grad_out) = walk.output_grad(output)? else {
                        continue;
                    };
                    if reach[input] {
                        let grad_excited = walk.new_value(excited);
                        walk.steps.push(GradStep::SeGate {
                            se,
                            input,
                            excited,
                            grad_out,
                            grad_in: grad_excited,
                        });
                        let grad_squeezed = walk.new_value(squeezed);
                        walk.steps.push(GradStep::SeExcite {
                            se,
                            input,
                            squeezed,
                            grad_out: grad_excited,
                            grad_in: grad_squeezed,
                        });
                        let grad_pooled = walk.new_value(pooled);
                        walk.steps.push(GradStep::SeSqueeze {
                            se,
                            input,
                            grad_out: grad_squeezed,
                            grad_in: grad_pooled,
                        });
                        let (extra, grad_in) = walk.input_grad(input)?;
                        walk.steps.push(GradStep::SeScale {
                            se,
                            input,
                            excited,
                            grad_out,
                            grad_pooled,
                            grad_in,
                            extra,
                        });
                    }
                }
                Op::Linear {
                    linear,
                    input,
                    output,
                } => {
                    let Some(grad_out) = walk.output_grad(output)? else {
                        continue;
                    };
                    if reach[input] {
                        let (extra, grad_in) = walk.input_grad(input)?;
                        if extra.is_some() {
                            return Err(unsupported(format!(
                                "`{}` feeds a linear layer and another op",
                                name(input)
                            )));
                        }
                        walk.steps.push(GradStep::Linear {
                            linear,
                            output,
                            grad_out,
                            grad_in,
                            mask: model.linears[linear].activation,
                        });
                    }
                }
                Op::LayerNorm { op, input, output } => {
                    walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                        GradStep::LayerNorm {
                            op,
                            input,
                            grad_out,
                            grad_in,
                            extra,
                        }
                    })?
                }
                Op::TokenEmbed { op, input, output } => {
                    let prefix = model.token_embeds[op].prefix;
                    let (tokens, channels) =
                        (model.tensors[output].width, model.tensors[output].channels);
                    walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                        GradStep::TokenRows {
                            channels,
                            tokens: (tokens, tokens - prefix),
                            first: (prefix, 0),
                            count: tokens - prefix,
                            grad_out,
                            grad_in,
                            extra,
                        }
                    })?
                }
                Op::TokenRows {
                    input,
                    output,
                    first,
                    count,
                } => {
                    let (tokens, channels) =
                        (model.tensors[input].width, model.tensors[input].channels);
                    walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                        GradStep::TokenRows {
                            channels,
                            tokens: (count, tokens),
                            first: (0, first),
                            count,
                            grad_out,
                            grad_in,
                            extra,
                        }
                    })?
                }
                Op::Attention {
                    op,
                    input,
                    output,
                    stats,
                } => walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                    GradStep::Attention {
                        op,
                        input,
                        output,
                        stats,
                        grad_out,
                        grad_in,
                        extra,
                    }
                })?,
                Op::GlobalAvgPool { input, output } => {
                    walk.single_input(input, output, &reach, |grad_out, grad_in, extra| {
                        GradStep::GlobalAvgPool {
                            input,
                            grad_out,
                            grad_in,
                            extra,
                        }
                    })?
                }
                Op::Preprocess { .. } => {}
            }
        }
        walk.output_grad(model.input)?;
        let Walk {
            value_tensor,
            grad_of,
            steps,
            bias_taps,
            ..
        } = walk;
        for &t in targets {
            if !grad_of.contains_key(&t) {
                return Err(unsupported(format!(
                    "cannot route the gradient to layer `{}`",
                    name(t)
                )));
            }
        }

        // Liveness: a value is born at the step writing it and dies after the last step reading
        // it; the targets' live to the end. Step -1 is the seed.
        let mut last_use = vec![-1i64; value_tensor.len()];
        for (s, step) in steps.iter().enumerate() {
            for v in step.reads() {
                last_use[v] = s as i64;
            }
        }
        for t in targets {
            last_use[grad_of[t]] = i64::MAX;
        }
        for tap in &bias_taps {
            let v = &mut last_use[tap.value];
            *v = (*v).max(tap.after as i64 - 1);
        }
        let mut slot_of = vec![usize::MAX; value_tensor.len()];
        let mut free_after: Vec<i64> = Vec::new();
        let births = std::iter::once((0usize, -1i64)).chain(
            steps
                .iter()
                .enumerate()
                .map(|(s, st)| (st.writes(), s as i64)),
        );
        for (value, at) in births {
            let slot = match free_after.iter().position(|f| *f < at) {
                Some(s) => s,
                None => {
                    free_after.push(0);
                    free_after.len() - 1
                }
            };
            free_after[slot] = last_use[value].max(at);
            slot_of[value] = slot;
        }
        let slot_len = value_tensor
            .iter()
            .map(|t| model.tensors[*t].len())
            .max()
            .unwrap_or(0);
        Ok(Self {
            targets: targets.to_vec(),
            pooled_input,
            steps,
            value_tensor,
            grad_of,
            slots: free_after.len(),
            slot_of,
            slot_len,
            guided: false,
            bias_taps,
        })
    }

    /// The buffer holding the full gradient of tensor `t`, if the plan computes it.
    pub fn slot_of_tensor(&self, t: usize) -> Option<usize> {
        self.grad_of.get(&t).map(|v| self.slot_of[*v])
    }
}

/// Appends the launch of one backward step to `steps`.
pub(super) fn push_grad_step(
    ctx: &GpuContext,
    forward: &Forward,
    plan: &BackwardPlan,
    grads: &[wgpu::Buffer],
    steps: &mut Steps,
    step: &GradStep,
) -> Result<()> {
    let gpu_model = forward.gpu_model();
    let model = &gpu_model.model;
    let grad = |value: usize| &grads[plan.slot_of[value]];
    match *step {
        GradStep::Mask {
            forward: y,
            from,
            to,
            activation,
        } => {
            let len4 = model.tensors[y].len() as u32 / 4;
            let activation = plan.mask_code(activation);
            steps.push(
                ctx,
                launch::ActivationGrad {
                    forward: forward.tensor(y),
                    from_grad: grad(from),
                    to_grad: grad(to),
                },
                move |s| ActivationGradParams {
                    len4: s.images * len4,
                    activation,
                    _pad: [0; 2],
                },
            );
        }
        GradStep::Conv {
            conv,
            output,
            input,
            grad_out,
            grad_in,
            extra,
            mask,
            pad: (pad_top, pad_left),
        } => {
            let c = &model.convs[conv];
            let (i, o) = (model.tensors[input].clone(), model.tensors[output].clone());
            // Without an extra gradient the binding still needs a buffer; it is never read.
            let add_extra = u32::from(extra.is_some());
            let extra = grad(extra.unwrap_or(grad_out));
            let mask = plan.mask_code(mask);
            let (kernel, stride) = (c.kernel, c.stride);
            let forward_out = forward.tensor(output);
            let backward = c.backward(pad_top, pad_left);
            if backward == ConvBackward::Transposed {
                // The input gradient as a forward conv over the (already masked) output
                // gradient, its residual the gradient the input already has.
                let weight = gpu_model.convs_torch[conv].as_ref().ok_or_else(|| {
                    Error::InvalidRequest(format!("{}: no transposed weight", c.name))
                })?;
                if mask != 0 {
                    return Err(Error::Internal(format!(
                        "{}: the transposed conv's output gradient is not masked",
                        c.name
                    )));
                }
                let has_residual = u32::from(add_extra == 1);
                let same = kernel / 2;
                steps.push_variant(
                    ctx,
                    ctx.kernels.conv2d_variant(kernel, 1, o.channels),
                    launch::Conv2d {
                        input: grad(grad_out),
                        input4: grad(grad_out),
                        weight,
                        bias: &gpu_model.zeros,
                        residual: extra,
                        output: grad(grad_in),
                    },
                    move |s| ConvParams {
                        batch: s.images,
                        in_h: o.height,
                        in_w: o.width,
                        in_c: o.channels,
                        out_h: i.height,
                        out_w: i.width,
                        out_c: i.channels,
                        kernel,
                        stride: 1,
                        pad_top: same,
                        pad_left: same,
                        activation: 0,
                        has_residual,
                        _pad: [0; 3],
                    },
                );
                return Ok(());
            }
            let kind = if backward == ConvBackward::General {
                ConvKind::General
            } else {
                c.kind
            };
            match kind {
                ConvKind::Pointwise => {
                    let weight = gpu_model.convs_torch[conv].as_ref().ok_or_else(|| {
                        Error::InvalidRequest(format!("{}: no transposed weight", c.name))
                    })?;
                    steps.push_variant(
                        ctx,
                        ctx.kernels.pointwise_grad_variant(),
                        launch::PointwiseConvGrad {
                            grad_out: grad(grad_out),
                            forward_out,
                            weight,
                            extra,
                            grad_in: grad(grad_in),
                        },
                        move |s| PointwiseGradParams {
                            rows: s.images * o.height * o.width,
                            in_channels: i.channels,
                            out_channels: o.channels,
                            mask,
                            add_extra,
                            _pad: [0; 3],
                        },
                    );
                }
                ConvKind::General => {
                    let weight = gpu_model.convs_torch[conv].as_ref().ok_or_else(|| {
                        Error::InvalidRequest(format!("{}: no gradient-layout weight", c.name))
                    })?;
                    let g = c.geometry;
                    steps.push(
                        ctx,
                        launch::ConvGeneralGrad {
                            grad_out: grad(grad_out),
                            forward_out,
                            weight,
                            extra,
                            grad_in: grad(grad_in),
                        },
                        move |s| ConvGeneralParams {
                            batch: s.images,
                            in_h: i.height,
                            in_w: i.width,
                            in_c: i.channels,
                            out_h: o.height,
                            out_w: o.width,
                            out_c: o.channels,
                            groups: g.groups,
                            kernel_h: g.kernel[0],
                            kernel_w: g.kernel[1],
                            stride_h: g.stride[0],
                            stride_w: g.stride[1],
                            dilation_h: g.dilation[0],
                            dilation_w: g.dilation[1],
                            pad_top,
                            pad_left,
                            activation: mask,
                            has_residual: 0,
                            add_extra,
                            _pad: 0,
                        },
                    );
                }
                ConvKind::Depthwise => {
                    steps.push_variant(
                        ctx,
                        depthwise_grad_variant(kernel, stride),
                        launch::DepthwiseConvGrad {
                            grad_out: grad(grad_out),
                            forward_out,
                            weight: &gpu_model.convs[conv].0,
                            extra,
                            grad_in: grad(grad_in),
                        },
                        move |s| DepthwiseGradParams {
                            batch: s.images,
                            in_h: i.height,
                            in_w: i.width,
                            channels: i.channels,
                            out_h: o.height,
                            out_w: o.width,
                            kernel,
                            stride,
                            pad_top,
                            pad_left,
                            mask,
                            add_extra,
                        },
                    );
                }
                ConvKind::Dense => {
                    steps.push_variant(
                        ctx,
                        conv2d_grad_variant(kernel, stride, i.channels),
                        launch::Conv2dGrad {
                            grad_out: grad(grad_out),
                            forward_out,
                            weight: &gpu_model.convs[conv].0,
                            extra,
                            grad_in: grad(grad_in),
                        },
                        move |s| ConvGradParams {
                            batch: s.images,
                            in_h: i.height,
                            in_w: i.width,
                            in_c: i.channels,
                            out_h: o.height,
                            out_w: o.width,
                            out_c: o.channels,
                            kernel,
                            stride,
                            pad_top,
                            pad_left,
                            mask,
                            add_extra,
                            _pad: [0; 3],
                        },
                    );
                }
            }
        }
        GradStep::Linear {
            linear,
            output,
            grad_out,
            grad_in,
            mask,
        } => {
            let l = &model.linears[linear];
            let (features, total, mask) = (l.in_features, l.out_features, plan.mask_code(mask));
            for (i, chunk) in gpu_model.linears[linear].iter().enumerate() {
                let (offset, rows, accumulate) = (chunk.offset, chunk.rows, u32::from(i > 0));
                steps.push_variant(
                    ctx,
                    ctx.kernels.linear_grad_variant(),
                    launch::LinearGrad {
                        grad_out: grad(grad_out),
                        forward_out: forward.tensor(output),
                        weight: &chunk.weight,
                        grad_in: grad(grad_in),
                    },
                    move |s| LinearGradParams {
                        batch: s.images,
                        in_features: features,
                        out_features: rows,
                        out_offset: offset,
                        out_total: total,
                        mask,
                        accumulate,
                        _pad: 0,
                    },
                );
            }
        }
        GradStep::Elementwise {
            op,
            input,
            output,
            grad_out,
            grad_in,
            extra,
        } => {
            let e = &model.elementwise[op];
            let (scale, bias) = &gpu_model.elementwise[op];
            let t = &model.tensors[input];
            let (len4, channels4) = (t.len() as u32 / 4, t.channels / 4);
            let activation = plan.mask_code(e.activation);
            let (has_affine, slope) = (u32::from(e.affine.is_some()), e.slope);
            let extra_buffer = grad(extra.unwrap_or(grad_out));
            let add_extra = u32::from(extra.is_some());
            // The output where it gives the derivative (as the conv kernels mask), so that what
            // the forward pass keeps is what a ReLU's mask reads.
            let from_output = e.activation.derivative_from_output();
            let value = forward.tensor(if from_output { output } else { input });
            let from_output = u32::from(from_output);
            steps.push(
                ctx,
                launch::ElementwiseGrad {
                    grad_out: grad(grad_out),
                    forward: value,
                    scale,
                    bias,
                    extra: extra_buffer,
                    grad_in: grad(grad_in),
                },
                move |s| ElementwiseGradParams {
                    len4: len4 * s.images,
                    channels4,
                    activation,
                    has_affine,
                    slope,
                    add_extra,
                    from_output,
                    _pad: 0,
                },
            );
        }
        GradStep::AvgPool {
            input,
            output,
            window: (kernel, stride, pad, count_include_pad),
            grad_out,
            grad_in,
            extra,
        } => {
            let (i, o) = (model.tensors[input].clone(), model.tensors[output].clone());
            let extra_buffer = grad(extra.unwrap_or(grad_out));
            let add_extra = u32::from(extra.is_some());
            steps.push(
                ctx,
                launch::AvgPoolGrad {
                    grad_out: grad(grad_out),
                    extra: extra_buffer,
                    grad_in: grad(grad_in),
                },
                move |s| AvgPoolParams {
                    batch: s.images,
                    in_h: i.height,
                    in_w: i.width,
                    channels: i.channels,
                    out_h: o.height,
                    out_w: o.width,
                    kernel,
                    stride,
                    pad,
                    count_include_pad: u32::from(count_include_pad),
                    add_extra,
                    _pad: 0,
                },
            );
        }
        GradStep::LayerNorm {
            op,
            input,
            grad_out,
            grad_in,
            extra,
        } => {
            let t = &model.tensors[input];
            let (pixels, channels) = (t.height * t.width, t.channels);
            let (eps, add_extra) = (model.layer_norms[op].eps, u32::from(extra.is_some()));
            steps.push(
                ctx,
                launch::LayerNormGrad {
                    grad_out: grad(grad_out),
                    input: forward.tensor(input),
                    gamma: &gpu_model.layer_norms[op].0,
                    extra: grad(extra.unwrap_or(grad_out)),
                    grad_in: grad(grad_in),
                },
                move |s| LayerNormParams {
                    pixels: pixels * s.images,
                    channels,
                    eps,
                    add_extra,
                },
            );
        }
        GradStep::GlobalAvgPool {
            input,
            grad_out,
            grad_in,
            extra,
        } => {
            let t = &model.tensors[input];
            let (pixels, channels) = (t.height * t.width, t.channels);
            let add_extra = u32::from(extra.is_some());
            steps.push(
                ctx,
                launch::GlobalAvgPoolGrad {
                    grad_out: grad(grad_out),
                    extra: grad(extra.unwrap_or(grad_out)),
                    grad_in: grad(grad_in),
                },
                move |s| PoolGradParams {
                    batch: s.images,
                    pixels,
                    channels,
                    add_extra,
                },
            );
        }
        GradStep::ConcatSlice {
            output,
            input,
            offset,
            grad_out,
            grad_in,
            extra,
        } => {
            let (o, part_c4) = (
                model.tensors[output].clone(),
                model.tensors[input].channels / 4,
            );
            let extra_buffer = grad(extra.unwrap_or(grad_out));
            let add_extra = u32::from(extra.is_some());
            steps.push(
                ctx,
                launch::ConcatGrad {
                    grad_out: grad(grad_out),
                    extra: extra_buffer,
                    grad_in: grad(grad_in),
                },
                move |s| ConcatParams {
                    pixels: o.height * o.width * s.images,
                    part_c4,
                    total_c4: o.channels / 4,
                    offset_c4: offset / 4,
                    add_extra,
                    _pad: [0; 3],
                },
            );
        }
        GradStep::TokenRows {
            channels,
            tokens,
            first,
            count,
            grad_out,
            grad_in,
            extra,
        } => push_token_rows(
            ctx,
            steps,
            (grad(grad_out), grad(grad_in), extra.map(grad)),
            channels,
            tokens,
            first,
            count,
        ),
        GradStep::Attention {
            op,
            input,
            output,
            stats,
            grad_out,
            grad_in,
            extra,
        } => {
            let params = attention_params(model, op, output, extra.is_some());
            let extra = grad(extra.unwrap_or(grad_out));
            steps.push(
                ctx,
                launch::AttentionGradQuery {
                    grad_out: grad(grad_out),
                    qkv: forward.tensor(input),
                    output: forward.tensor(output),
                    stats: forward.tensor(stats),
                    extra,
                    grad_in: grad(grad_in),
                },
                params,
            );
            steps.push(
                ctx,
                launch::AttentionGradKeyValue {
                    grad_out: grad(grad_out),
                    qkv: forward.tensor(input),
                    output: forward.tensor(output),
                    stats: forward.tensor(stats),
                    extra,
                    grad_in: grad(grad_in),
                },
                params,
            );
        }
        GradStep::SeGate {
            se,
            input,
            excited,
            grad_out,
            grad_in,
        } => {
            steps.push(
                ctx,
                launch::SeGateGrad {
                    grad_out: grad(grad_out),
                    input: forward.tensor(input),
                    excited: forward.tensor(excited),
                    grad_excited: grad(grad_in),
                },
                se_params(plan, model, se, input, false),
            );
        }
        GradStep::SeExcite {
            se,
            input,
            squeezed,
            grad_out,
            grad_in,
        } => {
            steps.push(
                ctx,
                launch::SeExciteGrad {
                    grad_excited: grad(grad_out),
                    squeezed: forward.tensor(squeezed),
                    weight: &gpu_model.squeeze_excite[se][2],
                    grad_squeezed: grad(grad_in),
                },
                se_params(plan, model, se, input, false),
            );
        }
        GradStep::SeSqueeze {
            se,
            input,
            grad_out,
            grad_in,
        } => {
            steps.push(
                ctx,
                launch::SeSqueezeGrad {
                    grad_squeezed: grad(grad_out),
                    weight: &gpu_model.squeeze_excite[se][0],
                    grad_pooled: grad(grad_in),
                },
                se_params(plan, model, se, input, false),
            );
        }
        GradStep::SeScale {
            se,
            input,
            excited,
            grad_out,
            grad_pooled,
            grad_in,
            extra,
        } => {
            steps.push(
                ctx,
                launch::SeScaleGrad {
                    grad_out: grad(grad_out),
                    excited: forward.tensor(excited),
                    grad_pooled: grad(grad_pooled),
                    extra: grad(extra.unwrap_or(grad_out)),
                    grad_in: grad(grad_in),
                },
                se_params(plan, model, se, input, extra.is_some()),
            );
        }
        GradStep::MaxPool {
            input,
            output,
            window: (kernel, stride, pad),
            grad_out,
            grad_in,
            extra,
        } => {
            let (i, o) = (model.tensors[input].clone(), model.tensors[output].clone());
            let extra_buffer = grad(extra.unwrap_or(grad_out));
            let add_extra = u32::from(extra.is_some());
            steps.push(
                ctx,
                launch::MaxPoolGrad {
                    grad_out: grad(grad_out),
                    input: forward.tensor(input),
                    extra: extra_buffer,
                    grad_in: grad(grad_in),
                },
                move |s| MaxPoolGradParams {
                    batch: s.images,
                    in_h: i.height,
                    in_w: i.width,
                    channels: i.channels,
                    out_h: o.height,
                    out_w: o.width,
                    kernel,
                    stride,
                    pad,
                    add_extra,
                    _pad: [0; 2],
                },
            );
        }
    }
    Ok(())
}

/// The parameters of squeeze-and-excitation block `se`'s backward kernels, whose input is
/// `input` (the activation after the reduction guided where the plan is).
fn se_params(
    plan: &BackwardPlan,
    model: &Model,
    se: usize,
    input: usize,
    add_extra: bool,
) -> impl Fn(&BatchShape) -> SqueezeExciteParams + Send + Sync + 'static {
    let b = &model.squeeze_excite[se];
    let t = &model.tensors[input];
    let (pixels, channels, squeeze) = (t.height * t.width, b.channels, b.squeeze);
    let (activation, gate) = (plan.mask_code(b.activation), b.gate as u32);
    let add_extra = u32::from(add_extra);
    move |s| SqueezeExciteParams {
        batch: s.images,
        pixels,
        channels,
        squeeze,
        activation,
        gate,
        add_extra,
        _pad: 0,
    }
}
