//! Uniform parameter structs, one per kernel, mirrored field for field in `shaders/*.wgsl`.
//!
//! Each struct is declared with [`gpu_struct!`], which records its fields' names and byte offsets
//! ([`GpuStruct::FIELDS`]); each kernel names its parameter struct in the registry
//! (`src/gpu/kernels.rs`), and `tests/shaders.rs` checks every named field's offset and the
//! struct's size against what naga computes for the WGSL struct (fields whose names start with
//! `_` are padding and only count towards the size).

use bytemuck::{Pod, Zeroable};

/// A `#[repr(C)]` struct shared with WGSL, with its layout as data for the layout test.
pub trait GpuStruct: Pod {
    /// Each field's name and byte offset, in declaration order.
    const FIELDS: &'static [(&'static str, usize)];
}

/// Declares a `#[repr(C)]`, `Pod` struct mirrored by a WGSL struct and implements [`GpuStruct`]
/// for it.
macro_rules! gpu_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl GpuStruct for $name {
            const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field)),)*];
        }
    };
}

/// A struct's fields as [`GpuStruct::FIELDS`] gives them.
pub type Fields = &'static [(&'static str, usize)];

/// Structs the shaders read from storage buffers (not parameters), by the shaders that declare
/// them, for the layout test: (shader, WGSL struct name, fields, size).
pub const STORAGE_STRUCTS: &[(&str, &str, Fields, usize)] = &[
    (
        "preprocess",
        "ImageMeta",
        ImageMeta::FIELDS,
        std::mem::size_of::<ImageMeta>(),
    ),
    (
        "overlay_max",
        "ImageMeta",
        ImageMeta::FIELDS,
        std::mem::size_of::<ImageMeta>(),
    ),
    (
        "overlay",
        "ImageMeta",
        ImageMeta::FIELDS,
        std::mem::size_of::<ImageMeta>(),
    ),
];

/// An activation (`activation` field in the shaders; shaders/lib/activation.wgsl and
/// shaders/lib/unary.wgsl). The convolutions and linear layers apply only those whose derivative
/// their output determines (none, ReLU6, ReLU, functional ReLU); the elementwise kernel applies
/// every one. Code 3 is the guided ReLU of backward passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity: the projection convs of the MBConv blocks.
    None = 0,
    /// `min(max(x, 0), 6)`.
    Relu6 = 1,
    /// `max(x, 0)`.
    Relu = 2,
    /// `1 / (1 + exp(−x))`.
    Sigmoid = 4,
    /// `x · sigmoid(x)` (SiLU, swish).
    Silu = 5,
    /// `min(max(x + 3, 0), 6) / 6` (PyTorch's `Hardsigmoid`).
    HardSigmoid = 6,
    /// `x · min(max(x + 3, 0), 6) / 6`.
    HardSwish = 7,
    /// `x · Φ(x)`, Φ the normal distribution function (GELU, `approximate='none'`).
    Gelu = 8,
    /// GELU's tanh approximation, `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    GeluTanh = 9,
    /// `x` where positive, else `slope · x` (the slope is a parameter of the op).
    LeakyRelu = 10,
    /// `max(x, 0)` called as a function (`F.relu`, `torch.relu`) rather than through an
    /// `nn.ReLU` module: the same ReLU, which guided backpropagation leaves plain, as
    /// pytorch-grad-cam's `GuidedBackpropReLUModel` replaces only the modules (torchvision's
    /// Inception-v3 applies every ReLU so, DenseNet its last).
    FunctionalRelu = 11,
}

