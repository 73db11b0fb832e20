//! The fusion pass: plain ops → the engine's fused kernels.
//!
//! A conv absorbs the ops after it that its kernel computes in the same pass, wherever that is
//! exact:
//! - a BatchNorm, folded into its weights and bias (in float64, so the folded weights are as
//!   close as float32 allows to conv-then-BatchNorm);
//! - then a residual add, whose other operand is already computed;
//! - then an activation whose derivative its output determines ([`Keeps::Output`]), since the
//!   fused kernel keeps only its output.
//!
//! A global average pool that starts a squeeze-and-excitation block (pool → 1×1 conv →
//! activation → 1×1 conv → sigmoid or hardsigmoid → product with the pool's input) becomes one
//! block op, with kernels of its own for any squeezed width.
//!
//! A linear layer absorbs such an activation too, and reads a flattened tensor in place (its
//! columns permuted from PyTorch's channel-major order to the engine's NHWC one). An op is
//! absorbed only when the previous one's output has no other reader and is no named layer, so
//! every layer a CAM can target stays a tensor of the plan.

use super::ops::{self, Keeps, Op, OpRule};
use super::{Graph, Node};
use crate::error::{Error, Result};
use crate::model::{self, Activation, ConvKind, TensorSpec};

/// The executable plan of a graph, as [`crate::model::Model`] holds it.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// Every conv, BatchNorm folded.
    pub convs: Vec<model::Conv>,
    /// Every fully connected layer.
    pub linears: Vec<model::Linear>,
    /// Every elementwise op (standalone BatchNorms and activations).
    pub elementwise: Vec<model::Elementwise>,
    /// Every squeeze-and-excitation block.
    pub squeeze_excite: Vec<model::SqueezeExcite>,
    /// Every LayerNorm.
    pub layer_norms: Vec<model::LayerNorm>,
    /// Every token embedding.
    pub token_embeds: Vec<model::TokenEmbed>,
    /// Every self-attention.
    pub attentions: Vec<model::Attention>,
    /// Every tensor of the plan.
    pub tensors: Vec<TensorSpec>,
    /// The plan, in execution order.
    pub ops: Vec<model::Op>,
    /// The input tensor.
    pub input: usize,
    /// The graph's `logits` tensor in the plan.
    pub logits: usize,
    /// The graph's layers, by their tensors in the plan.
    pub target_layers: Vec<(String, usize)>,
    /// The graph's in-place ops, by their tensors in the plan (see [`Graph::in_place`]).
    pub layer_activations: Vec<(usize, usize)>,
}

