//! What every architecture's builder shares: reading a layer's tensors by its checkpoint prefix
//! into plain ops ([`crate::graph`]), one node per PyTorch module, and handing the finished graph
//! to the fusion pass. An architecture's file says only which layers it has and how they connect.

use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding, TensorSpec};
use crate::error::{Error, Result};
use crate::graph::ops::{self, ActivationKind, Op};
use crate::graph::{self, Graph};
/// One convolution as a builder describes it.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec<'a> {
    /// Checkpoint prefix of the conv (`<prefix>.weight`, and `<prefix>.bias` with `conv_bias`).
    pub prefix: &'a str,
    /// Checkpoint prefix of the BatchNorm that follows it, folded in; `None`: no BatchNorm.
    pub bn: Option<&'a str>,
    /// The BatchNorm's epsilon.
    pub bn_eps: f32,
    /// Whether the conv has its own bias tensor.
    pub conv_bias: bool,
    /// Dense or depthwise (`groups == channels`); a dense 1×1 stride-1 conv with no padding runs
    /// as a pointwise conv.
    pub kind: ConvKind,
    /// Channel groups of a dense conv (ResNeXt's 32); 1: every input feeds every output.
    pub groups: u32,
    /// Kernel side (the height, when `kernel_w` is set).
    pub kernel: u32,
    /// Kernel width of a non-square kernel (Inception's 1×7 and 7×1); 0: square.
    pub kernel_w: u32,
    /// Padding across, when it differs from `padding` (a non-square kernel's).
    pub padding_w: Option<Padding>,
    /// Stride in both directions.
    pub stride: u32,
    /// Padding.
    pub padding: Padding,
    /// Output channels.
    pub out_channels: u32,
    /// Applied after the bias.
    pub activation: Activation,
    /// A tensor added to the output.
    pub residual: Option<usize>,
    /// Whether `residual` is added before the activation (ResNet) or after it.
    pub add_before_activation: bool,
}

impl<'a> ConvSpec<'a> {
    /// A `kernel`×`kernel` dense conv to `out_channels` at stride 1 with no padding, followed by
    /// the BatchNorm `bn` (epsilon 1e-5, PyTorch's default), with no activation.
    pub fn new(prefix: &'a str, bn: Option<&'a str>, kernel: u32, out_channels: u32) -> Self {
        Self {
            prefix,
            bn,
            bn_eps: 1e-5,
            conv_bias: false,
            kind: ConvKind::Dense,
            groups: 1,
            kernel,
            kernel_w: 0,
            padding_w: None,
            stride: 1,
            padding: Padding::Symmetric(0),
            out_channels,
            activation: Activation::None,
            residual: None,
            add_before_activation: false,
        }
    }
}

/// A graph being built from a weights file.
pub struct Builder<'a> {
    /// The weights.
    pub file: &'a WeightFile,
    graph: Graph,
}

/// What a builder says about its model besides the graph.
pub struct Description {
    /// The architecture's name.
    pub architecture: String,
    /// Input normalisation after `x/255`: mean per RGB channel.
    pub mean: [f32; 3],
    /// Input normalisation: divisor per RGB channel.
    pub std: [f32; 3],
    /// The layer explained when none is named.
    pub default_layer: String,
}

