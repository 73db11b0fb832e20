//! Eigen-CAM (pytorch-grad-cam `EigenCAM`, eigen_cam.py): the layer's activations projected on
//! their first principal component (see `eigen.rs`). Needs no gradient: no backward pass runs.

use super::{eigen, LayerInputs, LayerMethod, Needs};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct EigenCam;

impl LayerMethod for EigenCam {
    fn needs(&self) -> Needs {
        Needs::ACTIVATIONS
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        eigen::projection(ctx, steps, inputs, eigen::Source::Activations)
    }
}
