//! The network as the engine runs it: the plan of fused kernels (convolution with BatchNorm
//! folded in and an epilogue, max pool, global average pool, linear) over named tensors, in
//! execution order, that the forward pass walks and the backward pass derives its gradient rules
//! from. Each architecture family has its builder file, which writes the network as plain ops
//! ([`crate::graph`]); the fusion pass lowers them to this plan. Nothing outside the builders
//! knows which family a model is.

mod arch;
mod builder;
mod convnext;
mod densenet;
mod efficientnet;
mod efficientnet_lite;
mod inception;
mod mobilenet_v2;
mod mobilenet_v3;
mod onnx;
mod regnet;
mod resnet;
mod tensors;
mod vgg;
mod vit;
mod xception;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use crate::gpu::params::Activation;
use crate::Labels;
pub use arch::{architectures, Arch, Family, FAMILIES};
pub use builder::parse_channels;
pub use tensors::WeightFile;

/// How a convolution mixes channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// Every input channel feeds every output channel (the stem). GPU weight layout
    /// `[k, k, in, out]`.
    Dense,
    /// 1×1, every input channel feeds every output channel. GPU weight layout `[in, out]`.
    Pointwise,
    /// One filter per channel (`groups == channels`). GPU weight layout `[k, k, channels]`.
    Depthwise,
    /// Any other geometry ([`Conv::geometry`]: a non-square kernel, unequal strides,
    /// dilation, groups that are neither 1 nor the channels). GPU weight layout
    /// `[kh, kw, in / groups, out]`.
    General,
}

/// A convolution's geometry as PyTorch states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Kernel height and width.
    pub kernel: [u32; 2],
    /// Strides down and across.
    pub stride: [u32; 2],
    /// Dilations down and across.
    pub dilation: [u32; 2],
    /// Channel groups.
    pub groups: u32,
}

/// One convolution with its BatchNorm folded into `weight` and `bias`.
#[derive(Clone, Debug)]
pub struct Conv {
    /// The checkpoint's prefix, e.g. `_blocks.3._depthwise_conv` or `layer1.0.conv2`.
    pub name: String,
    /// Channel mixing.
    pub kind: ConvKind,
    /// Kernel height and width (for [`ConvKind::General`], the height).
    pub kernel: u32,
    /// Stride in both directions (for [`ConvKind::General`], down).
    pub stride: u32,
    /// The full geometry.
    pub geometry: ConvGeometry,
    /// Input channels.
    pub in_channels: u32,
    /// Output channels.
    pub out_channels: u32,
    /// Applied after the bias.
    pub activation: Activation,
    /// Where the op's residual (if any) is added: before the activation (ResNet: add, then
    /// ReLU) or after it (MBConv skip connections, whose projection has no activation).
    pub add_before_activation: bool,
    /// Folded weights in the GPU layout of `kind`.
    pub weight: Vec<f32>,
    /// Folded weights in PyTorch's `[out, in/groups, k, k]` layout, for the backward pass.
    pub weight_torch: Vec<f32>,
    /// Folded bias, `[out]`.
    pub bias: Vec<f32>,
    /// The biases FullGrad reads at this conv (pytorch-grad-cam's `FullGrad` takes every module
    /// whose exact type is `nn.Conv2d` or `nn.BatchNorm2d` and which has a bias), in module
    /// order: the conv's own bias, then the BatchNorm's `β − μ·γ/√(σ² + ε)`. Each is stored as
    /// the per-channel factor that turns the gradient at this op's output before its activation
    /// into that module's bias times the gradient at its output, `[out]`.
    pub full_grad_biases: Vec<Vec<f32>>,
}

/// How the backward pass computes a conv's input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvBackward {
    /// As a forward conv (shaders/conv2d.wgsl, its tuned variants included) over the masked
    /// output gradient with the weights transposed and flipped (`[kh, kw, out, in]` reversed in
    /// kh and kw): a dense conv with stride 1 and the padding that keeps the size, `(k − 1) / 2`,
    /// over multiples of 4 channels in and out (ResNet's and VGG's 3×3 convs, DenseNet's).
    Transposed,
    /// shaders/conv_general_grad.wgsl, which reads four input and four output channels per
    /// load: convs of any geometry, and the other dense ones over a multiple of 4 channels.
    General,
    /// The kind's own gradient kernel: pointwise, depthwise, and the dense stems over an
    /// image's three channels.
    Own,
}

