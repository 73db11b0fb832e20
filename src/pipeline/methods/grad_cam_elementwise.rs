//! Element-wise Grad-CAM (pytorch-grad-cam `GradCAMElementWise`, grad_cam_elementwise.py): the map
//! is Σ_c ReLU(G ⊙ A), position by position (shaders/cam_elementwise.wgsl mode 1).

use super::{elementwise, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct GradCamElementWise;

impl LayerMethod for GradCamElementWise {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        elementwise(ctx, steps, inputs, 1)
    }
}
