//! Grad-CAM (pytorch-grad-cam `GradCAM`, grad_cam.py): each channel weighted by the spatial mean of
//! its gradient.

use super::{channel_weights, weighted_sum, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::kernels::launch;
use crate::gpu::params::PoolParams;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct GradCam;

impl LayerMethod for GradCam {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let weights = channel_weights(ctx, inputs)?;
        let (pixels, channels) = (inputs.pixels, inputs.channels);
        steps.push(
            ctx,
            launch::GlobalAvgPool {
                input: inputs.gradient()?,
                output: &weights,
            },
            move |s| PoolParams {
                batch: s.images,
                pixels,
                channels,
                _pad: 0,
            },
        );
        let smooth = weighted_sum(steps, ctx, inputs, &weights)?;
        Ok(weights.size() + smooth)
    }
}