impl Conv {
    /// How its input gradient is computed, given its padding at the top and left.
    pub fn backward(&self, pad_top: u32, pad_left: u32) -> ConvBackward {
        let same = (self.kernel - 1) / 2;
        match self.kind {
            ConvKind::Dense
                if self.stride == 1
                    && self.kernel % 2 == 1
                    && (pad_top, pad_left) == (same, same)
                    && self.in_channels.is_multiple_of(4)
                    && self.out_channels.is_multiple_of(4) =>
            {
                ConvBackward::Transposed
            }
            ConvKind::General => ConvBackward::General,
            ConvKind::Dense if self.in_channels.is_multiple_of(4) => ConvBackward::General,
            ConvKind::Dense | ConvKind::Pointwise | ConvKind::Depthwise => ConvBackward::Own,
        }
    }
}

/// A fully connected layer, `output = act(weight · input + bias)`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The checkpoint's prefix, e.g. `fc` or `classifier.0`.
    pub name: String,
    /// Input features: the input tensor's values per image, read in NHWC order.
    pub in_features: u32,
    /// Output features.
    pub out_features: u32,
    /// Applied after the bias.
    pub activation: Activation,
    /// `[out, in]`, the input index in NHWC order (a builder permutes a PyTorch layer that
    /// reads a flattened NCHW tensor).
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

/// An elementwise op no conv or linear layer absorbs: `output = act(input · scale + bias)`, the
/// per-channel scale and bias a BatchNorm's (when it has one).
#[derive(Clone, Debug)]
pub struct Elementwise {
    /// The module it comes from (the BatchNorm's, else the activation's), e.g. `features.norm5`.
    pub name: String,
    /// `(scale, bias)`, `[channels]` each: a BatchNorm's `γ/√(σ² + ε)` and `β − μ·γ/√(σ² + ε)`.
    pub affine: Option<(Vec<f32>, Vec<f32>)>,
    /// Applied after the scale and bias.
    pub activation: Activation,
    /// [`Activation::LeakyRelu`]'s slope (0 otherwise).
    pub slope: f32,
    /// A BatchNorm's bias as FullGrad counts it (`β − μ·γ/√(σ² + ε)`); `None` for an
    /// activation alone or a layer scale.
    pub full_grad_bias: Option<Vec<f32>>,
}

/// A squeeze-and-excitation block (EfficientNet, MobileNetV3, RegNetY): per image and channel,
/// `output = input · gate(expand · act(reduce · mean(input) + b₁) + b₂)`, the two 1×1 convs on
/// the pooled vector as matrices in PyTorch's `[out, in]` layout. The squeezed width need not
/// be a multiple of 4.
#[derive(Clone, Debug)]
pub struct SqueezeExcite {
    /// The module path (`features.1.0.block.1`), e.g. in messages.
    pub name: String,
    /// Channels of the input and output.
    pub channels: u32,
    /// Channels of the squeezed vector.
    pub squeeze: u32,
    /// Applied after the reduction (SiLU, ReLU).
    pub activation: Activation,
    /// Applied after the expansion (sigmoid, hardsigmoid).
    pub gate: Activation,
    /// `[squeeze, channels]`.
    pub reduce_weight: Vec<f32>,
    /// `[squeeze]`.
    pub reduce_bias: Vec<f32>,
    /// `[channels, squeeze]`.
    pub expand_weight: Vec<f32>,
    /// `[channels]`.
    pub expand_bias: Vec<f32>,
}

/// A LayerNorm over the channels of each pixel: `y = (x − mean) / √(var + ε) · γ + β`.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// The module path (`features.1.0.block.2`), e.g. in messages.
    pub name: String,
    /// γ, `[channels]`.
    pub gamma: Vec<f32>,
    /// β, `[channels]`.
    pub beta: Vec<f32>,
    /// ε.
    pub eps: f32,
}