impl Activation {
    /// Whether its derivative is a function of its output (so a kernel that keeps only its
    /// output can be differentiated).
    pub fn derivative_from_output(self) -> bool {
        matches!(
            self,
            Activation::None | Activation::Relu | Activation::Relu6 | Activation::FunctionalRelu
        )
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/preprocess.wgsl.
    pub struct PreprocessParams {
        pub batch: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub _pad: u32,
        /// Per-channel mean subtracted after `x/255` (RGB, fourth lane unused).
        pub mean: [f32; 4],
        /// Per-channel divisor applied after the mean: the standard deviation (RGB, fourth lane
        /// unused).
        pub deviation: [f32; 4],
    }
}

gpu_struct! {
    /// Kept in sync with `ImageMeta` in shaders/lib/image.wgsl.
    pub struct ImageMeta {
        /// Byte offset of the image's first pixel in the packed RGB8 upload.
        pub offset: u32,
        pub width: u32,
        pub height: u32,
        /// Pixel offset of the image's overlay in the batch's RGBA8 output, a multiple of
        /// [`OVERLAY_ROW_PIXELS`]; its rows are [`overlay_row_pitch`] pixels apart.
        pub out_offset: u32,
    }
}

/// Overlay rows start this many pixels apart at least: 256 bytes of RGBA8, wgpu's
/// `COPY_BYTES_PER_ROW_ALIGNMENT`, so that each image's overlay can be copied from the batch's
/// buffer into a texture as it lies.
pub const OVERLAY_ROW_PIXELS: u32 = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / 4;

/// Pixels from one row of an image's overlay to the next: the width rounded up to
/// [`OVERLAY_ROW_PIXELS`] (`overlay_row_pitch` in shaders/lib/image.wgsl).
pub const fn overlay_row_pitch(width: u32) -> u32 {
    width.next_multiple_of(OVERLAY_ROW_PIXELS)
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/conv2d.wgsl.
    pub struct ConvParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub in_c: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub out_c: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad_top: u32,
        pub pad_left: u32,
        pub activation: u32,
        /// 0: no residual; 1: added after the activation; 2: before it.
        pub has_residual: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/depthwise_conv.wgsl.
    pub struct DepthwiseParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub channels: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad_top: u32,
        pub pad_left: u32,
        pub activation: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/pointwise_conv.wgsl.
    pub struct PointwiseParams {
        pub rows: u32,
        pub in_channels: u32,
        pub out_channels: u32,
        pub activation: u32,
        pub has_residual: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/global_avg_pool.wgsl.
    pub struct PoolParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/squeeze_excite.wgsl (every `se_*` kernel).
    pub struct SqueezeExciteParams {
        pub batch: u32,
        /// Pixels per image of the block's input.
        pub pixels: u32,
        /// Channels of the block's input (a multiple of 4).
        pub channels: u32,
        /// Channels of the squeezed vector.
        pub squeeze: u32,
        /// The [`Activation`] after the reduction (or 3, the guided ReLU).
        pub activation: u32,
        /// The gate's [`Activation`] (sigmoid or hardsigmoid).
        pub gate: u32,
        /// se_scale_grad: 1 to add `extra`.
        pub add_extra: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/global_avg_pool_grad.wgsl.
    pub struct PoolGradParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 1: add `extra` (another reader's gradient of the input).
        pub add_extra: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/conv_general.wgsl (conv_general.wgsl and
    /// conv_general_grad.wgsl).
    pub struct ConvGeneralParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub in_c: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub out_c: u32,
        pub groups: u32,
        pub kernel_h: u32,
        pub kernel_w: u32,
        pub stride_h: u32,
        pub stride_w: u32,
        pub dilation_h: u32,
        pub dilation_w: u32,
        pub pad_top: u32,
        pub pad_left: u32,
        /// Forward: the epilogue's [`Activation`]; backward: the mask's (or 3, the guided ReLU).
        pub activation: u32,
        /// Forward: 0 none, 1 residual added after the activation, 2 before it.
        pub has_residual: u32,
        /// Backward: 1 to add `extra`.
        pub add_extra: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/layer_norm.wgsl and shaders/layer_norm_grad.wgsl.
    pub struct LayerNormParams {
        /// Pixels of the batch.
        pub pixels: u32,
        pub channels: u32,
        pub eps: f32,
        /// layer_norm_grad: 1 to add `extra`.
        pub add_extra: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/token_embed.wgsl.
    pub struct TokenEmbedParams {
        pub batch: u32,
        /// Tokens of the output, prefix included.
        pub tokens: u32,
        /// Channels / 4.
        pub channels4: u32,
        /// Prefix tokens.
        pub prefix: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/token_rows.wgsl.
    pub struct TokenRowsParams {
        pub batch: u32,
        /// Channels / 4.
        pub channels4: u32,
        /// Tokens per image of the input.
        pub in_tokens: u32,
        /// Tokens per image of the output.
        pub out_tokens: u32,
        /// The first token copied, in the input.
        pub in_first: u32,
        /// The first token copied, in the output.
        pub out_first: u32,
        /// Tokens copied.
        pub count: u32,
        /// 1 to add `extra`.
        pub add_extra: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/attention.wgsl (attention.wgsl,
    /// attention_grad_query.wgsl, attention_grad_key_value.wgsl).
    pub struct AttentionParams {
        pub batch: u32,
        pub tokens: u32,
        pub heads: u32,
        /// Channels per head / 4.
        pub head_dim4: u32,
        /// The scores' factor.
        pub scale: f32,
        /// Gradient kernels: 1 to add `extra`.
        pub add_extra: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/linear.wgsl.
    pub struct LinearParams {
        pub batch: u32,
        pub in_features: u32,
        /// Rows computed by this dispatch.
        pub out_features: u32,
        /// The [`Activation`] applied after the bias.
        pub activation: u32,
        /// First row of this dispatch, and the layer's rows.
        pub out_offset: u32,
        pub out_total: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/linear_grad.wgsl.
    pub struct LinearGradParams {
        pub batch: u32,
        pub in_features: u32,
        /// Rows of this dispatch.
        pub out_features: u32,
        pub out_offset: u32,
        pub out_total: u32,
        /// The layer's [`Activation`] as a mask on its output gradient.
        pub mask: u32,
        /// 1: add to the input gradient (every row range after the first).
        pub accumulate: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/activation_grad.wgsl.
    pub struct ActivationGradParams {
        /// Values / 4.
        pub len4: u32,
        /// The [`Activation`] whose derivative masks.
        pub activation: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/concat.wgsl and shaders/concat_grad.wgsl.
    pub struct ConcatParams {
        /// Pixels of the batch (images × height × width).
        pub pixels: u32,
        /// The input's channels / 4.
        pub part_c4: u32,
        /// The output's channels / 4.
        pub total_c4: u32,
        /// The input's first channel in the output / 4.
        pub offset_c4: u32,
        /// concat_grad: 1 to add `extra`.
        pub add_extra: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/avg_pool.wgsl and shaders/avg_pool_grad.wgsl.
    pub struct AvgPoolParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub channels: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad: u32,
        /// 1: padded positions count in the divisor.
        pub count_include_pad: u32,
        /// avg_pool_grad: 1 to add `extra`.
        pub add_extra: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/elementwise.wgsl.
    pub struct ElementwiseParams {
        /// Values / 4.
        pub len4: u32,
        /// Channels / 4 (the innermost axis).
        pub channels4: u32,
        /// The [`Activation`].
        pub activation: u32,
        /// 1: `x · scale + bias` per channel first.
        pub has_affine: u32,
        /// [`Activation::LeakyRelu`]'s slope.
        pub slope: f32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/elementwise_grad.wgsl.
    pub struct ElementwiseGradParams {
        /// Values / 4.
        pub len4: u32,
        /// Channels / 4 (the innermost axis).
        pub channels4: u32,
        /// The [`Activation`] (or 3, the guided ReLU).
        pub activation: u32,
        /// 1: the op scales its input per channel first.
        pub has_affine: u32,
        /// [`Activation::LeakyRelu`]'s slope.
        pub slope: f32,
        /// 1: add `extra` (another reader's gradient of the input).
        pub add_extra: u32,
        /// 1: `forward` is the op's output (the activation's derivative is a function of it),
        /// 0: its input.
        pub from_output: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/select_target.wgsl.
    pub struct SelectTargetParams {
        pub batch: u32,
        pub classes: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/logit_grad.wgsl.
    pub struct LogitGradParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/pointwise_conv_grad.wgsl.
    pub struct PointwiseGradParams {
        pub rows: u32,
        pub in_channels: u32,
        pub out_channels: u32,
        pub mask: u32,
        pub add_extra: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/depthwise_conv_grad.wgsl.
    pub struct DepthwiseGradParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub channels: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad_top: u32,
        pub pad_left: u32,
        pub mask: u32,
        pub add_extra: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/conv2d_grad.wgsl.
    pub struct ConvGradParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub in_c: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub out_c: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad_top: u32,
        pub pad_left: u32,
        /// The conv's [`Activation`] as a mask on its output gradient (0 none, 1 ReLU6, 2 ReLU).
        pub mask: u32,
        pub add_extra: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/max_pool.wgsl.
    pub struct MaxPoolParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub channels: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/max_pool_grad.wgsl.
    pub struct MaxPoolGradParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub channels: u32,
        pub out_h: u32,
        pub out_w: u32,
        pub kernel: u32,
        pub stride: u32,
        pub pad: u32,
        pub add_extra: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_combine.wgsl.
    pub struct CamCombineParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 1: ReLU of the sum.
        pub relu: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_channel_weights.wgsl.
    pub struct CamChannelWeightsParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 1: Grad-CAM++, 2: XGrad-CAM, 3: FEM.
        pub mode: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_elementwise.wgsl.
    pub struct CamElementwiseParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 0: HiResCAM, 1: GradCAMElementWise, 2: LayerCAM.
        pub mode: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_center.wgsl.
    pub struct CamCenterParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// The matrix centred: shaders/lib/eigen_matrix.wgsl's `source` (0 A, 1 G ⊙ A, 2 w_c A_c,
        /// 3 ReLU(G ⊙ A), 4 ReLU(G) ⊙ A).
        pub source: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_gram.wgsl.
    pub struct CamGramParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 0: X Xᵀ over pixels; 1: Xᵀ X over channels.
        pub mode: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_eigen.wgsl.
    pub struct CamEigenParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// As [`CamGramParams::mode`].
        pub mode: u32,
        /// As [`CamCenterParams::source`].
        pub source: u32,
        pub max_iterations: u32,
        /// 1: the projection ReLU-ed; 0: as it is (FullGrad's eigen-smooth).
        pub relu: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_saliency.wgsl.
    pub struct CamSaliencyParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        pub _pad: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/full_grad.wgsl (full_grad_stats, full_grad_sum).
    pub struct FullGradParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        /// 0: a bias layer's map, 1: the input's.
        pub mode: u32,
        /// The conv's activation (shaders/lib/activation.wgsl's code), for a bias layer.
        pub activation: u32,
        /// full_grad_sum: add to the map instead of writing it.
        pub accumulate: u32,
        /// full_grad_sum: the channels summed, `first_channel..first_channel + channel_count`.
        pub first_channel: u32,
        pub channel_count: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_minmax.wgsl.
    pub struct CamMinMaxParams {
        pub batch: u32,
        /// Values per image (pairs with [`MINMAX_PAIRS`]).
        pub len: u32,
        /// 0: the values as they are; 1: after a ReLU; [`MINMAX_PAIRS`]: (min, max) pairs of an
        /// earlier pass, reduced to one pair.
        pub relu: u32,
        /// Workgroups per image, each writing the (min, max) of its share ([`reduction_chunks`]).
        pub chunks: u32,
    }
}

/// [`CamMinMaxParams::relu`] for a second pass over the first pass's per-chunk pairs.
pub const MINMAX_PAIRS: u32 = 2;

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_resize.wgsl.
    pub struct CamResizeParams {
        pub batch: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub out_h: u32,
        pub out_w: u32,
        /// Which of the `layers` target layers this map is: the first writes, the others add, the
        /// last divides by `layers` (the multi-layer mean).
        pub layer: u32,
        pub layers: u32,
        /// 1: min-max scale the map with `stats` first; 0: resize it as it is.
        pub normalise: u32,
        /// `dst` holds this many maps interleaved per position, this one at `dst_channel`
        /// (FullGrad's eigen-smooth matrix); 1 and 0 for a plain map.
        pub dst_channels: u32,
        pub dst_channel: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/cam_normalize.wgsl.
    pub struct CamNormalizeParams {
        pub batch: u32,
        pub len: u32,
        /// 1: ReLU before scaling (the stats are the ReLU'd map's).
        pub relu: u32,
        /// Added to the range.
        pub eps: f32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/overlay_max.wgsl and shaders/overlay.wgsl.
    pub struct OverlayParams {
        pub batch: u32,
        pub cam_h: u32,
        pub cam_w: u32,
        pub total_pixels: u32,
        /// `f32(1 - w)` with the subtraction in f64, as numpy does with a Python float.
        pub heat_weight: f32,
        /// `f32(w)`.
        pub image_weight: f32,
        /// Workgroups per image of shaders/overlay_max.wgsl, each writing one partial maximum
        /// ([`reduction_chunks`]).
        pub chunks: u32,
        pub _pad: u32,
    }
}

/// The most workgroups per image a per-image reduction runs (shaders/overlay_max.wgsl,
/// shaders/cam_minmax.wgsl): partial results per image.
pub const MAX_REDUCTION_CHUNKS: u32 = 64;

/// Workgroups per image for a per-image reduction over `len` values (overlay_max.wgsl over the
/// largest image's pixels, cam_minmax.wgsl over a map): one per 4,096 (64 per invocation), at
/// most [`MAX_REDUCTION_CHUNKS`], so that one large image or a 224² map at batch 1 fills a GPU
/// rather than one workgroup.
pub fn reduction_chunks(len: u32) -> u32 {
    len.div_ceil(4096).clamp(1, MAX_REDUCTION_CHUNKS)
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/score_minmax.wgsl.
    pub struct ScoreMinMaxParams {
        pub items: u32,
        pub channels: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub size: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/score_mask.wgsl.
    pub struct ScoreMaskParams {
        pub rows: u32,
        pub channels: u32,
        pub images: u32,
        pub in_h: u32,
        pub in_w: u32,
        pub size: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/ablate.wgsl.
    pub struct AblateParams {
        pub rows: u32,
        pub channels: u32,
        pub images: u32,
        pub pixels: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/probe_broadcast.wgsl.
    pub struct ProbeBroadcastParams {
        pub rows: u32,
        pub per_image: u32,
        pub images: u32,
        pub len: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/probe_gather.wgsl.
    pub struct ProbeGatherParams {
        pub rows: u32,
        pub per_image: u32,
        pub images: u32,
        pub classes: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/probe_weights.wgsl.
    pub struct ProbeWeightsParams {
        pub batch: u32,
        pub channels: u32,
        pub classes: u32,
        pub mode: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/guided.wgsl (guided_stats, guided_image).
    pub struct GuidedStatsParams {
        pub batch: u32,
        pub pixels: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/augment.wgsl.
    pub struct AugmentParams {
        pub batch: u32,
        pub size: u32,
        pub flip: u32,
        pub factor: f32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/aug_mean.wgsl.
    pub struct AugMeanParams {
        pub batch: u32,
        pub size: u32,
        pub variant: u32,
        pub variants: u32,
        pub flip: u32,
        pub finish: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/smooth_noise.wgsl.
    pub struct SmoothNoiseParams {
        pub batch: u32,
        pub size: u32,
        pub sample: u32,
        pub seed: u32,
        pub noise_std: f32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/gradient_moments.wgsl.
    pub struct GradientMomentsParams {
        pub len: u32,
        /// 1: the first sample (the sums are written, not added to).
        pub first: u32,
        pub _pad: [u32; 2],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/smooth_gradcampp_weights.wgsl.
    pub struct SmoothGradCamPlusPlusParams {
        pub batch: u32,
        pub pixels: u32,
        pub channels: u32,
        pub samples: u32,
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/metric_perturb.wgsl.
    pub struct MetricPerturbParams {
        pub batch: u32,
        pub size: u32,
        /// 0: the input times the CAM, 1: the baseline, 2: ranked positions from the input.
        pub mode: u32,
        /// Mode 2: how many of the highest-ranked positions are inside.
        pub count: u32,
        /// Mode 2: 1 where the input fills the inside, 0 where it fills the outside.
        pub input_inside: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/target_score.wgsl.
    pub struct TargetScoreParams {
        pub batch: u32,
        pub classes: u32,
        pub slots: u32,
        pub slot: u32,
        /// 1: the softmax probability, 0: the logit.
        pub softmax: u32,
        pub _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Kept in sync with `Params` in shaders/lib/rank.wgsl (rank_init, rank_sort, rank_scatter).
    pub struct RankParams {
        pub batch: u32,
        pub positions: u32,
        /// `positions` rounded up to a power of two.
        pub padded: u32,
        /// rank_sort.wgsl's stage: the length of the bitonic runs and the compare distance.
        pub k: u32,
        pub j: u32,
        pub _pad: [u32; 3],
    }
}
