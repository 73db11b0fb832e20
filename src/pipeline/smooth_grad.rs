//! SmoothGrad sampling for Smooth Grad-CAM++ (torch-cam `SmoothGradCAMpp`): after the clean
//! forward pass and the target choice, the forward and backward passes run once per sample on
//! the input plus Gaussian noise (shaders/smooth_noise.wgsl), and the layer gradient's squares
//! and cubes are summed over the samples (shaders/gradient_moments.wgsl). The clean input's
//! activations at each layer are kept for the method's weights. The class stays the clean
//! input's, and the logits read back are restored to the clean input's; the layer's activations
//! and gradient are left as the last sample made them, as torch-cam's hooks are.
//!
//! All in one command stream, nothing read back: the preprocessed input is kept aside and each
//! sample written from it.

use super::backward::BackwardPlan;
use super::forward::Forward;
use super::methods::Moments;
use super::steps::{BatchShape, Steps};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{GradientMomentsParams, SmoothNoiseParams};
use crate::gpu::GpuContext;

/// The parts of the shared pipeline [`SmoothGrad::record`] runs around its own steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// The forward pass on the input tensor as it is.
    Forward,
    /// The target choice, from the clean input's logits.
    Select,
    /// The backward pass to the target layers.
    Backward,
}

/// One target layer's buffers, laid out as its activations.
struct Layer {
    /// The layer's tensor id.
    tensor: usize,
    clean: wgpu::Buffer,
    squares: wgpu::Buffer,
    cubes: wgpu::Buffer,
}

/// The noisy samples' buffers and steps around the shared pipeline.
pub(super) struct SmoothGrad {
    samples: u32,
    pristine: wgpu::Buffer,
    clean_logits: wgpu::Buffer,
    layers: Vec<Layer>,
    /// Per sample: its noisy input written from `pristine`.
    noise: Vec<Steps>,
    /// The sums written (first sample) or added to (the others).
    first: Steps,
    rest: Steps,
}

impl SmoothGrad {
    /// For `forward`'s input, the target `layers` (whose gradients `plan` puts in `grads`),
    /// `samples` noisy copies with noise of standard deviation `std` in the normalised input's
    /// units, drawn from the stream `seed`.
    pub(super) fn new(
        ctx: &GpuContext,
        forward: &Forward,
        (plan, grads): (&BackwardPlan, &[wgpu::Buffer]),
        layers: &[usize],
        (samples, std, seed): (u32, f32, u32),
    ) -> Result<Self> {
        if samples == 0 {
            return Err(Error::InvalidRequest(
                "smooth-gradcam++ needs at least 1 sample".into(),
            ));
        }
        if !(std.is_finite() && std >= 0.0) {
            return Err(Error::InvalidRequest(format!(
                "the noise's standard deviation {std} is not a finite value ≥ 0"
            )));
        }
        let model = forward.model();
        let cap = u64::from(forward.capacity());
        let size = model.input_size;
        let input_len = model.tensors[model.input].len() as u64;
        let pristine = ctx.storage("smooth_pristine", input_len * 4 * cap)?;
        let clean_logits = ctx.storage(
            "smooth_clean_logits",
            model.tensors[model.logits].len() as u64 * 4 * cap,
        )?;
        let mut kept = Vec::new();
        let mut first = Steps::new("smooth_grad");
        let mut rest = Steps::new("smooth_grad");
        for &tensor in layers {
            let len = model.tensors[tensor].len() as u64;
            let gradient = plan
                .slot_of_tensor(tensor)
                .and_then(|slot| grads.get(slot))
                .ok_or_else(|| {
                    Error::InvalidRequest("smooth-gradcam++ needs the layer gradient".into())
                })?;
            let clean_len = model.tensors[model.activations_of(tensor)].len() as u64;
            let layer = Layer {
                tensor,
                clean: ctx.storage("smooth_clean_activations", clean_len * 4 * cap)?,
                squares: ctx.storage("smooth_gradient_squares", len * 4 * cap)?,
                cubes: ctx.storage("smooth_gradient_cubes", len * 4 * cap)?,
            };
            for (steps, first) in [(&mut first, 1), (&mut rest, 0)] {
                steps.push(
                    ctx,
                    launch::GradientMoments {
                        gradient,
                        squares: &layer.squares,
                        cubes: &layer.cubes,
                    },
                    move |s| GradientMomentsParams {
                        len: s.images * len as u32,
                        first,
                        _pad: [0; 2],
                    },
                );
            }
            kept.push(layer);
        }
        let input = forward.tensor(model.input);
        let noise = (0..samples)
            .map(|sample| {
                let mut steps = Steps::new("smooth_grad");
                steps.push(
                    ctx,
                    launch::SmoothNoise {
                        pristine: &pristine,
                        input,
                    },
                    move |s| SmoothNoiseParams {
                        batch: s.images,
                        size,
                        sample,
                        seed,
                        noise_std: std,
                        _pad: [0; 3],
                    },
                );
                steps
            })
            .collect();
        Ok(Self {
            samples,
            pristine,
            clean_logits,
            layers: kept,
            noise,
            first,
            rest,
        })
    }