/// A vision transformer's token sequence from its patch map ([`crate::graph::ops::TokenEmbed`]):
/// `output[t] = table[t] + (t ≥ prefix ? input[t − prefix] : 0)`, the table the prefix tokens
/// plus their position embedding (one float32 sum each, as PyTorch adds them), then the patch
/// tokens' position embedding.
#[derive(Clone, Debug)]
pub struct TokenEmbed {
    /// The module path (`pos_embed`), e.g. in messages.
    pub name: String,
    /// Prefix tokens.
    pub prefix: u32,
    /// `[tokens, channels]`.
    pub table: Vec<f32>,
}

/// Multi-head self-attention's core ([`crate::graph::ops::Attention`]).
#[derive(Clone, Debug)]
pub struct Attention {
    /// The module path (`blocks.3.attn`), e.g. in messages.
    pub name: String,
    /// Heads.
    pub heads: u32,
    /// The factor of the scores.
    pub scale: f32,
}

/// Where a vision transformer's patch tokens lie: after `prefix` tokens, on a `height`×`width`
/// grid. A CAM at a token layer drops the prefix and lays the patch tokens on the grid, the
/// embedding as channels (pytorch-grad-cam's ViT `reshape_transform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenGrid {
    /// Tokens before the patch tokens (class, distillation).
    pub prefix: u32,
    /// Rows of patches.
    pub height: u32,
    /// Columns of patches.
    pub width: u32,
}

/// The shape of one activation tensor of one image, stored NHWC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// A readable name (`stem`, `blocks.3.expand`, `head`, ...).
    pub name: String,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// Channels.
    pub channels: u32,
}

