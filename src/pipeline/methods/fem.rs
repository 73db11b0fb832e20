//! FEM, the feature explanation method (pytorch-grad-cam `FEM`, fem.py, k = 2): each channel
//! weighted by the fraction of positions where its activation exceeds its mean plus twice its
//! standard deviation (shaders/cam_channel_weights.wgsl mode 3). Needs no gradient: no backward
//! pass runs.

use super::{weights_by_mode, LayerInputs, LayerMethod, Needs, FEM_MODE};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct Fem;

impl LayerMethod for Fem {
    fn needs(&self) -> Needs {
        Needs::ACTIVATIONS
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        // FEM sums its weighted activations whatever eigen-smooth says, as the reference.
        let inputs = LayerInputs {
            eigen_smooth: false,
            ..*inputs
        };
        weights_by_mode(ctx, steps, &inputs, FEM_MODE)
    }
}
