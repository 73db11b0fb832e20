//! LayerCAM (pytorch-grad-cam `LayerCAM`, layer_cam.py): the map is Σ_c ReLU(G) ⊙ A, position by
//! position (shaders/cam_elementwise.wgsl mode 2).

use super::{elementwise, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct LayerCam;

impl LayerMethod for LayerCam {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        elementwise(ctx, steps, inputs, 2)
    }
}