/// ImageNet statistics, torchvision's `Normalize` for its classification models.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl<'a> Builder<'a> {
    /// A graph whose input is a `size`×`size` RGB image, preprocessed on the GPU.
    pub fn new(file: &'a WeightFile, size: u32) -> Self {
        Self {
            file,
            graph: Graph::new(file.path(), size),
        }
    }

    /// The input tensor.
    pub fn input(&self) -> usize {
        self.graph.input
    }

    /// Tensor `id`'s shape.
    pub fn spec(&self, id: usize) -> &TensorSpec {
        &self.graph.tensors[id]
    }

    /// Registers `tensor` as the output of the layer PyTorch users call `name`.
    pub fn layer(&mut self, name: &str, tensor: usize) {
        self.graph.layer(name, tensor);
    }

    /// An error saying why the file does not fit.
    pub fn unsupported(&self, reason: String) -> Error {
        self.graph.unsupported(reason)
    }

    /// Appends `nodes` as a chain, each reading the previous one's output (and, for an add, the
    /// tensor given): the last output is named `name`, the others after their node.
    fn chain(
        &mut self,
        input: usize,
        nodes: Vec<(String, Op, Option<usize>)>,
        name: &str,
    ) -> Result<usize> {
        let last = nodes.len() - 1;
        let mut x = input;
        for (i, (node, op, other)) in nodes.into_iter().enumerate() {
            let inputs: Vec<usize> = std::iter::once(x).chain(other).collect();
            let output = if i == last { name } else { node.as_str() };
            x = self.graph.push(&node, op, &inputs, output)?;
        }
        Ok(x)
    }

    /// Loads the conv `spec` over `input` (its weight, optional bias and BatchNorm) and appends
    /// it with the BatchNorm, residual add and activation it names. Returns the last output
    /// tensor, named `name`.
    pub fn conv(&mut self, spec: &ConvSpec, input: usize, name: &str) -> Result<usize> {
        let src = self.graph.tensors[input].clone();
        let prefix = spec.prefix;
        let kw = if spec.kernel_w == 0 {
            spec.kernel
        } else {
            spec.kernel_w
        };
        let (ci, co) = (src.channels as usize, spec.out_channels as usize);
        let depthwise = spec.kind == ConvKind::Depthwise;
        let groups = if depthwise { ci } else { spec.groups as usize };
        if depthwise && ci != co {
            return Err(self.unsupported(format!(
                "{prefix}: depthwise conv with {ci} inputs and {co} outputs"
            )));
        }
        if groups == 0 || !ci.is_multiple_of(groups) || !co.is_multiple_of(groups) {
            return Err(self.unsupported(format!(
                "{prefix}: {groups} groups over {ci} inputs and {co} outputs"
            )));
        }
        let per_group = ci / groups;
        let weight = self.file.tensor(
            &format!("{prefix}.weight"),
            &[co, per_group, spec.kernel as usize, kw as usize],
        )?;
        let bias = if spec.conv_bias {
            Some(self.file.tensor(&format!("{prefix}.bias"), &[co])?)
        } else {
            None
        };
        let (top, bottom) = spec.padding.pads(src.height, spec.kernel, spec.stride);
        let (left, right) = spec
            .padding_w
            .unwrap_or(spec.padding)
            .pads(src.width, kw, spec.stride);
        let conv = ops::Conv {
            weight,
            bias,
            out_channels: spec.out_channels,
            kernel: [spec.kernel, kw],
            stride: [spec.stride; 2],
            dilation: [1, 1],
            groups: groups as u32,
            pads: [top, left, bottom, right],
        };
        let mut nodes = vec![(prefix.to_string(), Op::Conv(conv), None)];
        if let Some(bn) = spec.bn {
            nodes.push((
                bn.to_string(),
                Op::BatchNorm(self.load_batch_norm(bn, co, spec.bn_eps)?),
                None,
            ));
        }
        let add = spec
            .residual
            .map(|r| (format!("{name}.add"), Op::Add(ops::Add), Some(r)));
        let activation = activation_op(spec.activation).map(|op| (name.to_string(), op, None));
        if spec.add_before_activation {
            nodes.extend(add.into_iter().chain(activation));
        } else {
            nodes.extend(activation.into_iter().chain(add));
        }
        self.chain(input, nodes, name)
    }

    /// Loads the BatchNorm `prefix` (epsilon `eps`) over `input` and appends it with
    /// `activation` after it, where no conv precedes it (DenseNet's BatchNorm-ReLU before each
    /// conv). Returns the last output, named `name`.
    pub fn batch_norm(
        &mut self,
        prefix: &str,
        eps: f32,
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        let channels = self.graph.tensors[input].channels as usize;
        let bn = Op::BatchNorm(self.load_batch_norm(prefix, channels, eps)?);
        let mut nodes = vec![(prefix.to_string(), bn, None)];
        nodes.extend(activation_op(activation).map(|op| (name.to_string(), op, None)));
        self.chain(input, nodes, name)
    }

    /// Appends an activation over `input`; returns its output, named `name` (the identity:
    /// `input`).
    pub fn activation(
        &mut self,
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        match activation_op(activation) {
            Some(op) => self.graph.push(name, op, &[input], name),
            None => Ok(input),
        }
    }

    /// Appends an activation that the PyTorch module applies in place over `input` (see
    /// [`crate::graph::Graph::in_place`]); returns its output, named `name`.
    pub fn activation_in_place(
        &mut self,
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        let out = self.activation(input, activation, name)?;
        self.graph.in_place.push((input, out));
        Ok(out)
    }

    /// Appends the channel concatenation of `inputs` (one input: itself, no copy); returns its
    /// output, named `name`.
    pub fn concat(&mut self, inputs: &[usize], name: &str) -> Result<usize> {
        match inputs {
            [one] => Ok(*one),
            _ => {
                let op = Op::Concat(ops::Concat {
                    inputs: inputs.len(),
                });
                self.graph.push(name, op, inputs, name)
            }
        }
    }

    /// Appends an average pool (PyTorch's, symmetric padding, padding counted in the divisor)
    /// over `input`; returns its output.
    pub fn avg_pool(
        &mut self,
        input: usize,
        kernel: u32,
        stride: u32,
        pad: u32,
        name: &str,
    ) -> Result<usize> {
        let pool = ops::AvgPool {
            kernel,
            stride,
            pad,
            count_include_pad: true,
            ceil_mode: false,
        };
        self.graph.push(name, Op::AvgPool(pool), &[input], name)
    }

    /// Loads the BatchNorm `prefix` over `channels` channels.
    fn load_batch_norm(&self, prefix: &str, channels: usize, eps: f32) -> Result<ops::BatchNorm> {
        let gamma = self.file.tensor(&format!("{prefix}.weight"), &[channels])?;
        let beta = self.file.tensor(&format!("{prefix}.bias"), &[channels])?;
        let mean = self
            .file
            .tensor(&format!("{prefix}.running_mean"), &[channels])?;
        let var = self
            .file
            .tensor(&format!("{prefix}.running_var"), &[channels])?;
        if let Some(i) = var.iter().position(|v| *v < 0.0) {
            return Err(self.unsupported(format!(
                "{prefix}.running_var[{i}] is negative ({})",
                var[i]
            )));
        }
        Ok(ops::BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
        })
    }

    /// Appends a max pool (PyTorch's, symmetric padding) over `input`; returns its output.
    pub fn max_pool(
        &mut self,
        input: usize,
        kernel: u32,
        stride: u32,
        pad: u32,
        name: &str,
    ) -> Result<usize> {
        let pool = ops::MaxPool {
            kernel,
            stride,
            pad,
            ceil_mode: false,
        };
        self.graph.push(name, Op::MaxPool(pool), &[input], name)
    }

    /// Loads the squeeze-and-excitation module `prefix` (torchvision's `SqueezeExcitation`:
    /// `fc1` and `fc2`, 1×1 convs with biases) over `input` and appends it: global average pool,
    /// `fc1`, `activation`, `fc2`, `gate`, and the product with `input`. Returns its output,
    /// named `prefix`.
    pub fn squeeze_excite(
        &mut self,
        prefix: &str,
        input: usize,
        activation: Activation,
        gate: Activation,
    ) -> Result<usize> {
        let channels = self.graph.tensors[input].channels;
        let fc1 = format!("{prefix}.fc1");
        let squeeze = match self.file.shape(&format!("{fc1}.weight")) {
            Some([s, c, 1, 1]) if *c == channels as usize && *s > 0 => *s as u32,
            found => {
                return Err(self.file_error(
                    format!("{fc1}.weight"),
                    vec![0, channels as usize, 1, 1],
                    found,
                ))
            }
        };
        let pooled = self.graph.push(
            &format!("{prefix}.avgpool"),
            Op::GlobalAvgPool(ops::GlobalAvgPool),
            &[input],
            &format!("{prefix}.avgpool"),
        )?;
        let reduce = ConvSpec {
            conv_bias: true,
            activation,
            ..ConvSpec::new(&fc1, None, 1, squeeze)
        };
        let squeezed = self.conv(&reduce, pooled, &format!("{prefix}.activation"))?;
        let fc2 = format!("{prefix}.fc2");
        let expand = ConvSpec {
            conv_bias: true,
            activation: gate,
            ..ConvSpec::new(&fc2, None, 1, channels)
        };
        let scale = self.conv(&expand, squeezed, &format!("{prefix}.scale_activation"))?;
        self.graph
            .push(prefix, Op::Mul(ops::Mul), &[input, scale], prefix)
    }

    /// Loads the LayerNorm over channels `prefix` (`weight`, `bias`; epsilon `eps`) and appends
    /// it over `input`; returns its output, named `name`.
    pub fn layer_norm(
        &mut self,
        prefix: &str,
        eps: f32,
        input: usize,
        name: &str,
    ) -> Result<usize> {
        let c = self.graph.tensors[input].channels as usize;
        let norm = ops::LayerNorm {
            gamma: self.file.tensor(&format!("{prefix}.weight"), &[c])?,
            beta: self.file.tensor(&format!("{prefix}.bias"), &[c])?,
            eps,
        };
        self.graph.push(prefix, Op::LayerNorm(norm), &[input], name)
    }

    /// Loads the linear layer `prefix` applied to every pixel's channels of `input` (PyTorch's
    /// `nn.Linear` between channels-last permutes) and appends it with `activation`; returns its
    /// output, named `name`.
    pub fn pixel_linear(
        &mut self,
        prefix: &str,
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        let keys = [format!("{prefix}.weight"), format!("{prefix}.bias")];
        self.pixel_linear_from(prefix, &keys, input, activation, name)
    }

    /// [`Builder::pixel_linear`] with the weight and bias tensors named `weight` and `bias`
    /// (`nn.MultiheadAttention`'s `in_proj_weight` and `in_proj_bias`); the node is `module`.
    pub fn pixel_linear_from(
        &mut self,
        module: &str,
        [weight, bias]: &[String; 2],
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        let features = self.graph.tensors[input].channels as usize;
        let out = match self.file.shape(weight) {
            Some([o, f]) if *f == features && *o > 0 => *o,
            found => return Err(self.file_error(weight.clone(), vec![0, features], found)),
        };
        let linear = ops::Linear {
            weight: self.file.tensor(weight, &[out, features])?,
            bias: self.file.tensor(bias, &[out])?,
            out_features: out as u32,
        };
        let mut nodes = vec![(module.to_string(), Op::Linear(linear), None)];
        nodes.extend(activation_op(activation).map(|op| (name.to_string(), op, None)));
        self.chain(input, nodes, name)
    }

    /// Loads the per-channel factor `tensor` (`[channels]` or `[channels, 1, 1]`, ConvNeXt's
    /// `layer_scale`), multiplies `input` by it and adds `residual`; returns the sum, named
    /// `name`.
    pub fn scale_add(
        &mut self,
        tensor: &str,
        input: usize,
        residual: usize,
        name: &str,
    ) -> Result<usize> {
        let c = self.graph.tensors[input].channels as usize;
        let shape = if self.file.shape(tensor).is_some_and(|s| s.len() == 3) {
            vec![c, 1, 1]
        } else {
            vec![c]
        };
        let factors = self.file.tensor(tensor, &shape)?;
        let nodes = vec![
            (tensor.to_string(), Op::Scale(ops::Scale { factors }), None),
            (format!("{name}.add"), Op::Add(ops::Add), Some(residual)),
        ];
        self.chain(input, nodes, name)
    }

    /// The error for tensor `tensor` of the file: missing, or of shape `found` where `expected`
    /// (0: any size) was wanted.
    fn file_error(&self, tensor: String, expected: Vec<usize>, found: Option<&[usize]>) -> Error {
        match found {
            Some(s) => Error::TensorShape {
                path: self.file.path().to_path_buf(),
                tensor,
                expected,
                found: s.to_vec(),
            },
            None => Error::MissingTensor {
                path: self.file.path().to_path_buf(),
                tensor,
                expected,
            },
        }
    }

    /// Loads a vision transformer's prefix tokens (`prefix`, `[1, 1, channels]` each, in order)
    /// and position embedding `position` (`[1, tokens, channels]`, or `[1, patches, channels]`
    /// without the prefix tokens') and appends the token
    /// sequence of patch map `input`; returns it, named `name`.
    pub fn token_embed(
        &mut self,
        prefix: &[&str],
        position: &str,
        input: usize,
        name: &str,
    ) -> Result<usize> {
        let src = self.graph.tensors[input].clone();
        let c = src.channels as usize;
        let mut values = Vec::with_capacity(prefix.len() * c);
        for key in prefix {
            values.extend(self.file.tensor(key, &[1, 1, c])?);
        }
        // The position embedding covers every token, or (timm's `no_embed_class`) the patches.
        let patches = (src.height * src.width) as usize;
        let covers_prefix = self
            .file
            .shape(position)
            .is_none_or(|s| s.get(1) != Some(&patches));
        let tokens = patches + if covers_prefix { prefix.len() } else { 0 };
        let embed = ops::TokenEmbed {
            prefix: values,
            position: self.file.tensor(position, &[1, tokens, c])?,
            prefix_tokens: prefix.len() as u32,
            position_covers_prefix: covers_prefix,
        };
        self.graph
            .push(position, Op::TokenEmbed(embed), &[input], name)
    }

    /// Appends the self-attention `name` of `heads` heads (scores scaled by `1/√d`) over the
    /// QKV projection `qkv`; returns its output, named `name`.
    pub fn attention(&mut self, heads: u32, qkv: usize, name: &str) -> Result<usize> {
        let width = self.graph.tensors[qkv].channels / 3;
        let head_dim = width.checked_div(heads).unwrap_or(0);
        let attention = ops::Attention {
            heads,
            scale: (1.0 / f64::from(head_dim.max(1)).sqrt()) as f32,
        };
        self.graph
            .push(name, Op::Attention(attention), &[qkv], name)
    }

    /// Appends `input + residual`; returns the sum, named `name`.
    pub fn add(&mut self, input: usize, residual: usize, name: &str) -> Result<usize> {
        self.graph.push(
            &format!("{name}.add"),
            Op::Add(ops::Add),
            &[input, residual],
            name,
        )
    }

    /// Appends the selection of `input`'s first `count` tokens, side by side; returns them,
    /// named `name`.
    pub fn select_tokens(&mut self, count: u32, input: usize, name: &str) -> Result<usize> {
        self.graph.push(
            name,
            Op::SelectTokens(ops::SelectTokens { count }),
            &[input],
            name,
        )
    }

    /// Appends the patch tokens of token sequence `input` as their map (the graph's token grid:
    /// [`Builder::token_grid`] first), the prefix tokens dropped; returns it, named `name`.
    pub fn patch_grid(&mut self, input: usize, name: &str) -> Result<usize> {
        let grid = self
            .graph
            .token_grid
            .ok_or_else(|| self.unsupported("patch tokens without a token grid".into()))?;
        let op = ops::PatchGrid {
            prefix: grid.prefix,
            height: grid.height,
            width: grid.width,
        };
        self.graph.push(name, Op::PatchGrid(op), &[input], name)
    }

    /// Loads the linear layers `heads` (`[classes, channels]` each), each reading its own
    /// token of `input` (the first tokens side by side, [`Builder::select_tokens`]), and appends
    /// the mean of their outputs as one linear layer (DeiT's class and distillation heads);
    /// returns it, named `name`.
    pub fn mean_of_heads(&mut self, heads: &[&str], input: usize, name: &str) -> Result<usize> {
        let features = self.graph.tensors[input].channels as usize;
        let n = heads.len();
        let c = features / n.max(1);
        let key = format!("{}.weight", heads[0]);
        let classes = match self.file.shape(&key) {
            Some([o, f]) if *f == c && *o > 0 && c * n == features => *o,
            found => return Err(self.file_error(key, vec![1000, c], found)),
        };
        let (mut weight, mut bias) = (vec![0f32; classes * features], vec![0f32; classes]);
        let share = 1.0 / n as f32;
        for (h, head) in heads.iter().enumerate() {
            let w = self.file.tensor(&format!("{head}.weight"), &[classes, c])?;
            let b = self.file.tensor(&format!("{head}.bias"), &[classes])?;
            for k in 0..classes {
                for i in 0..c {
                    weight[k * features + h * c + i] = w[k * c + i] * share;
                }
                bias[k] += b[k];
            }
        }
        for b in &mut bias {
            *b *= share;
        }
        let linear = ops::Linear {
            weight,
            bias,
            out_features: classes as u32,
        };
        self.graph
            .push(heads[0], Op::Linear(linear), &[input], name)
    }

    /// Records a vision transformer's patch-token layout: a CAM at a token layer lays its patch
    /// tokens on this grid.
    pub fn token_grid(&mut self, grid: super::TokenGrid) {
        self.graph.token_grid = Some(grid);
    }

    /// Appends a global average pool over `input`; returns its 1×1 output.
    pub fn global_avg_pool(&mut self, input: usize) -> Result<usize> {
        self.graph.push(
            "avgpool",
            Op::GlobalAvgPool(ops::GlobalAvgPool),
            &[input],
            "pooled",
        )
    }

    /// Loads the fully connected layer `prefix` over `input` (flattened in PyTorch's order
    /// first unless it is one vector per image) and appends it with `activation`; returns its
    /// output, named `name`. Its output width comes from the file (a fine-tuned classifier has
    /// its own number of classes).
    pub fn linear(
        &mut self,
        prefix: &str,
        input: usize,
        activation: Activation,
        name: &str,
    ) -> Result<usize> {
        let src = self.graph.tensors[input].clone();
        let features = src.len();
        let key = format!("{prefix}.weight");
        let out = match self.file.shape(&key) {
            Some([o, f]) if *f == features && *o > 0 => *o,
            found => return Err(self.file_error(key, vec![1000, features], found)),
        };
        let weight = self.file.tensor(&key, &[out, features])?;
        let bias = self.file.tensor(&format!("{prefix}.bias"), &[out])?;
        let x = if src.height * src.width > 1 {
            self.graph
                .push("flatten", Op::Flatten(ops::Flatten), &[input], "flatten")?
        } else {
            input
        };
        let linear = ops::Linear {
            weight,
            bias,
            out_features: out as u32,
        };
        let mut nodes = vec![(prefix.to_string(), Op::Linear(linear), None)];
        nodes.extend(activation_op(activation).map(|op| (name.to_string(), op, None)));
        self.chain(x, nodes, name)
    }

    /// The finished model, lowered by the fusion pass; `logits` is the last linear layer's
    /// output. The input normalisation is the architecture's unless the file's header gives
    /// `mean` and `std` (as `tools/convert_weights.py --mean ... --std ...` writes them for a
    /// fine-tuned model).
    pub fn finish(self, description: Description, logits: usize) -> Result<Model> {
        let file = self.file;
        assemble(self.graph, description, logits, |key| file.header(key))
    }
}

