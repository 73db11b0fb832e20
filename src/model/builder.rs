//! What every architecture's builder shares: reading a layer's tensors by its checkpoint prefix,
//! folding BatchNorm, laying weights out for the kernels, and appending tensors and ops to the
//! graph. An architecture's file says only which layers it has and how they connect.

use super::tensors::WeightFile;
use super::{Activation, Conv, ConvKind, Linear, Model, Op, Padding, TensorSpec};
use crate::error::{Error, Result};

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
    /// Kernel side.
    pub kernel: u32,
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
            kernel,
            stride: 1,
            padding: Padding::Symmetric(0),
            out_channels,
            activation: Activation::None,
            residual: None,
            add_before_activation: false,
        }
    }
}

/// The graph being built: layers, tensors, ops and the layers a CAM can target.
pub struct Graph<'a> {
    /// The weights.
    pub file: &'a WeightFile,
    convs: Vec<Conv>,
    linears: Vec<Linear>,
    tensors: Vec<TensorSpec>,
    ops: Vec<Op>,
    target_layers: Vec<(String, usize)>,
    input: usize,
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

impl<'a> Graph<'a> {
    /// A graph whose input is a `size`×`size` RGB image, preprocessed on the GPU.
    pub fn new(file: &'a WeightFile, size: u32) -> Self {
        let mut g = Self {
            file,
            convs: Vec::new(),
            linears: Vec::new(),
            tensors: Vec::new(),
            ops: Vec::new(),
            target_layers: Vec::new(),
            input: 0,
        };
        g.input = g.tensor("input", size, size, 3);
        g.ops.push(Op::Preprocess { output: g.input });
        g
    }

    /// The input tensor.
    pub fn input(&self) -> usize {
        self.input
    }

