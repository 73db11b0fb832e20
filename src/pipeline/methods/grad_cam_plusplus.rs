//! Grad-CAM++ (pytorch-grad-cam `GradCAMPlusPlus`, grad_cam_plusplus.py): each channel weighted by
//! Σ_space ReLU(G)·α with α = G² / (2G² + S_c·G³ + 1e-6) (0 where G = 0), S_c the channel's spatial
//! sum (shaders/cam_channel_weights.wgsl mode 1).

use super::{weights_by_mode, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct GradCamPlusPlus;

impl LayerMethod for GradCamPlusPlus {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        weights_by_mode(ctx, steps, inputs, 1)
    }
}
