//! EigenGradCAM (pytorch-grad-cam `EigenGradCAM`, eigen_grad_cam.py): G ⊙ A projected on its
//! first principal component (see `eigen.rs`).

use super::{eigen, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct EigenGradCam;

impl LayerMethod for EigenGradCam {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        eigen::projection(ctx, steps, inputs, eigen::Source::GradientTimesActivations)
    }
}