    /// What the samples leave at the target layer `index` (in the order `new` was given them).
    pub(super) fn moments(&self, index: usize) -> Moments<'_> {
        let layer = &self.layers[index];
        Moments {
            clean: &layer.clean,
            squares: &layer.squares,
            cubes: &layer.cubes,
            samples: self.samples,
        }
    }

    /// Sets the steps' parameters for the batch.
    pub(super) fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        for steps in self.noise.iter_mut() {
            steps.configure(ctx, shape);
        }
        self.first.configure(ctx, shape);
        self.rest.configure(ctx, shape);
    }

    /// The noisy samples per batch (the forward pass runs once more, on the clean input).
    pub(super) fn samples(&self) -> usize {
        self.samples as usize
    }

    /// Its own launches per sample: the noise and the sums at each layer.
    pub(super) fn launches_per_sample(&self) -> usize {
        self.noise.first().map_or(0, Steps::len) + self.first.len()
    }

    /// Bytes of its buffers.
    pub(super) fn gpu_bytes(&self) -> u64 {
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| l.clean.size() + l.squares.size() + l.cubes.size())
            .sum();
        self.pristine.size() + self.clean_logits.size() + layers
    }

    /// Records everything between preprocessing (recorded here for image batches) and the CAM:
    /// the clean forward pass and the target choice (`pass` with [`Stage::Forward`], then
    /// [`Stage::Select`]), the clean input, logits and activations kept; then per sample its
    /// noisy input, the forward and backward passes ([`Stage::Forward`], [`Stage::Backward`]) and
    /// the gradient's powers summed; then the clean logits and input restored (the activations and
    /// gradients stay the last sample's, which the method reads).
    pub(super) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        forward: &Forward,
        with_images: bool,
        mut pass: impl FnMut(&mut wgpu::CommandEncoder, Stage),
    ) {
        if with_images {
            forward.record_preprocess(encoder);
        }
        pass(encoder, Stage::Forward);
        pass(encoder, Stage::Select);
        let model = forward.model();
        let batch = u64::from(forward.batch());
        let bytes = |tensor: usize| model.tensors[tensor].len() as u64 * 4 * batch;
        encoder.copy_buffer_to_buffer(
            forward.tensor(model.input),
            0,
            &self.pristine,
            0,
            bytes(model.input),
        );
        encoder.copy_buffer_to_buffer(
            forward.tensor(model.logits),
            0,
            &self.clean_logits,
            0,
            bytes(model.logits),
        );
        for layer in &self.layers {
            let activations = model.activations_of(layer.tensor);
            encoder.copy_buffer_to_buffer(
                forward.tensor(activations),
                0,
                &layer.clean,
                0,
                bytes(activations),
            );
        }
        for (sample, noise) in self.noise.iter().enumerate() {
            noise.record(ctx, encoder);
            pass(encoder, Stage::Forward);
            pass(encoder, Stage::Backward);
            let sums = if sample == 0 { &self.first } else { &self.rest };
            sums.record(ctx, encoder);
        }
        encoder.copy_buffer_to_buffer(
            &self.clean_logits,
            0,
            forward.tensor(model.logits),
            0,
            bytes(model.logits),
        );
        encoder.copy_buffer_to_buffer(
            &self.pristine,
            0,
            forward.tensor(model.input),
            0,
            bytes(model.input),
        );
    }
}