/// The model of `graph`, lowered by the fusion pass; `logits` is the last linear layer's output.
/// `metadata` gives the file's own `mean` and `std`, which override the description's.
pub fn assemble<'m>(
    graph: Graph,
    mut description: Description,
    logits: usize,
    metadata: impl Fn(&str) -> Option<&'m str>,
) -> Result<Model> {
    for (key, value) in [
        ("mean", &mut description.mean),
        ("std", &mut description.std),
    ] {
        if let Some(text) = metadata(key) {
            *value = parse_channels(text)
                .map_err(|reason| graph.unsupported(format!("header `{key}`: {reason}")))?;
        }
    }
    if let Some(bad) = description.std.iter().find(|s| **s <= 0.0) {
        return Err(graph.unsupported(format!("header `std`: {bad} is not positive")));
    }
    let plan = graph::lower(&graph, logits)?;
    let classes = plan.tensors[plan.logits].channels;
    if !matches!(plan.ops.last(), Some(super::Op::Linear { output, .. }) if *output == plan.logits)
    {
        return Err(graph.unsupported("the network does not end in a linear layer".into()));
    }
    if !plan
        .target_layers
        .iter()
        .any(|(n, _)| *n == description.default_layer)
    {
        return Err(graph.unsupported(format!(
            "the default layer `{}` is not a layer of the network",
            description.default_layer
        )));
    }
    Ok(Model {
        source: graph.source.clone(),
        architecture: description.architecture,
        input_size: plan.tensors[plan.input].height,
        mean: description.mean,
        std: description.std,
        convs: plan.convs,
        elementwise: plan.elementwise,
        squeeze_excite: plan.squeeze_excite,
        layer_norms: plan.layer_norms,
        token_embeds: plan.token_embeds,
        attentions: plan.attentions,
        token_grid: graph.token_grid,
        linears: plan.linears,
        classes,
        tensors: plan.tensors,
        ops: plan.ops,
        input: plan.input,
        logits: plan.logits,
        target_layers: plan.target_layers,
        layer_activations: plan.layer_activations,
        default_layer: description.default_layer,
        labels: crate::Labels::default_for(classes as usize),
    })
}

