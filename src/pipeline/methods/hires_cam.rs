//! HiResCAM (pytorch-grad-cam `HiResCAM`, hirescam.py): the map is Σ_c G ⊙ A, position by position
//! (shaders/cam_elementwise.wgsl mode 0).

use super::{elementwise, LayerInputs, LayerMethod};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct HiResCam;

impl LayerMethod for HiResCam {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        elementwise(ctx, steps, inputs, 0)
    }
}
