//! FullGrad (Srinivas and Fleuret; pytorch-grad-cam's `FullGrad`): at the input image, the sum of
//! - |∂T/∂x ⊙ x| for each channel of the normalised input x, and
//! - for every bias layer (each module whose exact type is `nn.Conv2d` or `nn.BatchNorm2d` with a
//!   bias: [`Conv::full_grad_biases`](crate::model::Conv)), Σ_c |b_c ∂T/∂z_c| over its channels,
//!   z the module's output,
//!
//! each channel's map min-max scaled (1e-7) and resized to the input size, then one final
//! min-max scaling of the sum, with no ReLU. Target layers do not apply.
//!
//! The backward pass runs to the input; each conv's output gradient is read while it is live
//! ([`GradientTap`]): per bias, one kernel takes each channel's extremes
//! (shaders/full_grad_stats.wgsl), one sums the scaled channels at the layer's resolution
//! (shaders/full_grad_sum.wgsl), and the sum is resized into the map and added to it
//! (shaders/cam_resize.wgsl, unscaled): resizing is linear, so this equals the reference's sum of
//! resized channels. The input's channels are added last, at the input size.
//!
//! `eigen_smooth` (the reference's principal component of the per-layer maps at 1/8 size) is
//! not implemented: the explainer refuses it for FullGrad.

use super::{GradientTap, LayerInputs, LayerMethod, Needs};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{CamResizeParams, FullGradParams};
use crate::gpu::GpuContext;
use crate::model::Op;
use crate::pipeline::backward::ConvTap;
use crate::pipeline::forward::Forward;
use crate::pipeline::steps::Steps;

pub(super) struct FullGrad;

/// shaders/lib/full_grad.wgsl's modes.
const BIAS_MODE: u32 = 0;
const INPUT_MODE: u32 = 1;

impl LayerMethod for FullGrad {
    fn needs(&self) -> Needs {
        Needs::INPUT_GRADIENT
    }

    fn scaled_per_layer(&self) -> bool {
        false
    }

    fn gradient_tap(
        &self,
        ctx: &GpuContext,
        forward: &Forward,
        grid: &wgpu::Buffer,
    ) -> Result<Option<Box<dyn GradientTap>>> {
        Ok(Some(Box::new(BiasGradients::new(ctx, forward, grid)?)))
    }

    /// The input's channels, added to the bias layers' sum the taps left in `inputs.grid`.
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let stats = ctx.storage(
            "full_grad_input_stats",
            8 * u64::from(inputs.channels) * inputs.capacity,
        )?;
        let gradient = inputs.gradient()?;
        let (pixels, channels) = (inputs.pixels, inputs.channels);
        let params = move |batch| FullGradParams {
            batch,
            pixels,
            channels,
            mode: INPUT_MODE,
            activation: 0,
            accumulate: 1,
            _pad: [0; 2],
        };
        // The factors binding is unused for the input; it still needs a buffer.
        steps.push(
            ctx,
            launch::FullGradStats {
                gradient,
                forward: inputs.activations,
                factors: inputs.activations,
                stats: &stats,
            },
            move |s| params(s.images),
        );
        steps.push(
            ctx,
            launch::FullGradSum {
                gradient,
                forward: inputs.activations,
                factors: inputs.activations,
                stats: &stats,
                map: inputs.grid,
            },
            move |s| params(s.images),
        );
        Ok(stats.size())
    }
}

/// The bias layers' part of FullGrad, recorded conv by conv inside the backward pass into the
/// map at the input size.
struct BiasGradients {
    /// The map, f32 `[batch, S × S]`: the first bias written, the next ones added.
    grid: wgpu::Buffer,
    /// Each channel's (min, max), `[batch, channels]`, reused by every bias.
    stats: wgpu::Buffer,
    /// One bias layer's sum at its resolution, `[batch, h × w]`, reused by every bias.
    layer_map: wgpu::Buffer,
    /// The biases' factors, uploaded once.
    factors: Vec<wgpu::Buffer>,
    /// Whether the map has been written.
    written: bool,
}

impl BiasGradients {
    fn new(ctx: &GpuContext, forward: &Forward, grid: &wgpu::Buffer) -> Result<Self> {
        let model = forward.model();
        if model.convs.iter().all(|c| c.full_grad_biases.is_empty()) {
            return Err(Error::UnsupportedModel {
                path: model.source.clone(),
                reason: "FullGrad needs a BatchNorm or a conv with a bias; the network has none"
                    .into(),
            });
        }
        let cap = u64::from(forward.capacity());
        let outputs = model.ops.iter().filter_map(|op| match *op {
            Op::Conv { output, .. } => Some(&model.tensors[output]),
            _ => None,
        });
        let (pixels, channels) = outputs.fold((1, 1), |(p, c), t| {
            (
                p.max(u64::from(t.height * t.width)),
                c.max(u64::from(t.channels)),
            )
        });
        Ok(Self {
            grid: grid.clone(),
            stats: ctx.storage("full_grad_stats", 8 * channels * cap)?,
            layer_map: ctx.storage("full_grad_layer", 4 * pixels * cap)?,
            factors: Vec::new(),
            written: false,
        })
    }
}

impl GradientTap for BiasGradients {
    fn record(
        &mut self,
        ctx: &GpuContext,
        steps: &mut Steps,
        forward: &Forward,
        tap: &ConvTap,
        gradient: &wgpu::Buffer,
    ) -> Result<()> {
        let model = forward.model();
        let conv = &model.convs[tap.conv];
        let t = &model.tensors[tap.output];
        let (h, w, channels) = (t.height, t.width, t.channels);
        let (pixels, size) = (h * w, model.input_size);
        let activation = conv.activation as u32;
        let output = forward.tensor(tap.output);
        for bias in &conv.full_grad_biases {
            let factors = ctx.storage_with(&format!("full_grad.{}", conv.name), bias);
            let params = move |batch, accumulate| FullGradParams {
                batch,
                pixels,
                channels,
                mode: BIAS_MODE,
                activation,
                accumulate,
                _pad: [0; 2],
            };
            steps.push(
                ctx,
                launch::FullGradStats {
                    gradient,
                    forward: output,
                    factors: &factors,
                    stats: &self.stats,
                },
                move |s| params(s.images, 0),
            );
            steps.push(
                ctx,
                launch::FullGradSum {
                    gradient,
                    forward: output,
                    factors: &factors,
                    stats: &self.stats,
                    map: &self.layer_map,
                },
                move |s| params(s.images, 0),
            );
            // Layer 0 of 1 writes the map, layer 1 of 1 adds to it; neither divides.
            let layer = u32::from(self.written);
            steps.push(
                ctx,
                launch::CamResize {
                    src: &self.layer_map,
                    stats: &self.stats,
                    dst: &self.grid,
                },
                move |s| CamResizeParams {
                    batch: s.images,
                    in_h: h,
                    in_w: w,
                    out_h: size,
                    out_w: size,
                    layer,
                    layers: 1,
                    normalise: 0,
                },
            );
            self.written = true;
            self.factors.push(factors);
        }
        Ok(())
    }

    fn gpu_bytes(&self) -> u64 {
        self.stats.size()
            + self.layer_map.size()
            + self.factors.iter().map(wgpu::Buffer::size).sum::<u64>()
    }
}
