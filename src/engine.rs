//! The engine: a GPU context and a model on it.

use std::sync::Arc;

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::Model;
use crate::pipeline::{ExplainOptions, Explainer, Forward, GpuModel};

/// The memory [`Engine::default_batch`] sizes a discrete GPU's batch for: 8 GiB, what GPUs used
/// for this work have at least.
pub const DEFAULT_BATCH_MEMORY: u64 = 8 << 30;

/// A model uploaded to a device. Cheap to share; workspaces ([`Forward`]) are made from it.
pub struct Engine {
    ctx: Arc<GpuContext>,
    gpu_model: Arc<GpuModel>,
}

impl Engine {
    /// Uploads `model`'s weights to `ctx`'s device.
    pub fn new(ctx: Arc<GpuContext>, model: Model) -> Self {
        let gpu_model = Arc::new(GpuModel::upload(&ctx, Arc::new(model)));
        Self { ctx, gpu_model }
    }

    /// The GPU context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.gpu_model.model
    }

    /// The most images one batch can hold on this device: every activation tensor of a batch
    /// must fit one storage binding.
    pub fn max_batch(&self) -> u32 {
        let largest = self
            .model()
            .tensors
            .iter()
            .map(|t| t.len() as u64 * 4)
            .max()
            .unwrap_or(1);
        let limit = self
            .ctx
            .limits
            .max_storage_buffer_binding_size
            .min(self.ctx.limits.max_buffer_size);
        (limit / largest).clamp(1, u64::from(u32::MAX)) as u32
    }

    /// The batch a workspace gets when the caller names none. On a CPU adapter such as lavapipe,
    /// 16: the buffers are host memory and a larger batch gains nothing (measured: 17.1
    /// images/s at 16 and at 32). On an integrated GPU, which shares the host's memory, 32. On
    /// other GPUs, the largest power of two up to 256 whose activations, every tensor counted
    /// (an explainer keeps fewer), fit in [`DEFAULT_BATCH_MEMORY`]. Never more than
    /// [`Engine::max_batch`].
    pub fn default_batch(&self) -> u32 {
        let batch = match self.ctx.adapter_info.device_type {
            wgpu::DeviceType::Cpu => 16,
            wgpu::DeviceType::IntegratedGpu => 32,
            _ => {
                let per_image: u64 = self
                    .model()
                    .tensors
                    .iter()
                    .map(|t| t.len() as u64 * 4)
                    .sum();
                let fits = (DEFAULT_BATCH_MEMORY / per_image.max(1)).clamp(1, 256) as u32;
                1 << fits.ilog2()
            }
        };
        batch.min(self.max_batch())
    }

    /// A forward workspace for batches of up to `capacity` images.
    pub fn forward(&self, capacity: u32) -> Result<Forward> {
        Forward::new(self.ctx.clone(), self.gpu_model.clone(), capacity)
    }

    /// A Grad-CAM workspace for batches of up to `capacity` images.
    pub fn explainer(&self, capacity: u32, options: ExplainOptions) -> Result<Explainer> {
        // The explainer keeps the activations it reads; the rest share buffers.
        let forward = Forward::deferred(self.ctx.clone(), self.gpu_model.clone(), capacity)?;
        Explainer::new(forward, options)
    }

    /// Runs the forward pass on `images` (at most the workspace's capacity) and returns each
    /// image's logits. The logits are the only readback.
    pub fn classify(
        &self,
        forward: &mut Forward,
        images: &[&image::RgbImage],
    ) -> Result<Vec<Vec<f32>>> {
        let ctx = forward.context().clone();
        ctx.block_on(self.classify_async(forward, images))
    }

    /// [`Engine::classify`] as a future: never blocks (see [`GpuContext::block_on`]).
    pub async fn classify_async(
        &self,
        forward: &mut Forward,
        images: &[&image::RgbImage],
    ) -> Result<Vec<Vec<f32>>> {
        forward.upload_images(images)?;
        forward.run_async(true).await?;
        forward.read_logits_async().await
    }
}
