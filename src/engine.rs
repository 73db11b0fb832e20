//! The engine: a GPU context and a model on it.

use std::sync::Arc;

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::Model;
use crate::pipeline::{ExplainOptions, Explainer, Forward, GpuModel};

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

    /// A forward workspace for batches of up to `capacity` images.
    pub fn forward(&self, capacity: u32) -> Result<Forward> {
        Forward::new(self.ctx.clone(), self.gpu_model.clone(), capacity)
    }

    /// A Grad-CAM workspace for batches of up to `capacity` images.
    pub fn explainer(&self, capacity: u32, options: ExplainOptions) -> Result<Explainer> {
        Explainer::new(self.forward(capacity)?, options)
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