/// Lowers `graph`, whose output is `logits`, into fused kernels. An op no kernel runs in the
/// place the graph puts it is an error naming the node.
pub fn lower(graph: &Graph, logits: usize) -> Result<Lowered> {
    let mut pinned = vec![false; graph.tensors.len()];
    for (_, t) in &graph.layers {
        pinned[*t] = true;
    }
    pinned[logits] = true;
    // Nodes whose output nothing reads (an importer's leftovers, as the sigmoid of a SiLU
    // written `x · sigmoid(x)`) are left out.
    let mut live = pinned.clone();
    let mut dead = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if live[node.output] {
            for &t in &node.inputs {
                live[t] = true;
            }
        } else {
            dead[i] = true;
        }
    }
    let mut pass = Pass {
        graph,
        readers: graph
            .consumers()
            .into_iter()
            .map(|r| r.into_iter().filter(|&n| !dead[n]).collect())
            .collect(),
        pinned,
        plan: vec![None; graph.tensors.len()],
        flattened: vec![false; graph.tensors.len()],
        absorbed: dead,
        out: Lowered::default(),
    };
    let input = pass.emit_tensor(graph.input);
    pass.out.input = input;
    pass.out.ops.push(model::Op::Preprocess { output: input });
    for (i, node) in graph.nodes.iter().enumerate() {
        if pass.absorbed[i] {
            continue;
        }
        match &node.op {
            Op::Conv(conv) => pass.conv(node, conv, true)?,
            Op::Linear(linear) if pass.per_pixel(node) => {
                // A linear layer on every pixel of a map is a 1×1 conv, which FullGrad does not
                // count as one (the reference counts `nn.Conv2d` modules only).
                let conv = ops::Conv {
                    weight: linear.weight.clone(),
                    bias: Some(linear.bias.clone()),
                    out_channels: linear.out_features,
                    kernel: [1, 1],
                    stride: [1, 1],
                    dilation: [1, 1],
                    groups: 1,
                    pads: [0; 4],
                };
                pass.conv(node, &conv, false)?
            }
            Op::Linear(linear) => pass.linear(node, linear)?,
            Op::LayerNorm(norm) => {
                let input = pass.planned(node.inputs[0])?;
                let (_, _, channels) = graph.shape(node.inputs[0]);
                pass.vec4_channels(node, channels)?;
                let output = pass.emit_tensor(node.output);
                pass.out.layer_norms.push(model::LayerNorm {
                    name: node.name.clone(),
                    gamma: norm.gamma.clone(),
                    beta: norm.beta.clone(),
                    eps: norm.eps,
                });
                pass.out.ops.push(model::Op::LayerNorm {
                    op: pass.out.layer_norms.len() - 1,
                    input,
                    output,
                });
            }
            Op::TokenEmbed(embed) => {
                let input = pass.planned(node.inputs[0])?;
                let (_, _, channels) = graph.shape(node.inputs[0]);
                pass.vec4_channels(node, channels)?;
                let output = pass.emit_tensor(node.output);
                let table = embed.table();
                pass.out.token_embeds.push(model::TokenEmbed {
                    name: node.name.clone(),
                    prefix: embed.prefix_tokens,
                    table,
                });
                pass.out.ops.push(model::Op::TokenEmbed {
                    op: pass.out.token_embeds.len() - 1,
                    input,
                    output,
                });
            }
            Op::Attention(attention) => {
                let input = pass.planned(node.inputs[0])?;
                let output = pass.emit_tensor(node.output);
                let (_, tokens, _) = graph.shape(node.output);
                pass.out.tensors.push(TensorSpec {
                    name: format!("{}.softmax_stats", node.name),
                    height: 1,
                    width: tokens,
                    channels: attention.heads,
                });
                let stats = pass.out.tensors.len() - 1;
                pass.out.attentions.push(model::Attention {
                    name: node.name.clone(),
                    heads: attention.heads,
                    scale: attention.scale,
                });
                pass.out.ops.push(model::Op::Attention {
                    op: pass.out.attentions.len() - 1,
                    input,
                    output,
                    stats,
                });
            }
            // Both copy a run of tokens: the first `count`, or those after the prefix.
            Op::SelectTokens(select) => pass.token_rows(node, 0, select.count)?,
            Op::PatchGrid(grid) => pass.token_rows(node, grid.prefix, grid.height * grid.width)?,
            Op::Scale(scale) => pass.elementwise(node, Some(Affine::Scale(scale)))?,
            Op::MaxPool(pool) => {
                let input = pass.planned(node.inputs[0])?;
                let output = pass.emit_tensor(node.output);
                pass.out.ops.push(model::Op::MaxPool {
                    input,
                    output,
                    kernel: pool.kernel,
                    stride: pool.stride,
                    pad: pool.pad,
                });
            }
            Op::AvgPool(pool) => {
                let input = pass.planned(node.inputs[0])?;
                let (_, _, channels) = graph.shape(node.inputs[0]);
                pass.vec4_channels(node, channels)?;
                let output = pass.emit_tensor(node.output);
                pass.out.ops.push(model::Op::AvgPool {
                    input,
                    output,
                    kernel: pool.kernel,
                    stride: pool.stride,
                    pad: pool.pad,
                    count_include_pad: pool.count_include_pad,
                });
            }
            Op::Concat(_) => {
                let mut inputs = Vec::with_capacity(node.inputs.len());
                for &t in &node.inputs {
                    let (_, _, channels) = graph.shape(t);
                    pass.vec4_channels(node, channels)?;
                    inputs.push(pass.planned(t)?);
                }
                let output = pass.emit_tensor(node.output);
                pass.out.ops.push(model::Op::Concat { inputs, output });
            }
            Op::GlobalAvgPool(_) if pass.squeeze_excite(node)? => {}
            Op::GlobalAvgPool(_) => {
                let input = pass.planned(node.inputs[0])?;
                let output = pass.emit_tensor(node.output);
                pass.out
                    .ops
                    .push(model::Op::GlobalAvgPool { input, output });
            }
            Op::Flatten(_) => {
                // Only a linear layer reads a flattened map in place (its weights permuted).
                let (h, w, _) = graph.shape(node.inputs[0]);
                let other = pass.readers[node.output]
                    .iter()
                    .find(|&&j| !matches!(graph.nodes[j].op, Op::Linear(_)));
                if let (true, Some(&j)) = (h * w > 1, other) {
                    return Err(pass.unsupported(
                        node,
                        format!(
                            "the flattened {h}×{w} map is read by `{}` ({}), which is not a \
                             linear layer",
                            graph.nodes[j].name,
                            graph.nodes[j].op.rule().kind()
                        ),
                    ));
                }
                pass.plan[node.output] = Some(pass.planned(node.inputs[0])?);
                pass.flattened[node.output] = true;
            }
            Op::BatchNorm(bn) => pass.elementwise(node, Some(Affine::BatchNorm(bn)))?,
            Op::Activation(_) => pass.elementwise(node, None)?,
            Op::Mul(_) => {
                return Err(pass.unsupported(
                    node,
                    "runs only as a squeeze-and-excitation gate: x · gate(conv(act(conv(mean \
                     x)))), the gate a sigmoid or hardsigmoid"
                        .into(),
                ));
            }
            Op::Add(_) => {
                return Err(graph.unsupported(format!(
                    "{} ({}): runs only fused after a convolution (conv → BatchNorm → residual \
                     add → ReLU or ReLU6); not after `{}`",
                    node.name,
                    node.op.rule().kind(),
                    graph.tensors[node.inputs[0]].name
                )));
            }
        }
    }
    pass.out.logits = pass.planned(logits)?;
    let mut layers: Vec<(String, usize)> = Vec::with_capacity(graph.layers.len());
    for (name, t) in &graph.layers {
        layers.push((name.clone(), pass.planned(*t)?));
    }
    for (name, t) in &graph.modules {
        if let Some(p) = pass.plan[*t] {
            if !layers.iter().any(|(n, _)| n == name) {
                layers.push((name.clone(), p));
            }
        }
    }
    pass.out.target_layers = layers;
    pass.out.layer_activations = graph
        .in_place
        .iter()
        .filter_map(|&(t, r)| Some((pass.plan[t]?, pass.plan[r]?)))
        .collect();
    Ok(pass.out)
}