impl TensorSpec {
    /// Values per image.
    pub fn len(&self) -> usize {
        self.height as usize * self.width as usize * self.channels as usize
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One step of the forward plan; tensors are indices into [`Model::tensors`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Uploaded RGB8 images → the normalized input tensor.
    Preprocess {
        /// The input tensor.
        output: usize,
    },
    /// `output = act(conv(input))` with `residual` added (when present) before or after the
    /// activation, as [`Conv::add_before_activation`] says.
    Conv {
        /// Index into [`Model::convs`].
        conv: usize,
        /// Input tensor.
        input: usize,
        /// Output tensor.
        output: usize,
        /// Tensor added to the result (a skip connection).
        residual: Option<usize>,
        /// Padding before the first row; the rest (TF "SAME" may put one more row after the
        /// last) is implied by the output size.
        pad_top: u32,
        /// Padding before the first column.
        pad_left: u32,
    },
    /// Max pooling (PyTorch's `max_pool2d`: padded positions never win).
    MaxPool {
        /// Input tensor.
        input: usize,
        /// Output tensor.
        output: usize,
        /// Window side.
        kernel: u32,
        /// Stride in both directions.
        stride: u32,
        /// Symmetric padding.
        pad: u32,
    },
    /// Average pooling (PyTorch's `avg_pool2d`, floor mode).
    AvgPool {
        /// Input tensor.
        input: usize,
        /// Output tensor.
        output: usize,
        /// Window side.
        kernel: u32,
        /// Stride in both directions.
        stride: u32,
        /// Symmetric padding.
        pad: u32,
        /// Whether padded positions count in the divisor.
        count_include_pad: bool,
    },
    /// The inputs' channels one after another (same height and width).
    Concat {
        /// Input tensors, in channel order.
        inputs: Vec<usize>,
        /// Output tensor.
        output: usize,
    },
    /// Spatial mean per channel.
    GlobalAvgPool {
        /// Input tensor.
        input: usize,
        /// Output tensor (1×1×C).
        output: usize,
    },
    /// An elementwise op: a BatchNorm and/or an activation (any of [`Activation`]), where no
    /// conv or linear layer absorbs them. Its backward pass keeps its input.
    Elementwise {
        /// Index into [`Model::elementwise`].
        op: usize,
        /// Input tensor.
        input: usize,
        /// Output tensor (the input's shape).
        output: usize,
    },
    /// A squeeze-and-excitation block; its intermediate vectors are tensors of their own that
    /// only this op writes (see [`Op::scratch`]), kept for the backward pass.
    SqueezeExcite {
        /// Index into [`Model::squeeze_excite`].
        se: usize,
        /// Input tensor.
        input: usize,
        /// Output tensor (the input's shape).
        output: usize,
        /// 1×1×channels: the input's spatial mean.
        pooled: usize,
        /// 1×1×squeeze: the reduction before its activation.
        squeezed: usize,
        /// 1×1×channels: the expansion before its gate.
        excited: usize,
    },
    /// A LayerNorm over each pixel's channels. Its backward pass keeps its input.
    LayerNorm {
        /// Index into [`Model::layer_norms`].
        op: usize,
        /// Input tensor.
        input: usize,
        /// Output tensor (the input's shape).
        output: usize,
    },
    /// A vision transformer's token sequence from its patch map.
    TokenEmbed {
        /// Index into [`Model::token_embeds`].
        op: usize,
        /// Input tensor (the patch map).
        input: usize,
        /// Output tensor (1×tokens×channels).
        output: usize,
    },
    /// Multi-head self-attention from the QKV projection's output. Its backward pass keeps its
    /// input, its output and `stats`.
    Attention {
        /// Index into [`Model::attentions`].
        op: usize,
        /// Input tensor (1×tokens×3·channels).
        input: usize,
        /// Output tensor (1×tokens×channels).
        output: usize,
        /// 1×tokens×heads: each query's softmax normaliser, `max + log Σ exp` of its scores.
        stats: usize,
    },
    /// Tokens `first .. first + count` of a token sequence, one after another: the class
    /// token(s) a head reads (side by side as one vector), or the patch tokens as their map (a
    /// mean-pooled head's input).
    TokenRows {
        /// Input tensor (1×tokens×channels).
        input: usize,
        /// Output tensor (`count` tokens' values).
        output: usize,
        /// The first token taken.
        first: u32,
        /// Tokens taken.
        count: u32,
    },
    /// A fully connected layer over the whole input tensor (read in NHWC order).
    Linear {
        /// Index into [`Model::linears`].
        linear: usize,
        /// Input tensor.
        input: usize,
        /// Output tensor (1×1×features).
        output: usize,
    },
}

impl Op {
    /// The tensor it writes.
    pub fn output(&self) -> usize {
        match *self {
            Op::Preprocess { output }
            | Op::Conv { output, .. }
            | Op::MaxPool { output, .. }
            | Op::AvgPool { output, .. }
            | Op::Concat { output, .. }
            | Op::GlobalAvgPool { output, .. }
            | Op::Elementwise { output, .. }
            | Op::SqueezeExcite { output, .. }
            | Op::LayerNorm { output, .. }
            | Op::TokenEmbed { output, .. }
            | Op::Attention { output, .. }
            | Op::TokenRows { output, .. }
            | Op::Linear { output, .. } => output,
        }
    }

    /// The intermediate tensors it writes besides its output (a squeeze-and-excitation block's
    /// vectors).
    pub fn scratch(&self) -> Vec<usize> {
        match *self {
            Op::SqueezeExcite {
                pooled,
                squeezed,
                excited,
                ..
            } => vec![pooled, squeezed, excited],
            Op::Attention { stats, .. } => vec![stats],
            _ => Vec::new(),
        }
    }

    /// The tensors it reads (none for preprocessing, which reads the uploaded pixels).
    pub fn reads(&self) -> Vec<usize> {
        match *self {
            Op::Preprocess { .. } => Vec::new(),
            Op::Concat { ref inputs, .. } => inputs.clone(),
            Op::Conv {
                input, residual, ..
            } => std::iter::once(input).chain(residual).collect(),
            Op::MaxPool { input, .. }
            | Op::AvgPool { input, .. }
            | Op::GlobalAvgPool { input, .. }
            | Op::Elementwise { input, .. }
            | Op::SqueezeExcite { input, .. }
            | Op::LayerNorm { input, .. }
            | Op::TokenEmbed { input, .. }
            | Op::Attention { input, .. }
            | Op::TokenRows { input, .. }
            | Op::Linear { input, .. } => vec![input],
        }
    }
}

/// A loaded network, ready to upload.
#[derive(Clone, Debug)]
pub struct Model {
    /// The weights file it came from.
    pub source: PathBuf,
    /// The architecture's name, e.g. `efficientnet-lite0`.
    pub architecture: String,
    /// Side of the square input the network takes; also the side of the model-resolution CAM.
    pub input_size: u32,
    /// Input normalisation after `x/255`: `(x - mean) / std` per RGB channel.
    pub mean: [f32; 3],
    /// See [`Model::mean`].
    pub std: [f32; 3],
    /// Every convolution, BatchNorm folded.
    pub convs: Vec<Conv>,
    /// Every fully connected layer; the last one gives the logits.
    pub linears: Vec<Linear>,
    /// Every elementwise op (standalone BatchNorms and activations).
    pub elementwise: Vec<Elementwise>,
    /// Every squeeze-and-excitation block.
    pub squeeze_excite: Vec<SqueezeExcite>,
    /// Every LayerNorm.
    pub layer_norms: Vec<LayerNorm>,
    /// Every token embedding.
    pub token_embeds: Vec<TokenEmbed>,
    /// Every self-attention.
    pub attentions: Vec<Attention>,
    /// A vision transformer's patch-token layout; `None` for a CNN.
    pub token_grid: Option<TokenGrid>,
    /// Number of classes (from the last layer's shape).
    pub classes: u32,
    /// Every activation tensor of one image.
    pub tensors: Vec<TensorSpec>,
    /// The forward plan, in execution order.
    pub ops: Vec<Op>,
    /// The input tensor.
    pub input: usize,
    /// The logits tensor.
    pub logits: usize,
    /// Layers a Grad-CAM can target, by the module path PyTorch users pass to pytorch-grad-cam
    /// (`layer4`, `features.18`, `head`, `blocks.N`), with their output tensor.
    pub target_layers: Vec<(String, usize)>,
    /// (layer tensor, activations tensor) where a PyTorch module overwrites a layer's output in
    /// place after pytorch-grad-cam's hook kept a view of it (DenseNet's `F.relu(features,
    /// inplace=True)` after `features.norm5`): the CAM there reads the overwritten values, as the
    /// reference does, and the layer's own gradient ([`Model::activations_of`]).
    pub layer_activations: Vec<(usize, usize)>,
    /// The layer explained when none is named (pytorch-grad-cam's usual choice for the
    /// architecture).
    pub default_layer: String,
    /// The classes' names, given to each result ([`crate::Explanation::label`]): ImageNet's for
    /// 1,000 classes, `class N` otherwise, until [`Model::with_labels`] replaces them.
    pub labels: Labels,
}

/// The shipped EfficientNet-Lite0 weights (ImageNet, 19 MB), compiled in with the default
/// feature `builtin-model`.
#[cfg(feature = "builtin-model")]
pub const BUILTIN_WEIGHTS: &[u8] = include_bytes!("../../weights/efficientnet_lite0.safetensors");

/// The largest input side [`LoadOptions::input_size`] accepts.
pub const MAX_INPUT_SIZE: u32 = 1024;

/// What a user chooses about a model beyond its weights file; each `None` keeps what the file
/// and its architecture say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// The architecture, instead of recognising it from the tensors (not for ONNX files, whose
    /// graph says what they are).
    pub arch: Option<Arch>,
    /// The side of the square input the images are resized to: by default the architecture's
    /// (224, 299 for Inception-v3 and Xception, up to 600 for EfficientNet-B7), or an ONNX
    /// input's static size (224 when its height and width are dynamic, which an ONNX file with
    /// a static size other than this refuses).
    pub input_size: Option<u32>,
    /// Input normalisation mean per RGB channel after `x/255`; by default the architecture's
    /// or the file's `mean` metadata.
    pub mean: Option<[f32; 3]>,
    /// Input normalisation divisor per RGB channel; see [`LoadOptions::mean`].
    pub std: Option<[f32; 3]>,
}

impl LoadOptions {
    /// An input size outside 1..=[`MAX_INPUT_SIZE`] is an error.
    fn check(&self) -> Result<()> {
        match self.input_size {
            Some(n) if n == 0 || n > MAX_INPUT_SIZE => Err(Error::InvalidRequest(format!(
                "input size {n}: must be 1 to {MAX_INPUT_SIZE} pixels"
            ))),
            _ => Ok(()),
        }
    }

