//! XGrad-CAM (pytorch-grad-cam `XGradCAM`, xgrad_cam.py): each channel weighted by Σ_space G·A /
//! (S_c + 1e-7), S_c the channel's spatial sum (shaders/cam_channel_weights.wgsl mode 2).

use super::{weights_by_mode, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct XGradCam;

impl LayerMethod for XGradCam {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        weights_by_mode(ctx, steps, inputs, 2)
    }
}
