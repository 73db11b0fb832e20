//! # gradcam
//!
//! A GPU Grad-CAM engine: a CNN loaded from safetensors (torchvision ResNet, VGG-16, MobileNetV2,
//! EfficientNet-Lite0–4, recognised from the tensor names) or ONNX, its forward pass and the targeted
//! backward pass in hand-written WGSL compute shaders on wgpu (Vulkan, Metal, DX12, GL).
//!
//! ```no_run
//! use std::sync::Arc;
//! use gradcam::{AdapterOptions, Engine, GpuContext, Model};
//!
//! let ctx = Arc::new(GpuContext::new(&AdapterOptions::default())?);
//! let model = Model::load("weights/efficientnet_lite0.safetensors")?;
//! let engine = Engine::new(ctx, model);
//! let mut forward = engine.forward(1)?;
//! let image = gradcam::decode_image("examples/images/chelsea.png")?;
//! let logits = engine.classify(&mut forward, &[&image])?;
//! let top = gradcam::top_k(&gradcam::softmax(&logits[0]), 5);
//! println!("class {} with p = {}", top[0].0, top[0].1);
//! # Ok::<(), gradcam::Error>(())
//! ```

pub mod boxes;
mod colormap;
mod engine;
mod error;
pub mod gpu;
pub mod graph;
mod images;
mod labels;
pub mod metrics;
pub mod model;
pub mod output;
pub mod pipeline;

/// The README's Rust example (its Library section), compiled and run by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use colormap::Colormap;
pub use engine::Engine;
pub use error::{one_line, Error, Result};
pub use gpu::{AdapterOptions, GpuContext};
/// The image crate this crate decodes with ([`image::RgbImage`] in, [`image::RgbaImage`] out).
pub use image;
pub use images::{
    decode_image, decode_image_bytes, decode_image_bytes_limited, decode_image_limited,
    DEFAULT_MAX_PIXELS,
};
pub use labels::Labels;
pub use metrics::{Metric, TargetScore};
pub use model::Model;
pub use pipeline::{
    softmax, top_k, ExplainOptions, Explainer, Explanation, Forward, GpuModel, Method,
    OverlayRegion, Readback, Target,
};
/// The wgpu this crate is built on (devices, buffers and encoders in its API are of this version).
pub use wgpu;