/// A per-channel affine map that a conv before it folds into its weights and bias, or that runs
/// as an elementwise op: `x · scale + shift`.
#[derive(Clone, Copy)]
enum Affine<'a> {
    /// Inference-mode BatchNorm.
    BatchNorm(&'a ops::BatchNorm),
    /// A constant factor per channel.
    Scale(&'a ops::Scale),
}

impl Affine<'_> {
    /// Channel `c`'s scale, in float64 for folding.
    fn scale_f64(self, c: usize) -> f64 {
        match self {
            Affine::BatchNorm(bn) => bn.scale_f64(c),
            Affine::Scale(s) => f64::from(s.factors[c]),
        }
    }

    /// Channel `c`'s scale in float32, as PyTorch computes it.
    fn scale_f32(self, c: usize) -> f32 {
        match self {
            Affine::BatchNorm(bn) => bn.scale_f32(c),
            Affine::Scale(s) => s.factors[c],
        }
    }

    /// Channel `c`'s shift in float64 (`β − μ·scale`; none for a factor).
    fn shift_f64(self, c: usize) -> f64 {
        match self {
            Affine::BatchNorm(bn) => {
                f64::from(bn.beta[c]) - f64::from(bn.mean[c]) * self.scale_f64(c)
            }
            Affine::Scale(_) => 0.0,
        }
    }

    /// Channels.
    fn len(self) -> usize {
        match self {
            Affine::BatchNorm(bn) => bn.gamma.len(),
            Affine::Scale(s) => s.factors.len(),
        }
    }

    /// The bias FullGrad reads of it (a BatchNorm's).
    fn full_grad_bias(self) -> Option<Vec<f32>> {
        match self {
            Affine::BatchNorm(bn) => bn.full_grad_bias(),
            Affine::Scale(_) => None,
        }
    }

    /// The affine op `op`, if it is one.
    fn of(op: &Op) -> Option<Affine<'_>> {
        match op {
            Op::BatchNorm(bn) => Some(Affine::BatchNorm(bn)),
            Op::Scale(s) => Some(Affine::Scale(s)),
            _ => None,
        }
    }
}