    /// `model` with the chosen normalisation.
    fn normalise(&self, mut model: Model) -> Result<Model> {
        if self.mean.is_some() || self.std.is_some() {
            let mean = self.mean.unwrap_or(model.mean);
            let std = self.std.unwrap_or(model.std);
            model.set_normalization(mean, std)?;
        }
        Ok(model)
    }
}

/// The name [`Model::builtin`] gives its source in messages.
pub const BUILTIN_WEIGHTS_NAME: &str = "<built-in efficientnet_lite0.safetensors>";

impl Model {
    /// Loads a network from a safetensors file, recognising its architecture from the tensor
    /// names and shapes, checking every tensor's presence, dtype, shape and values, and folding
    /// BatchNorm; or from an ONNX file (`.onnx`), with its external data beside it.
    ///
    /// ```no_run
    /// let model = gradcam::Model::load("weights/efficientnet_lite0.safetensors")?;
    /// assert_eq!(model.classes, 1000);
    /// # Ok::<(), gradcam::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(path, &LoadOptions::default())
    }

    /// [`Model::load`] as architecture `arch` (`None`: recognised from the file).
    pub fn load_as(path: impl AsRef<Path>, arch: Option<Arch>) -> Result<Self> {
        Self::load_with(
            path,
            &LoadOptions {
                arch,
                ..LoadOptions::default()
            },
        )
    }

