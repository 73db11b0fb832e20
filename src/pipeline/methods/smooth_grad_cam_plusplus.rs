//! Smooth Grad-CAM++ (Omeiza et al. 2019; torch-cam 0.5's `SmoothGradCAMpp`, the reference for
//! this method): Grad-CAM++ with the gradient's powers averaged over noisy copies of the input.
//! The explainer runs the clean input, then each of the n samples (input + N(0, σ²) noise,
//! src/pipeline/smooth_grad.rs), summing G² and G³ at the layer; this unit then weights the
//! channels as the reference does, term by term:
//!
//! - α = D2 / (2·D2 + Σ_space D3·A0 + 1e-8), with D2 and D3 the sums divided by n and A0 the
//!   clean input's activations (torch-cam's form, which sums D3·A0 over space where the paper
//!   has S_c·D3);
//! - w_c = Σ_space α·ReLU(G), G the last sample's gradient;
//! - `ReLU(Σ_c w_c A_c)` with A the last sample's activations (torch-cam reads its hooks after
//!   the samples), min-max normalised at the layer as torch-cam's `_normalize`.

use super::{channel_weights, combine, torchcam_normalize, LayerInputs, LayerMethod};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::SmoothGradCamPlusPlusParams;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct SmoothGradCamPlusPlus;

impl LayerMethod for SmoothGradCamPlusPlus {
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let moments = inputs.moments.ok_or_else(|| {
            Error::InvalidRequest("smooth-gradcam++ needs the noisy samples' gradients".into())
        })?;
        if inputs.eigen_smooth {
            return Err(Error::InvalidRequest(
                "eigen-smooth does not apply to smooth-gradcam++".into(),
            ));
        }
        let weights = channel_weights(ctx, inputs)?;
        let (pixels, channels, samples) = (inputs.pixels, inputs.channels, moments.samples);
        steps.push(
            ctx,
            launch::SmoothGradCamPlusPlusWeights {
                clean: moments.clean,
                squares: moments.squares,
                cubes: moments.cubes,
                gradient: inputs.gradient()?,
                weights: &weights,
            },
            move |s| SmoothGradCamPlusPlusParams {
                batch: s.images,
                pixels,
                channels,
                samples,
            },
        );
        combine(ctx, steps, inputs, &weights, true);
        let stats = torchcam_normalize(ctx, steps, inputs)?;
        Ok(weights.size() + stats)
    }
}
