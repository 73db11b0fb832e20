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
}

/// Kept in sync with `Params` in shaders/preprocess.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PreprocessParams {
    pub batch: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub _pad: u32,
}

/// Kept in sync with `ImageMeta` in shaders/preprocess.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ImageMeta {
    /// Byte offset of the image's first pixel in the packed RGB8 upload.
    pub offset: u32,
    pub width: u32,
    pub height: u32,
    pub _pad: u32,
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
    pub out_features: u32,
    pub _pad: u32,
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
];