    /// [`Model::load`] with what the user chose about the model: its architecture, input size
    /// and normalisation.
    ///
    /// ```no_run
    /// use gradcam::model::LoadOptions;
    /// let options = LoadOptions { input_size: Some(320), ..LoadOptions::default() };
    /// let model = gradcam::Model::load_with("densenet121.safetensors", &options)?;
    /// assert_eq!(model.input_size, 320);
    /// # Ok::<(), gradcam::Error>(())
    /// ```
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let path = path.as_ref();
        options.check()?;
        let model = if onnx::is_onnx(path) {
            let bytes = std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let dir = path.parent().unwrap_or(Path::new("."));
            Self::from_onnx(path, &bytes, Some(dir), options)?
        } else {
            let file = WeightFile::open(path)?;
            arch::build(&file, options.arch, options.input_size)?
        };
        options.normalise(model)
    }

    /// An ONNX model; an architecture named for it is an error, as the graph says what it is.
    fn from_onnx(
        name: &Path,
        bytes: &[u8],
        dir: Option<&Path>,
        options: &LoadOptions,
    ) -> Result<Self> {
        if let Some(arch) = options.arch {
            return Err(Error::InvalidRequest(format!(
                "{}: an ONNX model is built from its graph; it cannot be loaded as {arch}",
                crate::output::escape_path(name)
            )));
        }
        onnx::build(name, bytes, dir, options.input_size)
    }

    /// The shipped EfficientNet-Lite0 (ImageNet), compiled into the library: no file needed.
    /// Leave it out of a build with `default-features = false`.
    ///
    /// ```no_run
    /// let model = gradcam::Model::builtin()?;
    /// assert_eq!(model.labels.get(285), "Egyptian cat");
    /// # Ok::<(), gradcam::Error>(())
    /// ```
    #[cfg(feature = "builtin-model")]
    pub fn builtin() -> Result<Self> {
        Self::from_bytes(Path::new(BUILTIN_WEIGHTS_NAME), BUILTIN_WEIGHTS.to_vec())
    }

    /// The model with `labels` as its class names; an error unless there is one per class.
    pub fn with_labels(mut self, labels: Labels) -> Result<Self> {
        if labels.len() != self.classes as usize {
            return Err(Error::Labels {
                path: self.source.clone(),
                reason: format!(
                    "{} labels for a model with {} classes",
                    labels.len(),
                    self.classes
                ),
            });
        }
        self.labels = labels;
        Ok(self)
    }

    /// Like [`Model::load`] on a file already in memory; `name` is used in messages (and says
    /// by its `.onnx` extension that the bytes are an ONNX model, which may then have no external
    /// data).
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<Self> {
        Self::from_bytes_as(name, bytes, None)
    }

    /// [`Model::from_bytes`] as architecture `arch` (`None`: recognised from the file).
    pub fn from_bytes_as(name: &Path, bytes: Vec<u8>, arch: Option<Arch>) -> Result<Self> {
        Self::from_bytes_with(
            name,
            bytes,
            &LoadOptions {
                arch,
                ..LoadOptions::default()
            },
        )
    }

    /// [`Model::load_with`] on a file already in memory (see [`Model::from_bytes`]).
    pub fn from_bytes_with(name: &Path, bytes: Vec<u8>, options: &LoadOptions) -> Result<Self> {
        options.check()?;
        let model = if onnx::is_onnx(name) {
            Self::from_onnx(name, &bytes, None, options)?
        } else {
            let file = WeightFile::from_bytes(name, bytes)?;
            arch::build(&file, options.arch, options.input_size)?
        };
        options.normalise(model)
    }

    /// Per elementwise op, the channels of the tensor it reads (the length of its scale and
    /// bias).
    pub fn elementwise_channels(&self) -> Vec<usize> {
        let mut channels = vec![0; self.elementwise.len()];
        for op in &self.ops {
            if let Op::Elementwise { op, input, .. } = *op {
                channels[op] = self.tensors[input].channels as usize;
            }
        }
        channels
    }

    /// The tensor whose values the CAM at layer tensor `layer` reads (see
    /// [`Model::layer_activations`]): `layer` itself but where an in-place op overwrote it.
    pub fn activations_of(&self, layer: usize) -> usize {
        self.layer_activations
            .iter()
            .find(|(l, _)| *l == layer)
            .map_or(layer, |(_, a)| *a)
    }

    /// The token grid a CAM at layer tensor `layer` lays its tokens on: `Some` for a token
    /// sequence of a vision transformer (1×(prefix + h·w)), `None` for a map.
    pub fn token_grid_of(&self, layer: usize) -> Option<TokenGrid> {
        let t = &self.tensors[layer];
        self.token_grid
            .filter(|g| t.height == 1 && t.width == g.prefix + g.height * g.width)
    }

    /// The height and width of the map a CAM at layer tensor `layer` computes: the token grid
    /// of a token layer, else the tensor's own.
    pub fn cam_grid_of(&self, layer: usize) -> (u32, u32) {
        match self.token_grid_of(layer) {
            Some(g) => (g.height, g.width),
            None => (self.tensors[layer].height, self.tensors[layer].width),
        }
    }

    /// Values per image of all the activations.
    pub fn activation_values(&self) -> usize {
        self.tensors.iter().map(TensorSpec::len).sum()
    }

    /// Multiply-accumulates of one forward pass, ×2 = FLOPs.
    pub fn forward_macs(&self) -> u64 {
        let mut macs = 0u64;
        for op in &self.ops {
            if let Op::Conv { conv, output, .. } = op {
                let c = &self.convs[*conv];
                let t = &self.tensors[*output];
                let per_out = match c.kind {
                    ConvKind::Dense => c.kernel * c.kernel * c.in_channels,
                    ConvKind::Pointwise => c.in_channels,
                    ConvKind::Depthwise => c.kernel * c.kernel,
                    ConvKind::General => {
                        let g = c.geometry;
                        g.kernel[0] * g.kernel[1] * c.in_channels / g.groups
                    }
                };
                macs += t.len() as u64 * per_out as u64;
            }
            if let Op::Attention { output, .. } = op {
                // q·k and P·v for every pair of tokens, over every channel.
                let t = &self.tensors[*output];
                macs += 2 * u64::from(t.width) * t.len() as u64;
            }
        }
        let linear: u64 = self.linears.iter().map(|l| l.weight.len() as u64).sum();
        macs + linear
    }

    /// Sets the input normalisation (`(x/255 - mean) / std` per RGB channel), for a fine-tuned
    /// model trained with other statistics.
    pub fn set_normalization(&mut self, mean: [f32; 3], std: [f32; 3]) -> Result<()> {
        if mean.iter().chain(&std).any(|v| !v.is_finite()) || std.iter().any(|s| *s <= 0.0) {
            return Err(Error::InvalidRequest(format!(
                "normalisation mean {mean:?} / std {std:?}: values must be finite and std positive"
            )));
        }
        self.mean = mean;
        self.std = std;
        Ok(())
    }

    /// How the backward pass computes conv `conv`'s input gradient (see [`Conv::backward`]).
    pub fn conv_backward(&self, conv: usize) -> ConvBackward {
        let (pad_top, pad_left) = self
            .ops
            .iter()
            .find_map(|op| match *op {
                Op::Conv {
                    conv: c,
                    pad_top,
                    pad_left,
                    ..
                } if c == conv => Some((pad_top, pad_left)),
                _ => None,
            })
            .unwrap_or((u32::MAX, u32::MAX));
        self.convs[conv].backward(pad_top, pad_left)
    }

    /// The tensor the classifier (the layer writing the logits) reads.
    pub fn classifier_input(&self) -> Option<usize> {
        self.ops.iter().find_map(|op| match op {
            Op::Linear { input, output, .. } if *output == self.logits => Some(*input),
            _ => None,
        })
    }

    /// The map the global average pool before the classifier reads, when the classifier reads
    /// that pool's output.
    pub fn pooled_map(&self) -> Option<usize> {
        let features = self.classifier_input()?;
        self.ops.iter().find_map(|op| match op {
            Op::GlobalAvgPool { input, output } if *output == features => Some(*input),
            _ => None,
        })
    }

    /// The classifier: the last fully connected layer.
    pub fn classifier(&self) -> &Linear {
        self.linears
            .last()
            .expect("every model ends in a linear layer")
    }

    /// The tensors of a comma-separated list of target layers (`layer3,layer4`), or an error
    /// naming the first unknown one and listing the valid names.
    pub fn target_layer_list(&self, names: &str) -> Result<Vec<usize>> {
        names
            .split(',')
            .map(|name| self.target_layer(name.trim()))
            .collect()
    }

    /// The tensor of a target layer, or an error listing the valid names.
    pub fn target_layer(&self, name: &str) -> Result<usize> {
        self.target_layers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = self.target_layers.iter().map(|(n, _)| n.as_str()).collect();
                Error::InvalidRequest(format!(
                    "unknown layer `{name}`; valid layers: {} (`gradcam layers` lists them with \
                     their shapes)",
                    names.join(", ")
                ))
            })
    }
}