/// The state of the pass.
struct Pass<'a> {
    graph: &'a Graph,
    readers: Vec<Vec<usize>>,
    /// Tensors that must stay tensors of the plan (named layers, the logits).
    pinned: Vec<bool>,
    /// Per graph tensor, the plan's tensor holding its values.
    plan: Vec<Option<usize>>,
    /// Per graph tensor, whether it is a flattened view of a plan tensor (PyTorch's order).
    flattened: Vec<bool>,
    /// Per node, whether a fused kernel computes it.
    absorbed: Vec<bool>,
    out: Lowered,
}

impl Pass<'_> {
    /// A plan tensor for graph tensor `t`.
    fn emit_tensor(&mut self, t: usize) -> usize {
        self.out.tensors.push(self.graph.tensors[t].clone());
        let id = self.out.tensors.len() - 1;
        self.plan[t] = Some(id);
        id
    }

    /// The plan tensor of graph tensor `t`, computed earlier.
    fn planned(&self, t: usize) -> Result<usize> {
        self.plan[t].ok_or_else(|| {
            Error::Internal(format!(
                "fusion: `{}` is read before it is computed",
                self.graph.tensors[t].name
            ))
        })
    }

    /// The node after tensor `t` that a fused kernel may absorb: its only reader, when `t` is
    /// not pinned and `fits` the reader's op.
    fn absorbable(&self, t: usize, fits: impl Fn(&Op) -> bool) -> Option<usize> {
        match self.readers[t].as_slice() {
            [j] if !self.pinned[t] && fits(&self.graph.nodes[*j].op) => Some(*j),
            _ => None,
        }
    }

    /// The activation after `t` that a fused kernel may absorb.
    fn absorbable_activation(&self, t: usize) -> Option<(usize, Activation)> {
        let j = self.absorbable(
            t,
            |op| matches!(op, Op::Activation(a) if a.keeps() == Keeps::Output),
        )?;
        let Op::Activation(a) = &self.graph.nodes[j].op else {
            return None;
        };
        Some((j, a.kind.plan()))
    }

    /// An error unless `channels` is a multiple of 4: the kernels read channels as vec4s.
    fn vec4_channels(&self, node: &Node, channels: u32) -> Result<()> {
        if channels.is_multiple_of(4) {
            return Ok(());
        }
        Err(self.unsupported(
            node,
            format!("channel counts must be multiples of 4 (found {channels})"),
        ))
    }

    fn unsupported(&self, node: &Node, reason: String) -> Error {
        self.graph.unsupported(format!(
            "{} ({}): {reason}",
            node.name,
            node.op.rule().kind()
        ))
    }

    /// Whether linear layer `node` reads a map (every pixel's channels) rather than one vector
    /// per image.
    fn per_pixel(&self, node: &Node) -> bool {
        let (h, w, _) = self.graph.shape(node.inputs[0]);
        h * w > 1 && !self.flattened[node.inputs[0]]
    }

    /// A conv with the BatchNorm (or constant factor), residual add and activation that follow
    /// it; its own bias counts for FullGrad when `full_grad` (an `nn.Conv2d`'s).
    fn conv(&mut self, node: &Node, conv: &ops::Conv, full_grad: bool) -> Result<()> {
        let g = self.graph;
        let mut end = node.output;
        let bn = self
            .absorbable(end, |op| Affine::of(op).is_some())
            .and_then(|j| {
                self.absorbed[j] = true;
                end = g.nodes[j].output;
                Affine::of(&g.nodes[j].op)
            });
        let mut residual = None;
        if let Some(j) = self.absorbable(end, |op| matches!(op, Op::Add(_))) {
            let other = g.nodes[j].inputs.iter().copied().find(|&t| t != end);
            if let Some(r) = other.and_then(|t| self.plan[t]) {
                self.absorbed[j] = true;
                residual = Some(r);
                end = g.nodes[j].output;
            }
        }
        let mut activation = Activation::None;
        if let Some((j, a)) = self.absorbable_activation(end) {
            self.absorbed[j] = true;
            activation = a;
            end = g.nodes[j].output;
        }

        let (_, _, ci) = g.shape(node.inputs[0]);
        let co = conv.out_channels;
        let [kh, kw] = conv.kernel;
        let groups = conv.groups;
        let square = kh == kw && conv.stride[0] == conv.stride[1] && conv.dilation == [1, 1];
        let kind = if square && groups == 1 {
            let [top, left, bottom, right] = conv.pads;
            if kh == 1 && conv.stride[0] == 1 && top + left + bottom + right == 0 {
                // A channel mix per pixel.
                ConvKind::Pointwise
            } else {
                ConvKind::Dense
            }
        } else if square && groups == ci && ci == co {
            ConvKind::Depthwise
        } else {
            ConvKind::General
        };
        if kind == ConvKind::General {
            // Four channels of one group per invocation, forward and backward.
            let (cig, cog) = (ci / groups, co / groups);
            if !cig.is_multiple_of(4) || !cog.is_multiple_of(4) {
                return Err(self.unsupported(
                    node,
                    format!(
                        "{groups} groups over {ci} → {co} channels: the channels per group must \
                         be multiples of 4 (found {cig} → {cog})"
                    ),
                ));
            }
        }
        if !ci.is_multiple_of(4) && kind != ConvKind::Dense || !co.is_multiple_of(4) {
            return Err(self.unsupported(
                node,
                format!("channel counts must be multiples of 4 (found {ci} → {co})"),
            ));
        }
        // With no activation the order does not matter; the flag says "add, then activate".
        let add_before_activation = residual.is_some() && activation != Activation::None;

        let (kh, kw, ci, co) = (kh as usize, kw as usize, ci as usize, co as usize);
        let per_group = ci / groups as usize;
        let conv_bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; co]);
        // FullGrad's biases in module order: the conv's own (the gradient at the conv's output
        // is the BatchNorm's times γ/√(σ² + ε)), then the BatchNorm's.
        let mut full_grad_biases = Vec::new();
        if let (Some(b), true) = (&conv.bias, full_grad) {
            full_grad_biases.push(match bn {
                Some(bn) => (0..co).map(|o| b[o] * bn.scale_f32(o)).collect(),
                None => b.clone(),
            });
        }
        let (scale, bias): (Vec<f64>, Vec<f32>) = match bn {
            Some(bn) => {
                full_grad_biases.extend(bn.full_grad_bias());
                let scale: Vec<f64> = (0..co).map(|o| bn.scale_f64(o)).collect();
                let bias = (0..co)
                    .map(|o| (bn.shift_f64(o) + f64::from(conv_bias[o]) * scale[o]) as f32)
                    .collect();
                (scale, bias)
            }
            None => (vec![1.0; co], conv_bias),
        };
        let weight_torch: Vec<f32> = conv
            .weight
            .iter()
            .enumerate()
            .map(|(i, w)| (f64::from(*w) * scale[i / (per_group * kh * kw)]) as f32)
            .collect();
        let mut weight = vec![0f32; weight_torch.len()];
        for o in 0..co {
            for i in 0..per_group {
                for y in 0..kh {
                    for x in 0..kw {
                        let t = ((o * per_group + i) * kh + y) * kw + x;
                        let at = match kind {
                            ConvKind::Dense => ((y * kw + x) * ci + i) * co + o,
                            ConvKind::Pointwise => i * co + o,
                            ConvKind::Depthwise => (y * kw + x) * co + o,
                            ConvKind::General => ((y * kw + x) * per_group + i) * co + o,
                        };
                        weight[at] = weight_torch[t];
                    }
                }
            }
        }
        let input = self.planned(node.inputs[0])?;
        let output = self.emit_tensor(end);
        self.out.convs.push(model::Conv {
            name: node.name.clone(),
            kind,
            kernel: kh as u32,
            stride: conv.stride[0],
            geometry: model::ConvGeometry {
                kernel: conv.kernel,
                stride: conv.stride,
                dilation: conv.dilation,
                groups,
            },
            in_channels: ci as u32,
            out_channels: co as u32,
            activation,
            add_before_activation,
            weight,
            weight_torch,
            bias,
            full_grad_biases,
        });
        self.out.ops.push(model::Op::Conv {
            conv: self.out.convs.len() - 1,
            input,
            output,
            residual,
            pad_top: conv.pads[0],
            pad_left: conv.pads[1],
        });
        Ok(())
    }

    /// The squeeze-and-excitation block that global average pool `node` starts, if it is one:
    /// pool → 1×1 conv → activation → 1×1 conv → sigmoid or hardsigmoid → product with the
    /// pool's input, each step read by the next alone. Emits it as one plan op and returns
    /// whether it did.
    fn squeeze_excite(&mut self, node: &Node) -> Result<bool> {
        let g = self.graph;
        let x = node.inputs[0];
        let fc = |op: &Op| matches!(op, Op::Conv(c) if c.kernel == [1, 1] && c.groups == 1);
        let Some(reduce) = self.absorbable(node.output, fc) else {
            return Ok(false);
        };
        let act =
            |op: &Op| matches!(op, Op::Activation(a) if a.kind != ops::ActivationKind::LeakyRelu);
        let Some(act) = self.absorbable(g.nodes[reduce].output, act) else {
            return Ok(false);
        };
        let Some(expand) = self.absorbable(g.nodes[act].output, fc) else {
            return Ok(false);
        };
        let gate = |op: &Op| {
            matches!(op, Op::Activation(a) if matches!(a.kind,
                ops::ActivationKind::Sigmoid | ops::ActivationKind::HardSigmoid))
        };
        let Some(gate) = self.absorbable(g.nodes[expand].output, gate) else {
            return Ok(false);
        };
        let Some(mul) = self.absorbable(g.nodes[gate].output, |op| matches!(op, Op::Mul(_))) else {
            return Ok(false);
        };
        if g.nodes[mul].inputs != [x, g.nodes[gate].output] {
            return Ok(false);
        }
        let (Op::Conv(reduce_conv), Op::Conv(expand_conv)) =
            (&g.nodes[reduce].op, &g.nodes[expand].op)
        else {
            return Ok(false);
        };
        let [Op::Activation(act_op), Op::Activation(gate_op)] =
            [&g.nodes[act].op, &g.nodes[gate].op]
        else {
            return Ok(false);
        };
        let (_, _, channels) = g.shape(x);
        self.vec4_channels(node, channels)?;
        let squeeze = reduce_conv.out_channels;
        let bias = |conv: &ops::Conv, n: u32| conv.bias.clone().unwrap_or(vec![0.0; n as usize]);
        for j in [reduce, act, expand, gate, mul] {
            self.absorbed[j] = true;
        }
        let input = self.planned(x)?;
        let pooled = self.emit_tensor(node.output);
        let squeezed = self.emit_tensor(g.nodes[reduce].output);
        let excited = self.emit_tensor(g.nodes[expand].output);
        let output = self.emit_tensor(g.nodes[mul].output);
        // The block's module path: what its nodes' names share (`features.1.0.block.1`).
        let name = common_prefix(&g.nodes[reduce].name, &g.nodes[expand].name);
        self.out.squeeze_excite.push(model::SqueezeExcite {
            name,
            channels,
            squeeze,
            activation: act_op.kind.plan(),
            gate: gate_op.kind.plan(),
            reduce_weight: reduce_conv.weight.clone(),
            reduce_bias: bias(reduce_conv, squeeze),
            expand_weight: expand_conv.weight.clone(),
            expand_bias: bias(expand_conv, channels),
        });
        self.out.ops.push(model::Op::SqueezeExcite {
            se: self.out.squeeze_excite.len() - 1,
            input,
            output,
            pooled,
            squeezed,
            excited,
        });
        Ok(true)
    }

    /// Tokens `first .. first + count` of `node`'s token sequence as its output (a head's
    /// class tokens, the patch tokens' map).
    fn token_rows(&mut self, node: &Node, first: u32, count: u32) -> Result<()> {
        let input = self.planned(node.inputs[0])?;
        let (_, _, channels) = self.graph.shape(node.inputs[0]);
        self.vec4_channels(node, channels)?;
        let output = self.emit_tensor(node.output);
        self.out.ops.push(model::Op::TokenRows {
            input,
            output,
            first,
            count,
        });
        Ok(())
    }

    /// A BatchNorm (with the activation after it) or an activation no conv or linear layer
    /// absorbed: one elementwise kernel, which keeps its input for the backward pass.
    fn elementwise(&mut self, node: &Node, bn: Option<Affine>) -> Result<()> {
        let g = self.graph;
        let mut end = node.output;
        let mut activation = match &node.op {
            Op::Activation(a) => Some(*a),
            _ => None,
        };
        if bn.is_some() {
            if let Some(j) = self.absorbable(end, |op| matches!(op, Op::Activation(_))) {
                if let Op::Activation(a) = &g.nodes[j].op {
                    self.absorbed[j] = true;
                    activation = Some(*a);
                    end = g.nodes[j].output;
                }
            }
        }
        // The scale and bias in float64, rounded once (PyTorch's inference BatchNorm applies
        // them as `x · scale + shift`).
        // pytorch-grad-cam's FullGrad counts `nn.BatchNorm2d`, not `nn.BatchNorm1d`: a
        // BatchNorm over one pixel (rows of features, after a flatten) is taken for the latter.
        let (h, w, _) = g.shape(node.inputs[0]);
        let full_grad_bias = bn.filter(|_| h * w > 1).and_then(Affine::full_grad_bias);
        let affine = bn.map(|bn| {
            let scale = (0..bn.len()).map(|c| bn.scale_f64(c) as f32).collect();
            let shift = (0..bn.len()).map(|c| bn.shift_f64(c) as f32).collect();
            (scale, shift)
        });
        let (_, _, channels) = g.shape(node.inputs[0]);
        self.vec4_channels(node, channels)?;
        let input = self.planned(node.inputs[0])?;
        let output = self.emit_tensor(end);
        self.out.elementwise.push(model::Elementwise {
            name: node.name.clone(),
            affine,
            activation: activation.map_or(Activation::None, |a| a.kind.plan()),
            slope: activation.map_or(0.0, |a| a.slope),
            full_grad_bias,
        });
        self.out.ops.push(model::Op::Elementwise {
            op: self.out.elementwise.len() - 1,
            input,
            output,
        });
        Ok(())
    }

    /// A linear layer with the activation that follows it.
    fn linear(&mut self, node: &Node, linear: &ops::Linear) -> Result<()> {
        let source = node.inputs[0];
        let input = self.planned(source)?;
        let src = self.out.tensors[input].clone();
        let features = src.len();
        let out = linear.out_features as usize;
        // A flattened NCHW tensor is read in place in the engine's NHWC order.
        let weight = if self.flattened[source] && src.height * src.width > 1 {
            let (hw, c) = ((src.height * src.width) as usize, src.channels as usize);
            let mut w = vec![0f32; linear.weight.len()];
            for o in 0..out {
                let (from, to) = (&linear.weight[o * features..], &mut w[o * features..]);
                for ch in 0..c {
                    for p in 0..hw {
                        to[p * c + ch] = from[ch * hw + p];
                    }
                }
            }
            w
        } else {
            linear.weight.clone()
        };
        let mut end = node.output;
        let mut activation = Activation::None;
        if let Some((j, a)) = self.absorbable_activation(end) {
            self.absorbed[j] = true;
            activation = a;
            end = self.graph.nodes[j].output;
        }
        let output = self.emit_tensor(end);
        self.out.linears.push(model::Linear {
            name: node.name.clone(),
            in_features: features as u32,
            out_features: out as u32,
            activation,
            weight,
            bias: linear.bias.clone(),
        });
        self.out.ops.push(model::Op::Linear {
            linear: self.out.linears.len() - 1,
            input,
            output,
        });
        Ok(())
    }
}

/// The dotted module path two node names share (`features.1.0.block.1` of
/// `features.1.0.block.1.fc1` and `features.1.0.block.1.fc2`), or the first name.
fn common_prefix(a: &str, b: &str) -> String {
    let shared: Vec<&str> = a
        .split('.')
        .zip(b.split('.'))
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    if shared.is_empty() {
        a.to_string()
    } else {
        shared.join(".")
    }
}