/// The plain op of an activation (`None`: the identity).
fn activation_op(activation: Activation) -> Option<Op> {
    let kind = match activation {
        Activation::None => return None,
        Activation::Relu => ActivationKind::Relu,
        Activation::FunctionalRelu => ActivationKind::FunctionalRelu,
        Activation::Relu6 => ActivationKind::Relu6,
        Activation::Sigmoid => ActivationKind::Sigmoid,
        Activation::Silu => ActivationKind::Silu,
        Activation::HardSigmoid => ActivationKind::HardSigmoid,
        Activation::HardSwish => ActivationKind::HardSwish,
        Activation::Gelu => ActivationKind::Gelu,
        Activation::GeluTanh => ActivationKind::GeluTanh,
        Activation::LeakyRelu => ActivationKind::LeakyRelu,
    };
    Some(Op::Activation(ops::Activation::new(kind)))
}

/// Three per-channel values written `[0.485, 0.456, 0.406]` or `0.485,0.456,0.406`, finite.
pub fn parse_channels(text: &str) -> std::result::Result<[f32; 3], String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let values: Vec<f32> = inner
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{}` is not three numbers", crate::one_line(text)))?;
    match values.as_slice() {
        [r, g, b] if values.iter().all(|v| v.is_finite()) => Ok([*r, *g, *b]),
        _ => Err(format!(
            "`{}` is not three finite numbers",
            crate::one_line(text)
        )),
    }
}