/// Output size and padding before, for one axis of a window of `kernel` with `stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// TensorFlow's "SAME": output `ceil(input / stride)`, the odd pixel of padding after.
    Same,
    /// PyTorch's `padding=p`: `p` on both sides.
    Symmetric(u32),
}

impl Padding {
    /// (padding before, padding after) for an axis of `input` values.
    pub fn pads(self, input: u32, kernel: u32, stride: u32) -> (u32, u32) {
        match self {
            Padding::Same => {
                let (output, before) = same_padding(input, kernel, stride);
                let total = ((output - 1) * stride + kernel).saturating_sub(input);
                (before, total - before)
            }
            Padding::Symmetric(p) => (p, p),
        }
    }

    /// (output size, padding before) for an axis of `input` values.
    pub fn apply(self, input: u32, kernel: u32, stride: u32) -> (u32, u32) {
        match self {
            Padding::Same => same_padding(input, kernel, stride),
            Padding::Symmetric(p) => ((input + 2 * p).saturating_sub(kernel) / stride + 1, p),
        }
    }
}

/// TF "SAME" padding for one axis: (output size, padding before). The rest of the total padding
/// goes after, so with stride 2 on an even input the extra pixel is at the bottom/right.
pub fn same_padding(input: u32, kernel: u32, stride: u32) -> (u32, u32) {
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + kernel).saturating_sub(input);
    (output, total / 2)
}
