//! Saliency (Simonyan, Vedaldi and Zisserman's gradient map, the oldest method the Grad-CAM
//! literature compares with): at each input pixel the largest |∂logit/∂x| over its channels,
//! from the gradient with respect to the normalised input (shaders/cam_saliency.wgsl). It is
//! normalised like every other map. Target layers do not apply.

use super::{LayerInputs, LayerMethod, Needs};
use crate::error::Result;
use crate::gpu::kernels::launch;
use crate::gpu::params::CamSaliencyParams;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct Saliency;

impl LayerMethod for Saliency {
    fn needs(&self) -> Needs {
        Needs::INPUT_GRADIENT
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let (pixels, channels) = (inputs.pixels, inputs.channels);
        steps.push(
            ctx,
            launch::CamSaliency {
                gradient: inputs.gradient()?,
                grid: inputs.grid,
            },
            move |s| CamSaliencyParams {
                batch: s.images,
                pixels,
                channels,
                _pad: 0,
            },
        );
        Ok(0)
    }
}