    /// Appends a tensor of one image's shape; returns its index.
    pub fn tensor(&mut self, name: &str, height: u32, width: u32, channels: u32) -> usize {
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            height,
            width,
            channels,
        });
        self.tensors.len() - 1
    }

    /// Tensor `id`'s shape.
    pub fn spec(&self, id: usize) -> &TensorSpec {
        &self.tensors[id]
    }

    /// Registers `tensor` as the output of the layer PyTorch users call `name`.
    pub fn layer(&mut self, name: &str, tensor: usize) {
        self.target_layers.push((name.to_string(), tensor));
    }

    /// An error saying why the file does not fit.
    pub fn unsupported(&self, reason: String) -> Error {
        Error::UnsupportedModel {
            path: self.file.path().to_path_buf(),
            reason,
        }
    }

    /// Loads the conv `spec` over `input` (its weight, optional bias and BatchNorm), folds the
    /// BatchNorm, and appends the conv and its op. Returns the output tensor, named `name`.
    pub fn conv(&mut self, spec: &ConvSpec, input: usize, name: &str) -> Result<usize> {
        let src = self.tensors[input].clone();
        let in_channels = src.channels;
        let prefix = spec.prefix;
        let (k, ci, co) = (
            spec.kernel as usize,
            in_channels as usize,
            spec.out_channels as usize,
        );
        let depthwise = spec.kind == ConvKind::Depthwise;
        let per_group = if depthwise { 1 } else { ci };
        if depthwise && ci != co {
            return Err(self.unsupported(format!(
                "{prefix}: depthwise conv with {ci} inputs and {co} outputs"
            )));
        }
        // A 1×1 stride-1 conv pads nothing (PyTorch's padding=0, or TF "SAME", which pads a
        // 1-wide kernel by 0): a channel mix per pixel.
        let kind = match spec.kind {
            ConvKind::Dense
                if spec.kernel == 1
                    && spec.stride == 1
                    && matches!(spec.padding, Padding::Same | Padding::Symmetric(0)) =>
            {
                ConvKind::Pointwise
            }
            other => other,
        };
        let raw = self
            .file
            .tensor(&format!("{prefix}.weight"), &[co, per_group, k, k])?;
        let conv_bias = if spec.conv_bias {
            self.file.tensor(&format!("{prefix}.bias"), &[co])?
        } else {
            vec![0.0; co]
        };
        // FullGrad's biases: the conv's own (the gradient at the conv's output is the
        // BatchNorm's times γ/√(σ² + ε)), then the BatchNorm's, computed in float32 as
        // pytorch-grad-cam's `get_bias_data` does.
        let mut full_grad_biases = Vec::new();
        // Folding in f64 keeps the folded weights as close as f32 allows to conv-then-BN.
        let (scale, bias): (Vec<f64>, Vec<f32>) = match spec.bn {
            Some(bn) => {
                let gamma = self.file.tensor(&format!("{bn}.weight"), &[co])?;
                let beta = self.file.tensor(&format!("{bn}.bias"), &[co])?;
                let mean = self.file.tensor(&format!("{bn}.running_mean"), &[co])?;
                let var = self.file.tensor(&format!("{bn}.running_var"), &[co])?;
                if let Some(i) = var.iter().position(|v| *v < 0.0) {
                    return Err(
                        self.unsupported(format!("{bn}.running_var[{i}] is negative ({})", var[i]))
                    );
                }
                if spec.conv_bias {
                    full_grad_biases.push(
                        (0..co)
                            .map(|o| conv_bias[o] * (gamma[o] / (var[o] + spec.bn_eps).sqrt()))
                            .collect(),
                    );
                }
                full_grad_biases.push(
                    (0..co)
                        .map(|o| -(mean[o] * gamma[o] / (var[o] + spec.bn_eps).sqrt()) + beta[o])
                        .collect(),
                );
                let eps = f64::from(spec.bn_eps);
                let scale: Vec<f64> = (0..co)
                    .map(|o| f64::from(gamma[o]) / (f64::from(var[o]) + eps).sqrt())
                    .collect();
                let bias = (0..co)
                    .map(|o| {
                        (f64::from(beta[o])
                            + (f64::from(conv_bias[o]) - f64::from(mean[o])) * scale[o])
                            as f32
                    })
                    .collect();
                (scale, bias)
            }
            None => {
                if spec.conv_bias {
                    full_grad_biases.push(conv_bias.clone());
                }
                (vec![1.0; co], conv_bias)
            }
        };
        if !in_channels.is_multiple_of(4) && kind != ConvKind::Dense
            || !spec.out_channels.is_multiple_of(4)
        {
            return Err(self.unsupported(format!(
                "{prefix}: channel counts must be multiples of 4 (found {ci} → {co})"
            )));
        }
        let weight_torch: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, w)| (f64::from(*w) * scale[i / (per_group * k * k)]) as f32)
            .collect();
        let mut weight = vec![0f32; weight_torch.len()];
        for o in 0..co {
            for i in 0..per_group {
                for y in 0..k {
                    for x in 0..k {
                        let t = ((o * per_group + i) * k + y) * k + x;
                        let g = match kind {
                            ConvKind::Dense => ((y * k + x) * ci + i) * co + o,
                            ConvKind::Pointwise => i * co + o,
                            ConvKind::Depthwise => (y * k + x) * co + o,
                        };
                        weight[g] = weight_torch[t];
                    }
                }
            }
        }
        let (out_h, pad_top) = spec.padding.apply(src.height, spec.kernel, spec.stride);
        let (out_w, pad_left) = spec.padding.apply(src.width, spec.kernel, spec.stride);
        if let Some(r) = spec.residual {
            let r = &self.tensors[r];
            if (r.height, r.width, r.channels) != (out_h, out_w, spec.out_channels) {
                return Err(self.unsupported(format!(
                    "{prefix}: the residual `{}` ({}×{}×{}) does not match the output \
                     ({out_h}×{out_w}×{co})",
                    r.name, r.height, r.width, r.channels
                )));
            }
            if !spec.add_before_activation && spec.activation != Activation::None {
                // The backward pass would need the value before the add to mask by.
                return Err(self.unsupported(format!(
                    "{prefix}: a residual added after an activation is not supported"
                )));
            }
        }
        let output = self.tensor(name, out_h, out_w, spec.out_channels);
        self.convs.push(Conv {
            name: prefix.to_string(),
            kind,
            kernel: spec.kernel,
            stride: spec.stride,
            in_channels,
            out_channels: spec.out_channels,
            activation: spec.activation,
            add_before_activation: spec.add_before_activation,
            weight,
            weight_torch,
            bias,
            full_grad_biases,
        });
        self.ops.push(Op::Conv {
            conv: self.convs.len() - 1,
            input,
            output,
            residual: spec.residual,
            pad_top,
            pad_left,
        });
        Ok(output)
    }

    /// Appends a max pool (PyTorch's, symmetric padding) over `input`; returns its output.
    pub fn max_pool(
        &mut self,
        input: usize,
        kernel: u32,
        stride: u32,
        pad: u32,
        name: &str,
    ) -> usize {
        let src = self.tensors[input].clone();
        let (h, _) = Padding::Symmetric(pad).apply(src.height, kernel, stride);
        let (w, _) = Padding::Symmetric(pad).apply(src.width, kernel, stride);
        let output = self.tensor(name, h, w, src.channels);
        self.ops.push(Op::MaxPool {
            input,
            output,
            kernel,
            stride,
            pad,
        });
        output
    }

    /// Appends a global average pool over `input`; returns its 1×1 output.
    pub fn global_avg_pool(&mut self, input: usize) -> usize {
        let channels = self.tensors[input].channels;
        let output = self.tensor("pooled", 1, 1, channels);
        self.ops.push(Op::GlobalAvgPool { input, output });
        output
    }

    /// Loads the fully connected layer `prefix` over the whole of `input` and appends it;
    /// returns its output. Its output width comes from the file (a fine-tuned classifier has its
    /// own number of classes). With `nchw_input`, the checkpoint's layer reads a flattened NCHW
    /// tensor, and its columns are permuted to the engine's NHWC order.
    pub fn linear(
        &mut self,
        prefix: &str,
        input: usize,
        activation: Activation,
        nchw_input: bool,
        name: &str,
    ) -> Result<usize> {
        let src = self.tensors[input].clone();
        let features = src.len();
        let key = format!("{prefix}.weight");
        let out = match self.file.shape(&key) {
            Some([o, f]) if *f == features && *o > 0 => *o,
            found => {
                let expected = vec![1000, features];
                return Err(match found {
                    Some(s) => Error::TensorShape {
                        path: self.file.path().to_path_buf(),
                        tensor: key,
                        expected,
                        found: s.to_vec(),
                    },
                    None => Error::MissingTensor {
                        path: self.file.path().to_path_buf(),
                        tensor: key,
                        expected,
                    },
                });
            }
        };
        let raw = self.file.tensor(&key, &[out, features])?;
        let bias = self.file.tensor(&format!("{prefix}.bias"), &[out])?;
        let weight = if nchw_input && src.height * src.width > 1 {
            let (hw, c) = ((src.height * src.width) as usize, src.channels as usize);
            let mut w = vec![0f32; raw.len()];
            for o in 0..out {
                let (from, to) = (&raw[o * features..], &mut w[o * features..]);
                for ch in 0..c {
                    for p in 0..hw {
                        to[p * c + ch] = from[ch * hw + p];
                    }
                }
            }
            w
        } else {
            raw
        };
        let output = self.tensor(name, 1, 1, out as u32);
        self.linears.push(Linear {
            name: prefix.to_string(),
            in_features: features as u32,
            out_features: out as u32,
            activation,
            weight,
            bias,
        });
        self.ops.push(Op::Linear {
            linear: self.linears.len() - 1,
            input,
            output,
        });
        Ok(output)
    }

    /// The finished model; `logits` is the last linear layer's output. The input normalisation
    /// is the architecture's unless the file's header gives `mean` and `std` (as
    /// `tools/convert_weights.py --mean ... --std ...` writes them for a fine-tuned model).
    pub fn finish(self, mut description: Description, logits: usize) -> Result<Model> {
        for (key, value) in [
            ("mean", &mut description.mean),
            ("std", &mut description.std),
        ] {
            if let Some(text) = self.file.header(key) {
                *value = parse_channels(text)
                    .map_err(|reason| self.unsupported(format!("header `{key}`: {reason}")))?;
            }
        }
        if let Some(bad) = description.std.iter().find(|s| **s <= 0.0) {
            return Err(self.unsupported(format!("header `std`: {bad} is not positive")));
        }
        let classes = self.tensors[logits].channels;
        if !matches!(self.ops.last(), Some(Op::Linear { output, .. }) if *output == logits) {
            return Err(self.unsupported("the network does not end in a linear layer".into()));
        }
        if !self
            .target_layers
            .iter()
            .any(|(n, _)| *n == description.default_layer)
        {
            return Err(self.unsupported(format!(
                "the default layer `{}` is not a layer of the network",
                description.default_layer
            )));
        }
        Ok(Model {
            source: self.file.path().to_path_buf(),
            architecture: description.architecture,
            input_size: self.tensors[self.input].height,
            mean: description.mean,
            std: description.std,
            convs: self.convs,
            linears: self.linears,
            classes,
            tensors: self.tensors,
            ops: self.ops,
            input: self.input,
            logits,
            target_layers: self.target_layers,
            default_layer: description.default_layer,
            labels: crate::Labels::default_for(classes as usize),
        })
    }
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
