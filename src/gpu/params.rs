//! Uniform parameter structs, one per kernel, mirrored field for field in `shaders/*.wgsl`.
//!
//! Each struct is kept in sync with the `Params` struct of the shader named in its doc comment;
//! `tests/shaders.rs` checks their sizes against what naga computes for the WGSL structs.

use bytemuck::{Pod, Zeroable};

/// Activation applied after a convolution's folded bias (`activation` field in the shaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity: the projection convs of the MBConv blocks.
    None = 0,
    /// `min(max(x, 0), 6)`.
    Relu6 = 1,
    /// `max(x, 0)`.
    Relu = 2,
}

/// Kept in sync with `Params` in shaders/preprocess.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PreprocessParams {
    pub batch: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub _pad: u32,
    /// Per-channel mean subtracted after `x/255` (RGB, fourth lane unused).
    pub mean: [f32; 4],
    /// Per-channel divisor applied after the mean (RGB, fourth lane unused).
    pub std: [f32; 4],
}

/// Kept in sync with `ImageMeta` in shaders/lib/image.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ImageMeta {
    /// Byte offset of the image's first pixel in the packed RGB8 upload.
    pub offset: u32,
    pub width: u32,
    pub height: u32,
    /// Pixel offset of the image's overlay in the batch's RGBA8 output.
    pub out_offset: u32,
}

/// Kept in sync with `Params` in shaders/conv2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/depthwise_conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/pointwise_conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PointwiseParams {
    pub rows: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    pub activation: u32,
    pub has_residual: u32,
    pub _pad: [u32; 3],
}

/// Kept in sync with `Params` in shaders/global_avg_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PoolParams {
    pub batch: u32,
    pub pixels: u32,
    pub channels: u32,
    pub _pad: u32,
}

/// Kept in sync with `Params` in shaders/linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/linear_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/activation_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ActivationGradParams {
    /// Values / 4.
    pub len4: u32,
    /// The [`Activation`] whose derivative masks.
    pub activation: u32,
    pub _pad: [u32; 2],
}

/// Kept in sync with `Params` in shaders/select_target.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SelectTargetParams {
    pub batch: u32,
    pub classes: u32,
    pub _pad: [u32; 2],
}

/// Kept in sync with `Params` in shaders/logit_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LogitGradParams {
    pub batch: u32,
    pub pixels: u32,
    pub channels: u32,
    pub _pad: u32,
}

/// Kept in sync with `Params` in shaders/pointwise_conv_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PointwiseGradParams {
    pub rows: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    pub mask: u32,
    pub add_extra: u32,
    pub _pad: [u32; 3],
}

/// Kept in sync with `Params` in shaders/depthwise_conv_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/conv2d_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/max_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/max_pool_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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

/// Kept in sync with `Params` in shaders/cam_combine.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CamCombineParams {
    pub batch: u32,
    pub pixels: u32,
    pub channels: u32,
    pub _pad: u32,
}

/// Kept in sync with `Params` in shaders/cam_minmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CamMinMaxParams {
    pub batch: u32,
    pub len: u32,
    pub relu: u32,
    pub _pad: u32,
}

/// Kept in sync with `Params` in shaders/cam_resize.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
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
    pub _pad: u32,
}

/// Kept in sync with `Params` in shaders/cam_normalize.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CamNormalizeParams {
    pub batch: u32,
    pub len: u32,
    pub _pad: [u32; 2],
}

/// Kept in sync with `Params` in shaders/overlay_max.wgsl and shaders/overlay.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct OverlayParams {
    pub batch: u32,
    pub cam_h: u32,
    pub cam_w: u32,
    pub total_pixels: u32,
    /// `f32(1 - w)` with the subtraction in f64, as numpy does with a Python float.
    pub heat_weight: f32,
    /// `f32(w)`.
    pub image_weight: f32,
    pub _pad: [u32; 2],
}

/// The size of each params struct, by shader name, for the layout test.
pub const PARAMS_SIZES: &[(&str, &str, usize)] = &[
    (
        "preprocess",
        "Params",
        std::mem::size_of::<PreprocessParams>(),
    ),
    ("preprocess", "ImageMeta", std::mem::size_of::<ImageMeta>()),
    ("conv2d", "Params", std::mem::size_of::<ConvParams>()),
    (
        "depthwise_conv",
        "Params",
        std::mem::size_of::<DepthwiseParams>(),
    ),
    (
        "pointwise_conv",
        "Params",
        std::mem::size_of::<PointwiseParams>(),
    ),
    (
        "global_avg_pool",
        "Params",
        std::mem::size_of::<PoolParams>(),
    ),
    ("linear", "Params", std::mem::size_of::<LinearParams>()),
    (
        "linear_grad",
        "Params",
        std::mem::size_of::<LinearGradParams>(),
    ),
    (
        "activation_grad",
        "Params",
        std::mem::size_of::<ActivationGradParams>(),
    ),
    (
        "select_target",
        "Params",
        std::mem::size_of::<SelectTargetParams>(),
    ),
    (
        "logit_grad",
        "Params",
        std::mem::size_of::<LogitGradParams>(),
    ),
    (
        "pointwise_conv_grad",
        "Params",
        std::mem::size_of::<PointwiseGradParams>(),
    ),
    (
        "depthwise_conv_grad",
        "Params",
        std::mem::size_of::<DepthwiseGradParams>(),
    ),
    (
        "conv2d_grad",
        "Params",
        std::mem::size_of::<ConvGradParams>(),
    ),
    ("max_pool", "Params", std::mem::size_of::<MaxPoolParams>()),
    (
        "max_pool_grad",
        "Params",
        std::mem::size_of::<MaxPoolGradParams>(),
    ),
    (
        "cam_combine",
        "Params",
        std::mem::size_of::<CamCombineParams>(),
    ),
    (
        "cam_minmax",
        "Params",
        std::mem::size_of::<CamMinMaxParams>(),
    ),
    (
        "cam_resize",
        "Params",
        std::mem::size_of::<CamResizeParams>(),
    ),
    (
        "cam_normalize",
        "Params",
        std::mem::size_of::<CamNormalizeParams>(),
    ),
    (
        "overlay_max",
        "Params",
        std::mem::size_of::<OverlayParams>(),
    ),
    ("overlay_max", "ImageMeta", std::mem::size_of::<ImageMeta>()),
    ("overlay", "Params", std::mem::size_of::<OverlayParams>()),
    ("overlay", "ImageMeta", std::mem::size_of::<ImageMeta>()),
];
